#pragma once
// Body shape: 10 interpretable parameters (0 = the average mannequin, each
// roughly in [-2, 2]) turned into one linear scaling L_b per bone. The shaped
// skeleton follows the chain J'_c = J'_p + L_p (J_c - J_p), and a rest vertex
// moves by the skin-weighted blend of v' = J'_b + L_b (v - J_b), so a vertex
// on one bone keeps its place relative to that bone's joints.
#include "metro/core/vec.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "metro/body/mannequin.hpp"
#include "metro/body/skinning.hpp"

namespace metro::body {

inline constexpr int kNumShapeParams = 10;

// values[0] stature: every length and girth, +-5% per unit (1.75 m at 0)
// values[1] weight: torso width/depth (+8%/+12% per unit) and limb girth (+10%)
// values[2] shoulder width: clavicle length (+15% per unit), chest width (+4%)
// values[3] hip width: pelvis width (+10% per unit)
// values[4] arm length: upper arm and forearm (+7% per unit)
// values[5] leg length: thigh and shin (+7% per unit)
// values[6] torso length: pelvis, abdomen and chest height (+7% per unit)
// values[7] head size: head (+7% per unit)
// values[8] belly: abdomen depth (+25% per unit) and width (+5%)
// values[9] muscularity: arm and leg girth (+10% per unit)
struct ShapeParams {
  std::array<float, kNumShapeParams> values{};
};

namespace detail {

// Scale s_along along the unit axis, s_across perpendicular to it.
inline Mat3f axial_scale(const Vec3f& axis, float s_along, float s_across) {
  return s_across * Mat3f::Identity() + (s_along - s_across) * outer(axis, axis);
}

inline float factor(float per_unit, float value) { return std::max(0.3f, 1.0f + per_unit * value); }

inline Vec3f bone_axis(const Skeleton& rest, int bone) {
  const auto& p = rest.positions;
  const Vec3f arm = mannequin::left_arm_direction();
  switch (bone) {
    case left_clavicle: case right_clavicle: case left_shoulder: case right_shoulder:
    case left_elbow: case right_elbow: case left_hip: case right_hip: case left_knee: case right_knee:
      return (p[bone + 1] - p[bone]).normalized();
    case left_wrist: return arm;
    case right_wrist: return mannequin::mirror(arm);
    case left_ankle: case right_ankle: return Vec3f(0.0f, -0.1f, 1.0f).normalized();
    default: return Vec3f::UnitY();
  }
}

}  // namespace detail

// (J) per-bone 3x3 scalings for `shape`.
inline std::vector<Mat3f> bone_scalings(const Skeleton& rest, const ShapeParams& shape) {
  const auto& b = shape.values;
  using detail::factor;
  const float limb_girth = factor(0.10f, b[1]) * factor(0.10f, b[9]);
  std::vector<Mat3f> scale(rest.size());
  for (int j = 0; j < rest.size(); ++j) {
    const Vec3f axis = detail::bone_axis(rest, j);
    switch (j) {
      case pelvis: scale[j] = Mat3f::Diagonal(Vec3f(factor(0.08f, b[1]) * factor(0.10f, b[3]), factor(0.07f, b[6]), factor(0.12f, b[1]))); break;
      case spine: scale[j] = Mat3f::Diagonal(Vec3f(factor(0.08f, b[1]) * factor(0.05f, b[8]), factor(0.07f, b[6]), factor(0.12f, b[1]) * factor(0.25f, b[8]))); break;
      case chest: scale[j] = Mat3f::Diagonal(Vec3f(factor(0.08f, b[1]) * factor(0.04f, b[2]), factor(0.07f, b[6]), factor(0.12f, b[1]))); break;
      case neck: scale[j] = detail::axial_scale(axis, 1.0f, factor(0.06f, b[1])); break;
      case head: scale[j] = factor(0.07f, b[7]) * Mat3f::Identity(); break;
      case left_clavicle: case right_clavicle: scale[j] = detail::axial_scale(axis, factor(0.15f, b[2]), factor(0.08f, b[1])); break;
      case left_shoulder: case right_shoulder: case left_elbow: case right_elbow:
        scale[j] = detail::axial_scale(axis, factor(0.07f, b[4]), limb_girth); break;
      case left_hip: case right_hip: case left_knee: case right_knee:
        scale[j] = detail::axial_scale(axis, factor(0.07f, b[5]), limb_girth); break;
      default: scale[j] = detail::axial_scale(axis, 1.0f, std::sqrt(limb_girth)); break;  // hands and feet
    }
    scale[j] *= factor(0.05f, b[0]);
  }
  return scale;
}

// The skeleton of `shape`: J'_root = J_root, J'_c = J'_p + L_p (J_c - J_p).
inline Skeleton shaped_skeleton(const Skeleton& rest, const std::vector<Mat3f>& scale) {
  Skeleton shaped = rest;
  for (int j = 0; j < rest.size(); ++j) {
    const int parent = rest.parents[j];
    if (parent >= 0) shaped.positions[j] = shaped.positions[parent] + scale[parent] * (rest.positions[j] - rest.positions[parent]);
  }
  return shaped;
}

// (J) affine maps v -> J'_b + L_b (v - J_b) that take the rest body to the shaped one.
inline std::vector<BoneTransform> shape_transforms(const Skeleton& rest, const Skeleton& shaped, const std::vector<Mat3f>& scale) {
  std::vector<BoneTransform> transforms(rest.parents.size());
  for (int j = 0; j < rest.size(); ++j) transforms[j] = {scale[j], shaped.positions[j] - scale[j] * rest.positions[j]};
  return transforms;
}

}  // namespace metro::body
