#pragma once
// METRO's training objective (paper Sec. 3.4, and the official training code,
// whose choices we follow where the two differ):
//   L = 1000 L_3d + 100 L_vertices + 100 L_2d
//   L_vertices = 0.33 (L1 at 431 + L1 at 1723 + L1 at 6890 vertices), samples with a mesh label
//   L_3d = conf-weighted MSE of the joint tokens + of the joints regressed from the
//          6890-vertex mesh, both re-centred on the mid-hip, samples with 3D labels
//          (the paper says L1; the official code uses MSE)
//   L_2d = conf-weighted MSE of both joint sets projected by the weak-perspective
//          camera, against the 2D labels, samples with 2D labels
// Every term averages over the elements of the selected samples and is 0 (with
// a zero gradient, still on the tape) when no sample is selected.
//
// Deviation from the official code: its 2D loss ignores has_2d and averages
// over the whole batch (samples without 2D labels have confidence 0). Here it is
// gated by has_2d like the other terms; the two agree when has_2d is all ones.
#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "metro/tensor.hpp"

namespace metro::nn {

// Joints 2 and 3 of the 14-joint (LSP) order are the right and left hips; their
// midpoint is METRO's pelvis.
inline constexpr std::int64_t kRightHip = 2, kLeftHip = 3;

namespace detail {

template <class T, class D>
void check_gate(const Tensor<T, D>& gate, const Tensor<T, D>& values, const char* op) {
  if (gate.dim() != 1 || values.dim() < 1 || gate.shape()[0] != values.shape()[0])
    throw ShapeError(std::string(op) + ": gate " + gate.shape().str() + " must be (B) for values " + values.shape().str());
}

// Mean of `elementwise` (B, ...) over the elements of the samples with gate == 1;
// 0 when there are none. Unselected samples get a zero gradient and cannot
// leak a NaN into the result.
template <class T, class D>
Tensor<T, D> gated_mean(const Tensor<T, D>& elementwise, const Tensor<T, D>& gate, const char* op) {
  check_gate(gate, elementwise, op);
  std::vector<std::int64_t> mask_shape(static_cast<std::size_t>(elementwise.dim()), 1);
  mask_shape[0] = gate.shape()[0];
  const Tensor<T, D> selected = reshape(eq(gate.detach(), T(1)), Shape(mask_shape));  // (B, 1, ...)
  const auto count = static_cast<std::int64_t>(sum(selected).item());
  const std::int64_t per_sample = gate.shape()[0] > 0 ? elementwise.numel() / gate.shape()[0] : 0;
  const double elements = static_cast<double>(std::max<std::int64_t>(count * per_sample, 1));
  return sum(where(selected, elementwise, zeros<T, D>({}))) * static_cast<T>(1 / elements);
}

template <class T, class D>
void check_same_shape(const Tensor<T, D>& pred, const Tensor<T, D>& target, const char* op) {
  if (!(pred.shape() == target.shape()))
    throw ShapeError(std::string(op) + ": prediction " + pred.shape().str() + " and target " + target.shape().str() + " differ");
}

// (B, J, C) with a last channel of confidences -> the (B, J, C - 1) values and the (B, J, 1) confidences.
template <class T, class D>
std::pair<Tensor<T, D>, Tensor<T, D>> split_confidence(const Tensor<T, D>& labels, std::int64_t channels, const char* op) {
  if (labels.dim() != 3 || labels.shape()[2] != channels + 1)
    throw ShapeError(std::string(op) + ": labels " + labels.shape().str() + " must be (B, J, " + std::to_string(channels + 1) + ")");
  return {narrow(labels, 2, 0, channels), narrow(labels, 2, channels, 1)};
}

}  // namespace detail

// nn.L1Loss (mean) over the samples with gate == 1: pred, target (B, ...), gate (B).
template <class T, class D>
Tensor<T, D> gated_l1_loss(const Tensor<T, D>& pred, const Tensor<T, D>& target, const Tensor<T, D>& gate) {
  detail::check_same_shape(pred, target, "gated_l1_loss");
  return detail::gated_mean(abs(pred - target), gate, "gated_l1_loss");
}

// nn.MSELoss (mean) over the samples with gate == 1.
template <class T, class D>
Tensor<T, D> gated_mse_loss(const Tensor<T, D>& pred, const Tensor<T, D>& target, const Tensor<T, D>& gate) {
  detail::check_same_shape(pred, target, "gated_mse_loss");
  const Tensor<T, D> diff = pred - target;
  return detail::gated_mean(diff * diff, gate, "gated_mse_loss");
}

// As the official keypoint losses: mean of confidence * (pred - target)^2 over
// the selected samples' elements; pred, target (B, J, C), confidence (B, J, 1).
template <class T, class D>
Tensor<T, D> gated_mse_loss(const Tensor<T, D>& pred, const Tensor<T, D>& target, const Tensor<T, D>& gate,
                            const Tensor<T, D>& confidence) {
  detail::check_same_shape(pred, target, "gated_mse_loss");
  if (pred.dim() != 3 || !(confidence.shape() == Shape{pred.shape()[0], pred.shape()[1], 1}))
    throw ShapeError("gated_mse_loss: confidence " + confidence.shape().str() + " must be (B, J, 1) for " + pred.shape().str());
  const Tensor<T, D> diff = pred - target;
  return detail::gated_mean(confidence * diff * diff, gate, "gated_mse_loss");
}

// Weak-perspective camera: points (B, K, 3), camera (B, 3) = [s, tx, ty] -> (B, K, 2) = s * (xy + t).
template <class T, class D>
Tensor<T, D> orthographic_projection(const Tensor<T, D>& points, const Tensor<T, D>& camera) {
  if (points.dim() != 3 || points.shape()[2] != 3 || !(camera.shape() == Shape{points.shape()[0], 3}))
    throw ShapeError("orthographic_projection: points " + points.shape().str() + " must be (B, K, 3) and camera " +
                     camera.shape().str() + " (B, 3)");
  const Tensor<T, D> scale = unsqueeze(narrow(camera, 1, 0, 1), 1);        // (B, 1, 1)
  const Tensor<T, D> translation = unsqueeze(narrow(camera, 1, 1, 2), 1);  // (B, 1, 2)
  return scale * (narrow(points, 2, 0, 2) + translation);
}

// Joints (B, J, C) minus their pelvis, the midpoint of joints 2 and 3 (J >= 4).
template <class T, class D>
Tensor<T, D> center_on_pelvis(const Tensor<T, D>& joints) {
  if (joints.dim() != 3 || joints.shape()[1] <= kLeftHip)
    throw ShapeError("center_on_pelvis: joints " + joints.shape().str() + " must be (B, J >= 4, C)");
  const Tensor<T, D> pelvis = (narrow(joints, 1, kRightHip, 1) + narrow(joints, 1, kLeftHip, 1)) * T(0.5);  // (B, 1, C)
  return joints - pelvis;
}

// Joints regressed from a mesh, J = G V: regressor (J, V) dense, vertices (B, V, 3) -> (B, J, 3).
template <class T, class D>
Tensor<T, D> regress_joints(const Tensor<T, D>& regressor, const Tensor<T, D>& vertices) {
  if (regressor.dim() != 2 || vertices.dim() != 3 || vertices.shape()[1] != regressor.shape()[1])
    throw ShapeError("regress_joints: regressor " + regressor.shape().str() + " must be (J, V) for vertices " +
                     vertices.shape().str() + " (B, V, 3)");
  return matmul(regressor, vertices);
}

// Official keypoint_3d_loss: pred (B, J, 3), labels (B, J, 4) = [xyz, confidence], has_3d (B).
// Both sides are re-centred on their own pelvis before the comparison.
template <class T, class D>
Tensor<T, D> keypoint_3d_loss(const Tensor<T, D>& pred, const Tensor<T, D>& labels, const Tensor<T, D>& has_3d) {
  const auto [target, confidence] = detail::split_confidence(labels, 3, "keypoint_3d_loss");
  return gated_mse_loss(center_on_pelvis(pred), center_on_pelvis(target), has_3d, confidence);
}

// Official keypoint_2d_loss (gated, see the header comment): pred (B, J, 2), labels (B, J, 3) = [xy, visibility].
template <class T, class D>
Tensor<T, D> keypoint_2d_loss(const Tensor<T, D>& pred, const Tensor<T, D>& labels, const Tensor<T, D>& has_2d) {
  const auto [target, confidence] = detail::split_confidence(labels, 2, "keypoint_2d_loss");
  return gated_mse_loss(pred, target, has_2d, confidence);
}

// What the network predicts for a batch of B images.
template <class T, class D = cpu>
struct MetroPredictions {
  Tensor<T, D> joints;            // (B, 14, 3) from the joint tokens
  Tensor<T, D> coarse_vertices;   // (B, 431, 3) from the vertex tokens
  Tensor<T, D> mid_vertices;      // (B, 1723, 3) after the first upsampling
  Tensor<T, D> full_vertices;     // (B, 6890, 3) after the second
  Tensor<T, D> regressed_joints;  // (B, 14, 3) = regress_joints(G, full_vertices)
  Tensor<T, D> camera;            // (B, 3) = [s, tx, ty]
};

// The labels of the batch; a sample's has_* flag (1 or 0) says whether its label exists.
template <class T, class D = cpu>
struct MetroTargets {
  Tensor<T, D> joints_3d;        // (B, 14, 4) = [xyz, confidence]
  Tensor<T, D> joints_2d;        // (B, 14, 3) = [xy in [-1, 1], visibility]
  Tensor<T, D> coarse_vertices;  // (B, 431, 3)
  Tensor<T, D> mid_vertices;     // (B, 1723, 3)
  Tensor<T, D> full_vertices;    // (B, 6890, 3)
  Tensor<T, D> has_2d, has_3d, has_mesh;  // (B)
};

// Official defaults: joints_loss_weight 1000, vertices_loss_weight 100 (for the
// vertices and the 2D joints), vloss_w_sub2 = vloss_w_sub = vloss_w_full = 0.33.
struct MetroLossWeights {
  double joints_3d = 1000;
  double vertices = 100;
  double joints_2d = 100;
  double coarse_vertices = 0.33;
  double mid_vertices = 0.33;
  double full_vertices = 0.33;
};

// Every term as a scalar tensor; `total` is the one to differentiate.
template <class T, class D = cpu>
struct MetroLosses {
  Tensor<T, D> joints_3d;            // tokens, pelvis-centred
  Tensor<T, D> regressed_joints_3d;  // regressed from the full mesh, pelvis-centred
  Tensor<T, D> coarse_vertices, mid_vertices, full_vertices;
  Tensor<T, D> vertices;             // the weighted sum of the three levels
  Tensor<T, D> joints_2d;            // projected joint tokens
  Tensor<T, D> regressed_joints_2d;  // projected regressed joints
  Tensor<T, D> total;
};

template <class T, class D>
MetroLosses<T, D> metro_loss(const MetroPredictions<T, D>& pred, const MetroTargets<T, D>& target,
                             const MetroLossWeights& weights = {}) {
  MetroLosses<T, D> out;
  out.joints_3d = keypoint_3d_loss(pred.joints, target.joints_3d, target.has_3d);
  out.regressed_joints_3d = keypoint_3d_loss(pred.regressed_joints, target.joints_3d, target.has_3d);
  out.coarse_vertices = gated_l1_loss(pred.coarse_vertices, target.coarse_vertices, target.has_mesh);
  out.mid_vertices = gated_l1_loss(pred.mid_vertices, target.mid_vertices, target.has_mesh);
  out.full_vertices = gated_l1_loss(pred.full_vertices, target.full_vertices, target.has_mesh);
  out.vertices = out.coarse_vertices * static_cast<T>(weights.coarse_vertices) +
                 out.mid_vertices * static_cast<T>(weights.mid_vertices) +
                 out.full_vertices * static_cast<T>(weights.full_vertices);
  out.joints_2d = keypoint_2d_loss(orthographic_projection(pred.joints, pred.camera), target.joints_2d, target.has_2d);
  out.regressed_joints_2d =
      keypoint_2d_loss(orthographic_projection(pred.regressed_joints, pred.camera), target.joints_2d, target.has_2d);
  out.total = (out.joints_3d + out.regressed_joints_3d) * static_cast<T>(weights.joints_3d) +
              out.vertices * static_cast<T>(weights.vertices) +
              (out.joints_2d + out.regressed_joints_2d) * static_cast<T>(weights.joints_2d);
  return out;
}

}  // namespace metro::nn
