#pragma once
// Random poses within anatomical limits. Each joint is driven by named
// anatomical angles (flexion, abduction, twist...) about axes fixed in the rest
// pose; a pose family (standing, walking, arms raised, sitting, bending,
// turning, free) sets their typical ranges, then the angles are clamped to the
// joint limits and turned into the per-joint axis-angle vectors of PoseParams.
#include "metro/core/vec.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <vector>

#include "metro/body/mannequin.hpp"
#include "metro/core/random.hpp"

namespace metro::body {

struct PoseParams {
  std::vector<Vec3f> axis_angle;  // (kNumSkeletonJoints) local rotations; [0] = root (global orientation)
};

// Anatomical angles (degrees) of one side, written for the left side (+x).
struct LimbAngles {
  float clavicle_elevation = 0, clavicle_protraction = 0;
  float shoulder_flexion = 0, shoulder_abduction = 0, shoulder_twist = 0;  // abduction 0 = A-pose, -50 = arm down
  float elbow_flexion = 0;
  float wrist_flexion = 0, wrist_deviation = 0, wrist_twist = 0;
  float hip_flexion = 0, hip_abduction = 0, hip_twist = 0;
  float knee_flexion = 0;
  float ankle_flexion = 0, ankle_inversion = 0;  // flexion > 0 lifts the toes
};

// Flexion (forward bend), twist (about y), lateral bend (about z), degrees.
struct AxialAngles {
  float flexion = 0, twist = 0, lateral = 0;
};

struct AnatomicalPose {
  float yaw = 0, pitch = 0, roll = 0;  // root orientation, degrees
  AxialAngles spine, chest, neck, head;
  LimbAngles left, right;
};

// Joint limits (degrees): {low, high}.
struct JointLimits {
  static constexpr float spine_flexion[2]{-20, 45}, spine_twist[2]{-30, 30}, spine_lateral[2]{-20, 20};
  static constexpr float neck_flexion[2]{-35, 45}, neck_twist[2]{-60, 60}, neck_lateral[2]{-30, 30};
  static constexpr float clavicle_elevation[2]{-10, 25}, clavicle_protraction[2]{-15, 20};
  static constexpr float shoulder_flexion[2]{-40, 150}, shoulder_abduction[2]{-35, 130}, shoulder_twist[2]{-60, 60};
  static constexpr float elbow_flexion[2]{0, 145};
  static constexpr float wrist_flexion[2]{-60, 60}, wrist_deviation[2]{-20, 30}, wrist_twist[2]{-80, 80};
  static constexpr float hip_flexion[2]{-20, 120}, hip_abduction[2]{-15, 45}, hip_twist[2]{-35, 35};
  static constexpr float knee_flexion[2]{0, 150};
  static constexpr float ankle_flexion[2]{-40, 25}, ankle_inversion[2]{-15, 15};
};

namespace detail {

inline float degrees_to_radians(float degrees) { return degrees * std::numbers::pi_v<float> / 180.0f; }

inline Mat3f rotation_about(const Vec3f& axis, float degrees) {
  return rotation_from_axis_angle(degrees_to_radians(degrees) * axis.normalized());
}

inline float clamp_to(float value, const float (&limits)[2]) { return std::clamp(value, limits[0], limits[1]); }

// Forward axis of the left arm's hinges: rotating the arm about it moves it to +z.
inline Vec3f left_arm_flexion_axis() { return mannequin::left_arm_direction().cross(Vec3f::UnitZ()).normalized(); }

inline Mat3f axial_rotation(const AxialAngles& a) {
  return rotation_about(Vec3f::UnitZ(), a.lateral) * rotation_about(Vec3f::UnitX(), a.flexion) *
         rotation_about(Vec3f::UnitY(), a.twist);
}

// Mirror a left-side rotation to the right side: S R S with S = diag(-1, 1, 1).
inline Mat3f mirror_rotation(const Mat3f& r) {
  const Mat3f s = Mat3f::Diagonal({-1.0f, 1.0f, 1.0f});
  return s * r * s;
}

// Left-side local rotations of clavicle, shoulder, elbow, wrist, hip, knee, ankle.
inline std::array<Mat3f, 7> limb_rotations(const LimbAngles& a) {
  const Vec3f x = Vec3f::UnitX(), y = Vec3f::UnitY(), z = Vec3f::UnitZ();
  const Vec3f arm = mannequin::left_arm_direction(), arm_flexion = left_arm_flexion_axis();
  const Vec3f palm_normal(-arm.y(), arm.x(), 0.0f);
  return {
      rotation_about(z, a.clavicle_elevation) * rotation_about(y, -a.clavicle_protraction),
      rotation_about(z, a.shoulder_abduction) * rotation_about(arm_flexion, a.shoulder_flexion) * rotation_about(arm, a.shoulder_twist),
      rotation_about(arm_flexion, a.elbow_flexion),
      rotation_about(arm_flexion, a.wrist_flexion) * rotation_about(palm_normal, a.wrist_deviation) * rotation_about(arm, a.wrist_twist),
      rotation_about(z, a.hip_abduction) * rotation_about(x, -a.hip_flexion) * rotation_about(y, a.hip_twist),
      rotation_about(x, a.knee_flexion),
      rotation_about(x, -a.ankle_flexion) * rotation_about(z, a.ankle_inversion),
  };
}

inline LimbAngles clamp_limb(LimbAngles a) {
  using L = JointLimits;
  a.clavicle_elevation = clamp_to(a.clavicle_elevation, L::clavicle_elevation);
  a.clavicle_protraction = clamp_to(a.clavicle_protraction, L::clavicle_protraction);
  a.shoulder_flexion = clamp_to(a.shoulder_flexion, L::shoulder_flexion);
  a.shoulder_abduction = clamp_to(a.shoulder_abduction, L::shoulder_abduction);
  a.shoulder_twist = clamp_to(a.shoulder_twist, L::shoulder_twist);
  a.elbow_flexion = clamp_to(a.elbow_flexion, L::elbow_flexion);
  a.wrist_flexion = clamp_to(a.wrist_flexion, L::wrist_flexion);
  a.wrist_deviation = clamp_to(a.wrist_deviation, L::wrist_deviation);
  a.wrist_twist = clamp_to(a.wrist_twist, L::wrist_twist);
  a.hip_flexion = clamp_to(a.hip_flexion, L::hip_flexion);
  a.hip_abduction = clamp_to(a.hip_abduction, L::hip_abduction);
  a.hip_twist = clamp_to(a.hip_twist, L::hip_twist);
  a.knee_flexion = clamp_to(a.knee_flexion, L::knee_flexion);
  a.ankle_flexion = clamp_to(a.ankle_flexion, L::ankle_flexion);
  a.ankle_inversion = clamp_to(a.ankle_inversion, L::ankle_inversion);
  return a;
}

inline AxialAngles clamp_axial(AxialAngles a, const float (&flexion)[2], const float (&twist)[2], const float (&lateral)[2]) {
  return {clamp_to(a.flexion, flexion), clamp_to(a.twist, twist), clamp_to(a.lateral, lateral)};
}

}  // namespace detail

// Anatomical angles -> PoseParams (angles are clamped to JointLimits first).
inline PoseParams pose_from_angles(const AnatomicalPose& pose) {
  using L = JointLimits;
  using namespace detail;
  std::vector<Mat3f> local(kNumSkeletonJoints, Mat3f::Identity());
  local[pelvis] = rotation_about(Vec3f::UnitY(), pose.yaw) * rotation_about(Vec3f::UnitX(), pose.pitch) *
                  rotation_about(Vec3f::UnitZ(), pose.roll);
  local[spine] = axial_rotation(clamp_axial(pose.spine, L::spine_flexion, L::spine_twist, L::spine_lateral));
  local[chest] = axial_rotation(clamp_axial(pose.chest, L::spine_flexion, L::spine_twist, L::spine_lateral));
  local[neck] = axial_rotation(clamp_axial(pose.neck, L::neck_flexion, L::neck_twist, L::neck_lateral));
  local[head] = axial_rotation(clamp_axial(pose.head, L::neck_flexion, L::neck_twist, L::neck_lateral));
  const std::array<int, 7> left_joints{left_clavicle, left_shoulder, left_elbow, left_wrist, left_hip, left_knee, left_ankle};
  const auto left = limb_rotations(clamp_limb(pose.left)), right = limb_rotations(clamp_limb(pose.right));
  for (int k = 0; k < 7; ++k) {
    local[left_joints[k]] = left[k];
    local[mannequin::mirror_joint(left_joints[k])] = mirror_rotation(right[k]);
  }
  PoseParams params;
  for (const auto& r : local) params.axis_angle.push_back(axis_angle_from_rotation(r));
  return params;
}

namespace detail {

inline float uniform(Generator& rng, float low, float high) { return rng.uniform<float>(low, high); }

// Everyday small variations around a relaxed stance.
inline LimbAngles relaxed_limb(Generator& rng) {
  LimbAngles a;
  a.clavicle_elevation = uniform(rng, -5, 10), a.clavicle_protraction = uniform(rng, -5, 10);
  a.shoulder_flexion = uniform(rng, -15, 25), a.shoulder_abduction = uniform(rng, -30, 10), a.shoulder_twist = uniform(rng, -30, 30);
  a.elbow_flexion = uniform(rng, 0, 45);
  a.wrist_flexion = uniform(rng, -30, 30), a.wrist_deviation = uniform(rng, -10, 15), a.wrist_twist = uniform(rng, -50, 50);
  a.hip_flexion = uniform(rng, -8, 15), a.hip_abduction = uniform(rng, -5, 12), a.hip_twist = uniform(rng, -15, 15);
  a.knee_flexion = uniform(rng, 0, 15);
  a.ankle_flexion = uniform(rng, -10, 10), a.ankle_inversion = uniform(rng, -5, 5);
  return a;
}

inline AxialAngles relaxed_axial(Generator& rng, float scale) {
  return {scale * uniform(rng, -5, 10), scale * uniform(rng, -10, 10), scale * uniform(rng, -5, 5)};
}

inline void walking(Generator& rng, AnatomicalPose& pose) {
  const float phase = uniform(rng, 0, 2 * std::numbers::pi_v<float>), stride = uniform(rng, 15, 35);
  const float swing = std::sin(phase);
  pose.left.hip_flexion = stride * swing, pose.right.hip_flexion = -stride * swing;
  pose.left.knee_flexion = uniform(rng, 5, 20) + 40 * std::max(0.0f, std::sin(phase + 1.2f));
  pose.right.knee_flexion = uniform(rng, 5, 20) + 40 * std::max(0.0f, -std::sin(phase + 1.2f));
  pose.left.shoulder_flexion = -0.8f * stride * swing, pose.right.shoulder_flexion = 0.8f * stride * swing;
  pose.left.shoulder_abduction = uniform(rng, -30, -15), pose.right.shoulder_abduction = uniform(rng, -30, -15);
  pose.left.elbow_flexion = uniform(rng, 10, 40), pose.right.elbow_flexion = uniform(rng, 10, 40);
  pose.chest.twist = 5 * swing;
}

inline void arms_raised(Generator& rng, AnatomicalPose& pose) {
  const bool both = rng.uniform<float>() < 0.6f, left_first = rng.uniform<float>() < 0.5f;
  for (LimbAngles* limb : {&pose.left, &pose.right}) {
    if (!both && (limb == &pose.left) != left_first) continue;
    limb->shoulder_abduction = uniform(rng, 30, 130), limb->shoulder_flexion = uniform(rng, -20, 60);
    limb->elbow_flexion = uniform(rng, 0, 100), limb->clavicle_elevation = uniform(rng, 5, 20);
  }
}

inline void sitting(Generator& rng, AnatomicalPose& pose) {
  for (LimbAngles* limb : {&pose.left, &pose.right}) {
    limb->hip_flexion = uniform(rng, 65, 100), limb->knee_flexion = uniform(rng, 65, 110), limb->hip_abduction = uniform(rng, 0, 20);
    limb->shoulder_flexion = uniform(rng, 0, 50), limb->elbow_flexion = uniform(rng, 20, 90), limb->shoulder_abduction = uniform(rng, -25, 0);
  }
  pose.spine.flexion = uniform(rng, 0, 15);
}

inline void bending(Generator& rng, AnatomicalPose& pose) {
  pose.spine.flexion = uniform(rng, 15, 40), pose.chest.flexion = uniform(rng, 10, 30);
  const float hips = uniform(rng, 15, 60), knees = uniform(rng, 0, 30);
  for (LimbAngles* limb : {&pose.left, &pose.right}) {
    limb->hip_flexion = hips + uniform(rng, -5, 5), limb->knee_flexion = knees + uniform(rng, 0, 10);
    limb->shoulder_flexion = uniform(rng, 20, 80), limb->shoulder_abduction = uniform(rng, -25, 0);
  }
}

inline void turning(Generator& rng, AnatomicalPose& pose) {
  pose.spine.twist = uniform(rng, -30, 30), pose.chest.twist = uniform(rng, -30, 30), pose.neck.twist = uniform(rng, -50, 50);
  LimbAngles& reaching = rng.uniform<float>() < 0.5f ? pose.left : pose.right;
  reaching.shoulder_flexion = uniform(rng, 40, 120), reaching.elbow_flexion = uniform(rng, 0, 60);
}

inline LimbAngles free_limb(Generator& rng) {
  using L = JointLimits;
  const auto within = [&](const float (&limits)[2]) { return 0.7f * uniform(rng, limits[0], limits[1]); };
  LimbAngles a;
  a.clavicle_elevation = within(L::clavicle_elevation), a.clavicle_protraction = within(L::clavicle_protraction);
  a.shoulder_flexion = within(L::shoulder_flexion), a.shoulder_abduction = std::max(-20.0f, within(L::shoulder_abduction));
  a.shoulder_twist = within(L::shoulder_twist), a.elbow_flexion = within(L::elbow_flexion);
  a.wrist_flexion = within(L::wrist_flexion), a.wrist_deviation = within(L::wrist_deviation), a.wrist_twist = within(L::wrist_twist);
  a.hip_flexion = within(L::hip_flexion), a.hip_abduction = within(L::hip_abduction), a.hip_twist = within(L::hip_twist);
  a.knee_flexion = within(L::knee_flexion), a.ankle_flexion = within(L::ankle_flexion), a.ankle_inversion = within(L::ankle_inversion);
  return a;
}

// Mostly facing the camera (+z), a wide spread of yaw including back views.
inline void root_orientation(Generator& rng, AnatomicalPose& pose) {
  pose.yaw = rng.uniform<float>() < 0.65f ? std::clamp(rng.normal<float>(0.0f, 40.0f), -180.0f, 180.0f) : uniform(rng, -180, 180);
  pose.pitch = std::clamp(rng.normal<float>(0.0f, 5.0f), -15.0f, 15.0f);
  pose.roll = std::clamp(rng.normal<float>(0.0f, 5.0f), -15.0f, 15.0f);
}

}  // namespace detail

// A plausible random pose: family weights standing 0.2, walking 0.2, arms
// raised 0.15, sitting 0.15, bending 0.1, turning 0.1, free 0.1.
inline AnatomicalPose sample_anatomical_pose(Generator& rng) {
  using namespace detail;
  AnatomicalPose pose;
  pose.left = relaxed_limb(rng), pose.right = relaxed_limb(rng);
  pose.spine = relaxed_axial(rng, 1.0f), pose.chest = relaxed_axial(rng, 1.0f);
  pose.neck = relaxed_axial(rng, 2.0f), pose.head = relaxed_axial(rng, 1.0f);
  const float family = rng.uniform<float>();
  if (family < 0.2f) {
    // standing: keep the relaxed angles drawn above
  } else if (family < 0.4f) {
    walking(rng, pose);
  } else if (family < 0.55f) {
    arms_raised(rng, pose);
  } else if (family < 0.7f) {
    sitting(rng, pose);
  } else if (family < 0.8f) {
    bending(rng, pose);
  } else if (family < 0.9f) {
    turning(rng, pose);
  } else {
    pose.left = free_limb(rng), pose.right = free_limb(rng);
  }
  root_orientation(rng, pose);
  return pose;
}

}  // namespace metro::body
