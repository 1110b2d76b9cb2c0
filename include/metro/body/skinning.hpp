#pragma once
// Skeleton, forward kinematics and linear blend skinning (LBS), the same
// deformation model SMPL uses (Loper et al. 2015), which METRO's template and
// ground truth come from (METRO Sec. 3, 4).

#include <array>
#include <cmath>
#include <vector>

#include "metro/core/error.hpp"
#include "metro/core/vec.hpp"

namespace metro::body {

// A kinematic tree; joints are listed parents first.
struct Skeleton {
  std::vector<int> parents;      // (J) parent joint, -1 for the root
  std::vector<Vec3f> positions;  // (J, 3) rest joint positions
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
  Mat3f linear = Mat3f::Identity();
  Vec3f translation = Vec3f::Zero();

  Vec3f operator()(const Vec3f& v) const { return linear * v + translation; }
  // The composition this(inner(v)).
  BoneTransform after(const BoneTransform& inner) const { return {linear * inner.linear, (*this)(inner.translation)}; }
};

// Rodrigues' formula: rotation of |axis_angle| radians about k = axis_angle / |axis_angle|,
// R = cos(a) I + sin(a) [k]x + (1 - cos(a)) k k^T.
inline Mat3f rotation_from_axis_angle(const Vec3f& axis_angle) {
  const float angle = axis_angle.norm();
  if (angle < 1e-8f) return Mat3f::Identity();
  const Vec3f k = axis_angle / angle;
  const Mat3f cross{{{0.0f, -k.z(), k.y()}, {k.z(), 0.0f, -k.x()}, {-k.y(), k.x(), 0.0f}}};  // [k]x: v -> k x v
  const float c = std::cos(angle), s = std::sin(angle);
  return c * Mat3f::Identity() + s * cross + (1.0f - c) * outer(k, k);
}

// The inverse of Rodrigues' formula, in double: R - R^T = 2 sin(angle) [k]x and
// tr R = 1 + 2 cos(angle) give angle = atan2(sin, cos) in [0, pi] (accurate at both ends)
// and the axis; near pi, where the skew part vanishes, the axis is the largest column of
// R + R^T + (1 - tr R) I = 2 (1 - cos(angle)) k k^T.
inline Vec3f axis_angle_from_rotation(const Mat3f& rotation) {
  const Mat3d r = rotation.cast<double>();
  const Vec3d skew(r(2, 1) - r(1, 2), r(0, 2) - r(2, 0), r(1, 0) - r(0, 1));  // 2 sin(angle) k
  const double angle = std::atan2(0.5 * skew.norm(), 0.5 * (r.trace() - 1.0));
  if (angle < 3.0) return (skew.normalized() * angle).cast<float>();  // zero for the identity
  const Mat3d kk = r + r.transpose() + (1.0 - r.trace()) * Mat3d::Identity();
  int best = 0;
  for (int i = 1; i < 3; ++i) best = kk(i, i) > kk(best, best) ? i : best;
  Vec3d axis = kk.col(best).normalized();
  if (axis.dot(skew) < 0.0) axis = -axis;  // the sign sin(angle) > 0 leaves in the skew part
  return (axis * angle).cast<float>();
}

// World transforms of every joint: G_j = G_parent * [R_j | J_j - J_parent]
// (rotations are local, relative to the rest orientation). `rest` may be shaped.
inline std::vector<BoneTransform> forward_kinematics(const Skeleton& skeleton, const std::vector<Vec3f>& axis_angles) {
  if (static_cast<int>(axis_angles.size()) != skeleton.size())
    throw ShapeError("forward_kinematics: " + std::to_string(axis_angles.size()) + " rotations for " + std::to_string(skeleton.size()) + " joints");
  std::vector<BoneTransform> world(skeleton.parents.size());
  for (int j = 0; j < skeleton.size(); ++j) {
    const int parent = skeleton.parents[j];
    const BoneTransform local{rotation_from_axis_angle(axis_angles[j]),
                              parent < 0 ? skeleton.positions[j] : skeleton.positions[j] - skeleton.positions[parent]};
    world[j] = parent < 0 ? local : world[parent].after(local);
  }
  return world;
}

// Per-vertex blend of per-bone transforms applied to rest points:
// v_i' = sum_b w_ib T_b v_i, with T_b mapping the rest pose to the posed one.
inline std::vector<Vec3f> blend_transforms(const std::vector<Vec3f>& rest_vertices, const SkinWeights& skin,
                                           const std::vector<BoneTransform>& bone_transforms) {
  std::vector<Vec3f> out(rest_vertices.size());
  for (std::size_t i = 0; i < rest_vertices.size(); ++i) {
    BoneTransform blend{Mat3f::Zero(), Vec3f::Zero()};
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
inline std::vector<Vec3f> linear_blend_skinning(const std::vector<Vec3f>& rest_vertices, const SkinWeights& skin,
                                                const Skeleton& skeleton, const std::vector<BoneTransform>& world) {
  std::vector<BoneTransform> bone_transforms(world.size());
  for (std::size_t j = 0; j < world.size(); ++j)
    bone_transforms[j] = {world[j].linear, world[j](-skeleton.positions[j])};  // v -> G_j (v - J_j)
  return blend_transforms(rest_vertices, skin, bone_transforms);
}

}  // namespace metro::body
