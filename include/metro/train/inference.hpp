#pragma once
// Using a trained checkpoint: build the network from the config stored in it,
// load the weights, and predict one image.
#include <array>
#include <memory>
#include <string>

#include "metro/model/model.hpp"
#include "metro/train/body_file.hpp"
#include "metro/train/evaluate.hpp"

namespace metro::train {

// A metro_train checkpoint, ready to use: the network (built from the config
// stored in the checkpoint, in eval mode) and the body it was trained on (which
// the checkpoint carries: train/body_file.hpp).
struct TrainedModel {
  std::unique_ptr<model::MetroNetwork<float>> net;
  MeshHierarchy mesh;
};

inline TrainedModel load_trained(const std::string& checkpoint) {
  const io::SafeTensorsFile file = io::load_safetensors(checkpoint);
  const model::MetroConfig config = model::checkpoint_config(file, checkpoint);
  MeshHierarchy mesh = body_for_checkpoint(file, checkpoint, config);
  auto net = std::make_unique<model::MetroNetwork<float>>(config);
  model::load_checkpoint(checkpoint, *net);
  net->eval();
  return {std::move(net), std::move(mesh)};
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
