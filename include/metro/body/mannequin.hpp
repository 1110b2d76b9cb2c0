#pragma once
// The procedural mannequin: a skeleton plus a signed distance field (SDF) made
// of tapered capsules and ellipsoids, one set per body part, joined by smooth
// minima. Built mirror-symmetric about x = 0: the person faces +z, y is up,
// their left side is +x, the pelvis (mid-hip) is the origin, average adult
// proportions (1.75 m), rest pose an A-pose (arms 40 degrees below horizontal).
#include "metro/core/vec.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <vector>

#include "metro/body/skinning.hpp"

namespace metro::body {

// Internal skeleton joints; each rotates the body segment below it.
enum SkeletonJoint : int {
  pelvis, spine, chest, neck, head,
  right_clavicle, right_shoulder, right_elbow, right_wrist,
  left_clavicle, left_shoulder, left_elbow, left_wrist,
  right_hip, right_knee, right_ankle,
  left_hip, left_knee, left_ankle,
  kNumSkeletonJoints
};

// Body parts of the SDF primitives.
enum class Part : std::uint8_t { pelvis, abdomen, chest, neck, head, nose, upper_arm, forearm, hand, thigh, shin, foot };

// Per-vertex color classes: clothing, face and skin regions a renderer can paint.
enum class Region : std::uint8_t { skin, hair, eye, nose, mouth, shirt_front, shirt_back, collar, trousers, shoe, hand };

namespace mannequin {

inline constexpr float kArmDropDegrees = 40.0f;  // A-pose: upper arm angle below horizontal

// Unit direction of the left arm in the rest pose.
inline Vec3f left_arm_direction() {
  const float angle = kArmDropDegrees * std::numbers::pi_v<float> / 180.0f;
  return {std::cos(angle), -std::sin(angle), 0.0f};
}

inline Vec3f mirror(const Vec3f& p) { return {-p.x(), p.y(), p.z()}; }

inline int mirror_joint(int joint) {
  if (joint >= right_clavicle && joint <= right_wrist) return joint + 4;
  if (joint >= left_clavicle && joint <= left_wrist) return joint - 4;
  if (joint >= right_hip && joint <= right_ankle) return joint + 3;
  if (joint >= left_hip && joint <= left_ankle) return joint - 3;
  return joint;
}

// Rest skeleton (metres). Left side is defined, right side mirrored.
inline Skeleton rest_skeleton() {
  Skeleton skeleton;
  skeleton.parents = {-1, pelvis, spine, chest, neck,
                      chest, right_clavicle, right_shoulder, right_elbow,
                      chest, left_clavicle, left_shoulder, left_elbow,
                      pelvis, right_hip, right_knee,
                      pelvis, left_hip, left_knee};
  auto& p = skeleton.positions;
  p.resize(kNumSkeletonJoints);
  const Vec3f arm = left_arm_direction();
  p[pelvis] = {0.0f, 0.0f, 0.0f};
  p[spine] = {0.0f, 0.11f, -0.015f};
  p[chest] = {0.0f, 0.29f, -0.02f};
  p[neck] = {0.0f, 0.50f, -0.03f};
  p[head] = {0.0f, 0.625f, -0.005f};
  p[left_clavicle] = {0.025f, 0.47f, 0.01f};
  p[left_shoulder] = {0.175f, 0.475f, -0.02f};
  p[left_elbow] = p[left_shoulder] + 0.28f * arm;
  p[left_wrist] = p[left_elbow] + 0.25f * arm;
  p[left_hip] = {0.09f, -0.01f, 0.0f};
  p[left_knee] = {0.10f, -0.43f, 0.01f};
  p[left_ankle] = {0.11f, -0.82f, -0.02f};
  for (int j = 0; j < kNumSkeletonJoints; ++j)
    if (mirror_joint(j) > j) p[j] = mirror(p[mirror_joint(j)]);  // right joints come first in the enum
  return skeleton;
}

inline Vec3f rest_head_top() { return {0.0f, 0.845f, 0.01f}; }

// One SDF primitive: a tapered capsule (segment a-b, radii ra-rb) or an
// ellipsoid (center a, axes `frame` columns, half-lengths `radii`).
struct Primitive {
  enum class Kind : std::uint8_t { capsule, ellipsoid } kind;
  Vec3f a, b;
  float radius_a = 0, radius_b = 0;
  Mat3f frame = Mat3f::Identity();
  Vec3f radii = Vec3f::Ones();
  float blend = 0.015f;  // smooth-union width (m)
  int bone = pelvis;
  Part part = Part::pelvis;
};

inline Primitive capsule(Vec3f a, float radius_a, Vec3f b, float radius_b, int bone, Part part, float blend = 0.015f) {
  Primitive p{Primitive::Kind::capsule, a, b, radius_a, radius_b};
  p.blend = blend, p.bone = bone, p.part = part;
  return p;
}

inline Primitive ellipsoid(Vec3f center, Vec3f radii, int bone, Part part, float blend = 0.015f,
                           const Mat3f& frame = Mat3f::Identity()) {
  Primitive p{Primitive::Kind::ellipsoid, center, center};
  p.radii = radii, p.frame = frame, p.blend = blend, p.bone = bone, p.part = part;
  return p;
}

// Approximate signed distance (negative inside).
inline float signed_distance(const Primitive& p, const Vec3f& x) {
  if (p.kind == Primitive::Kind::capsule) {
    const Vec3f axis = p.b - p.a;
    const float t = std::clamp((x - p.a).dot(axis) / axis.squaredNorm(), 0.0f, 1.0f);
    return (x - (p.a + t * axis)).norm() - (p.radius_a + t * (p.radius_b - p.radius_a));
  }
  const Vec3f local = p.frame.transpose() * (x - p.a);
  const float scaled = local.cwiseQuotient(p.radii).norm();
  return (scaled - 1.0f) * p.radii.minCoeff();
}

// Polynomial smooth minimum (blend width k).
inline float smooth_min(float a, float b, float k) {
  const float h = std::max(k - std::abs(a - b), 0.0f) / k;
  return std::min(a, b) - h * h * k * 0.25f;
}

// Primitives of the midline and the left side (x >= 0); the right side is their mirror.
inline std::vector<Primitive> half_body_primitives() {
  const Skeleton s = rest_skeleton();
  const auto& j = s.positions;
  const Vec3f arm = left_arm_direction();
  const Vec3f arm_normal(-arm.y(), arm.x(), 0.0f);  // in the frontal plane, pointing up-out
  const Mat3f hand_frame = Mat3f::FromColumns(arm, arm_normal, Vec3f::UnitZ());
  const Vec3f heel(j[left_ankle].x(), -0.855f, -0.05f), toe(j[left_ankle].x() + 0.012f, -0.872f, 0.15f);
  return {
      // torso
      ellipsoid({0.0f, 0.01f, -0.005f}, {0.155f, 0.10f, 0.105f}, pelvis, Part::pelvis, 0.04f),
      ellipsoid({0.065f, -0.035f, -0.05f}, {0.08f, 0.085f, 0.07f}, pelvis, Part::pelvis, 0.04f),
      ellipsoid({0.0f, 0.17f, 0.0f}, {0.14f, 0.12f, 0.095f}, spine, Part::abdomen, 0.05f),
      ellipsoid({0.0f, 0.35f, -0.005f}, {0.165f, 0.145f, 0.105f}, chest, Part::chest, 0.05f),
      capsule({0.0f, 0.445f, -0.02f}, 0.065f, {0.16f, 0.47f, -0.025f}, 0.05f, left_clavicle, Part::chest, 0.04f),
      // neck and head
      capsule({0.0f, 0.47f, -0.03f}, 0.058f, {0.0f, 0.64f, -0.005f}, 0.052f, neck, Part::neck, 0.03f),
      ellipsoid({0.0f, 0.74f, 0.01f}, {0.077f, 0.105f, 0.097f}, head, Part::head, 0.02f),
      ellipsoid({0.0f, 0.665f, 0.04f}, {0.058f, 0.05f, 0.06f}, head, Part::head, 0.03f),
      capsule({0.0f, 0.748f, 0.095f}, 0.011f, {0.0f, 0.716f, 0.118f}, 0.013f, head, Part::nose, 0.012f),
      ellipsoid({0.077f, 0.735f, 0.0f}, {0.014f, 0.03f, 0.02f}, head, Part::head, 0.008f),
      // left arm
      ellipsoid(j[left_shoulder] + 0.02f * arm + Vec3f(0.0f, 0.012f, 0.0f), {0.058f, 0.058f, 0.056f}, left_shoulder,
                Part::upper_arm, 0.03f),
      capsule(j[left_shoulder], 0.048f, j[left_elbow], 0.037f, left_shoulder, Part::upper_arm),
      capsule(j[left_elbow], 0.037f, j[left_elbow] + 0.07f * arm, 0.04f, left_elbow, Part::forearm),
      capsule(j[left_elbow] + 0.07f * arm, 0.04f, j[left_wrist], 0.026f, left_elbow, Part::forearm),
      ellipsoid(j[left_wrist] + 0.075f * arm, {0.08f, 0.021f, 0.045f}, left_wrist, Part::hand, 0.015f, hand_frame),
      capsule(j[left_wrist] + 0.02f * arm + Vec3f(0, 0, 0.03f), 0.013f,
              j[left_wrist] + 0.08f * arm + Vec3f(0, 0, 0.06f) - 0.01f * arm_normal, 0.011f, left_wrist, Part::hand, 0.01f),
      // left leg
      capsule(j[left_hip], 0.078f, j[left_knee], 0.052f, left_hip, Part::thigh, 0.02f),
      capsule(j[left_knee], 0.05f, j[left_ankle], 0.034f, left_knee, Part::shin),
      ellipsoid(j[left_knee] + Vec3f(0.0f, -0.12f, -0.025f), {0.045f, 0.09f, 0.045f}, left_knee, Part::shin, 0.03f),
      capsule(heel, 0.042f, toe, 0.03f, left_ankle, Part::foot, 0.02f),
  };
}

inline Primitive mirrored(Primitive p) {
  p.a = mirror(p.a), p.b = mirror(p.b);
  p.frame.row(0) *= -1.0f;
  p.bone = mirror_joint(p.bone);
  return p;
}

// Both sides: the half-body primitives plus the mirror of every off-midline one.
inline std::vector<Primitive> whole_body_primitives() {
  auto primitives = half_body_primitives();
  const std::size_t half = primitives.size();
  for (std::size_t i = 0; i < half; ++i)
    if (primitives[i].a.x() != 0.0f || primitives[i].b.x() != 0.0f) primitives.push_back(mirrored(primitives[i]));
  return primitives;
}

// The body's SDF, evaluated on the mirror-folded point (|x|, y, z) so the
// surface is exactly symmetric.
inline float body_signed_distance(const std::vector<Primitive>& half_body, Vec3f x) {
  x.x() = std::abs(x.x());
  float distance = signed_distance(half_body[0], x);
  for (std::size_t i = 1; i < half_body.size(); ++i) distance = smooth_min(distance, signed_distance(half_body[i], x), half_body[i].blend);
  return distance;
}

}  // namespace mannequin
}  // namespace metro::body
