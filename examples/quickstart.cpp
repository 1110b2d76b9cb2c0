// The program of docs/usage.md: build a small METRO, run it on a batch, train it a few steps.
#include <iostream>

#include "metro/metro.hpp"
#include "metro/train/targets.hpp"  // the procedural body as a network's template

int main() {
  using namespace metro;
  // The `small` preset on the procedural body: 14 joints and 108 vertex tokens, upsampled to 431 and 6890 vertices.
  const model::MetroConfig config = train::small_config(/*image size*/ 64);
  const train::MeshHierarchy mesh = train::MeshHierarchy::for_network(config);
  Generator gen(0);
  model::MetroNetwork<float> net(config, gen);
  train::init_from_body(net, mesh);  // the template mesh (the tokens' xyz) and the upsampling matrices

  // Fit one random batch to random target meshes: the loss must go down.
  const Tensor<float> images = randn<float>({4, 3, 64, 64}, gen);
  const Tensor<float> target = randn<float>({4, mesh.full_vertices(), 3}, gen) * 0.1f;
  nn::Adam<float> adam(net.parameters(), {.lr = 1e-3});
  float first = 0, last = 0;
  for (int step = 0; step < 5; ++step) {
    adam.zero_grad();
    const model::MetroOutput<float> out = net.forward(images);  // camera, joints, vertices at 3 resolutions
    const Tensor<float> loss = mean(abs(out.full_vertices - target));
    loss.backward();
    adam.step();
    last = loss.item();
    if (step == 0) first = last;
    std::cout << "step " << step << " loss " << last << "\n";
  }
  return last < first ? 0 : 1;
}
