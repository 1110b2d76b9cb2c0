#pragma once
// Perspective pinhole camera in the usual computer-vision frame: x right, y DOWN,
// z forward (into the scene). Pixel i covers [i, i+1); its center is i + 0.5.
#include "metro/core/vec.hpp"

namespace metro::render {

struct Camera {
  float fx = 1, fy = 1, cx = 0, cy = 0;  // intrinsics, pixels

  // Camera-frame point (metres, z > 0) -> pixel coordinates.
  Vec2f project(const Vec3f& point) const noexcept {
    return {fx * point.x() / point.z() + cx, fy * point.y() / point.z() + cy};
  }
  // The same camera for an image `factor` times larger (supersampling).
  Camera scaled(float factor) const noexcept { return {fx * factor, fy * factor, cx * factor, cy * factor}; }
};

// The body model's frame (metres, y up, facing +z, pelvis at the origin) to the
// camera frame, for a camera looking at the person's front: a half turn about x
// (y up -> y down, facing +z -> facing the camera at -z), then `translation`
// (e.g. (0, 0, distance)). Yaw and tilt come from the pose's root rotation.
inline Vec3f body_to_camera(const Vec3f& point, const Vec3f& translation) noexcept {
  return Vec3f(point.x(), -point.y(), -point.z()) + translation;
}

// METRO's weak-perspective camera (s, tx, ty) maps a pelvis-relative point X to
// normalized image coordinates s * (X.xy + (tx, ty)) in [-1, 1] (Sec. 3.4, eq. (4); pixel =
// (normalized + 1) * size / 2). The same picture from a long-focal pinhole camera:
// move the mesh by (tx, ty, 2 f / (size s)) and use focal length f, principal point
// at the center. Used to draw predicted meshes over their input images.
struct PerspectiveView {
  Camera camera;
  Vec3f translation;  // add to pelvis-relative points (camera frame)
};

inline PerspectiveView from_weak_perspective(float s, float tx, float ty, int image_size, float focal = 5000) {
  const float size = static_cast<float>(image_size);
  return {{focal, focal, size / 2, size / 2}, Vec3f(tx, ty, 2 * focal / (size * s))};
}

}  // namespace metro::render
