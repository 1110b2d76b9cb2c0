// The program of docs/usage.md: build a small METRO, run it on a batch, train it a few steps.
#include <iostream>

#include "metro/metro.hpp"

int main() {
  using namespace metro;
  // The template mesh: 14 joints and the 108 vertices of the procedural body's coarsest level.
  const body::BodyModel& body = body::BodyModel::get();
  model::MetroConfig config = model::small(body.num_vertices(3), {body.num_vertices(2), body.num_vertices(0)}, 64);
  Generator gen(0);
  model::MetroNetwork<float> net(config, gen);
  std::vector<float> joints, vertices;
  for (const auto& j : body.rest_joints()) joints.insert(joints.end(), {j.x(), j.y(), j.z()});
  for (const auto& v : body.rest_vertices(3)) vertices.insert(vertices.end(), {v.x(), v.y(), v.z()});
  net.set_template(from_vector<float>(joints, {14, 3}), from_vector<float>(vertices, {body.num_vertices(3), 3}));

  // Fit one random batch to random target meshes: the loss must go down.
  const Tensor<float> images = randn<float>({4, 3, 64, 64}, gen);
  const Tensor<float> target = randn<float>({4, body.num_vertices(0), 3}, gen) * 0.1f;
  nn::Adam<float> adam(net.parameters(), {.lr = 1e-3});
  for (int step = 0; step < 5; ++step) {
    adam.zero_grad();
    const model::MetroOutput<float> out = net.forward(images);  // camera, joints, vertices at 3 resolutions
    const Tensor<float> loss = mean(abs(out.full_vertices - target));
    loss.backward();
    adam.step();
    std::cout << "step " << step << " loss " << loss.item() << "\n";
  }
}
