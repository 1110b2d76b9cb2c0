#pragma once
// Skeleton, forward kinematics and linear blend skinning (LBS), the same
// deformation model SMPL uses (Loper et al. 2015), which METRO's template and
// ground truth come from (METRO Sec. 3, 4).
#include "metro/core/eigen.hpp"

#include <array>
#include <cmath>
#include <vector>

#include "metro/core/error.hpp"

namespace metro::body {

// A kinematic tree; joints are listed parents first.
struct Skeleton {
  std::vector<int> parents;                // (J) parent joint, -1 for the root
  std::vector<Eigen::Vector3f> positions;  // (J, 3) rest joint positions
  int size() const { return static_cast<int>(parents.size()); }
};

// Up to four bones per vertex, weights >= 0 summing to 1.
inline constexpr int kMaxInfluences = 4;
struct SkinWeights {
  std::vector<std::array<int, kMaxInfluences>> bones;      // (V, 4) joint ids (unused slots: weight 0)
  std::vector<std::array<float, kMaxInfluences>> weights;  // (V, 4)
};

// An affine map v -> linear v + translation: a bone's transform in LBS.
struct BoneTransform {
  Eigen::Matrix3f linear = Eigen::Matrix3f::Identity();
  Eigen::Vector3f translation = Eigen::Vector3f::Zero();

  Eigen::Vector3f operator()(const Eigen::Vector3f& v) const { return linear * v + translation; }
  // The composition this(inner(v)).
  BoneTransform after(const BoneTransform& inner) const { return {linear * inner.linear, (*this)(inner.translation)}; }
};

// Rodrigues' formula: rotation of |axis_angle| radians about k = axis_angle / |axis_angle|,
// R = cos(a) I + sin(a) [k]x + (1 - cos(a)) k k^T.
inline Eigen::Matrix3f rotation_from_axis_angle(const Eigen::Vector3f& axis_angle) {
  const float angle = axis_angle.norm();
  if (angle < 1e-8f) return Eigen::Matrix3f::Identity();
  const Eigen::Vector3f k = axis_angle / angle;
  Eigen::Matrix3f cross;  // [k]x, the matrix of v -> k x v
  cross << 0.0f, -k.z(), k.y(), k.z(), 0.0f, -k.x(), -k.y(), k.x(), 0.0f;
  const float c = std::cos(angle), s = std::sin(angle);
  return c * Eigen::Matrix3f::Identity() + s * cross + (1.0f - c) * (k * k.transpose());
}

inline Eigen::Vector3f axis_angle_from_rotation(const Eigen::Matrix3f& rotation) {
  const Eigen::AngleAxisf angle_axis(rotation);
  return angle_axis.axis() * angle_axis.angle();
}

// World transforms of every joint: G_j = G_parent * [R_j | J_j - J_parent]
// (rotations are local, relative to the rest orientation). `rest` may be shaped.
inline std::vector<BoneTransform> forward_kinematics(const Skeleton& skeleton, const std::vector<Eigen::Vector3f>& axis_angles) {
  if (static_cast<int>(axis_angles.size()) != skeleton.size())
    throw ShapeError("forward_kinematics: " + std::to_string(axis_angles.size()) + " rotations for " + std::to_string(skeleton.size()) + " joints");
  std::vector<BoneTransform> world(skeleton.parents.size());
  for (int j = 0; j < skeleton.size(); ++j) {
    const int parent = skeleton.parents[j];
    const BoneTransform local{rotation_from_axis_angle(axis_angles[j]),
                              parent < 0 ? skeleton.positions[j] : Eigen::Vector3f(skeleton.positions[j] - skeleton.positions[parent])};
    world[j] = parent < 0 ? local : world[parent].after(local);
  }
  return world;
}

// Per-vertex blend of per-bone transforms applied to rest points:
// v_i' = sum_b w_ib T_b v_i, with T_b mapping the rest pose to the posed one.
inline std::vector<Eigen::Vector3f> blend_transforms(const std::vector<Eigen::Vector3f>& rest_vertices, const SkinWeights& skin,
                                                     const std::vector<BoneTransform>& bone_transforms) {
  std::vector<Eigen::Vector3f> out(rest_vertices.size());
  for (std::size_t i = 0; i < rest_vertices.size(); ++i) {
    BoneTransform blend{Eigen::Matrix3f::Zero(), Eigen::Vector3f::Zero()};
    for (int k = 0; k < kMaxInfluences; ++k) {
      const float w = skin.weights[i][k];
      if (w == 0.0f) continue;
      blend.linear += w * bone_transforms[skin.bones[i][k]].linear;
      blend.translation += w * bone_transforms[skin.bones[i][k]].translation;
    }
    out[i] = blend(rest_vertices[i]);
  }
  return out;
}

// LBS: T_b = G_b * translate(-J_b), so a vertex rigidly attached to bone b
// keeps its offset from joint b.
inline std::vector<Eigen::Vector3f> linear_blend_skinning(const std::vector<Eigen::Vector3f>& rest_vertices, const SkinWeights& skin,
                                                          const Skeleton& skeleton, const std::vector<BoneTransform>& world) {
  std::vector<BoneTransform> bone_transforms(world.size());
  for (std::size_t j = 0; j < world.size(); ++j)
    bone_transforms[j] = {world[j].linear, world[j](-skeleton.positions[j])};  // v -> G_j (v - J_j)
  return blend_transforms(rest_vertices, skin, bone_transforms);
}

}  // namespace metro::body
