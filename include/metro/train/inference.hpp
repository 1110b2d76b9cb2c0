#pragma once
// Using a trained checkpoint: build the network from the config stored in it,
// load the weights, and predict one image.
#include <array>
#include <memory>
#include <string>

#include "metro/model/model.hpp"
#include "metro/train/evaluate.hpp"

namespace metro::train {

// The network of a metro_train checkpoint, in eval mode. Its mesh hierarchy is
// MeshHierarchy::for_network(net->config()).
inline std::unique_ptr<model::MetroNetwork<float>> load_network(const std::string& path) {
  const model::MetroConfig config = model::checkpoint_config(io::load_safetensors(path), path);
  auto net = std::make_unique<model::MetroNetwork<float>>(config);
  model::load_checkpoint(path, *net);
  net->eval();
  return net;
}

// One image's prediction, metres, camera orientation, pelvis-relative.
struct Prediction {
  RowPoints vertices;              // (V_full, 3)
  RowPoints joints;                // (J, 3) regressed from the full mesh (the evaluated joints)
  std::array<float, 3> camera{};   // s, tx, ty
};

// input (1, 3, S, S) -> the prediction for it.
template <class Net>
Prediction predict(Net& net, const Tensor<float>& input, const MeshHierarchy& mesh) {
  NoGradGuard no_grad;
  const auto out = net.forward(input);
  const Tensor<float> vertices = contiguous(out.full_vertices), camera = contiguous(out.camera);
  const Tensor<float> joints = contiguous(nn::regress_joints(mesh.regressor, out.full_vertices));
  Prediction p;
  p.vertices = points_of(vertices.data(), 0, vertices.shape()[1], 3);
  p.joints = points_of(joints.data(), 0, joints.shape()[1], 3);
  p.camera = {camera.data()[0], camera.data()[1], camera.data()[2]};
  clear_tape();
  return p;
}

}  // namespace metro::train
