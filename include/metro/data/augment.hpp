#pragma once
// Training-time augmentation of one sample, following the official METRO code
// (flip p=0.5, rotation N(0, 30 deg) clipped to +-60 and zero with p=0.6, scale
// N(1, 0.25) clipped to [0.75, 1.25], per-channel pixel scale U(0.6, 1.4)), plus
// optional random occluding boxes; then ImageNet mean/std normalization.
// The crop, rotation and flip move the image, the 2D joints and the 3D labels
// together, so a sample stays consistent.
#include "metro/core/vec.hpp"
#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>
#include <span>
#include <string>
#include <vector>

#include "metro/core/random.hpp"
#include "metro/data/annotations.hpp"
#include "metro/render/image.hpp"

namespace metro::data {

inline constexpr std::array<float, 3> kImageNetMean = {0.485f, 0.456f, 0.406f};
inline constexpr std::array<float, 3> kImageNetStd = {0.229f, 0.224f, 0.225f};

struct AugmentOptions {
  bool enabled = true;  // false: plain crop + normalization (evaluation)
  float flip_probability = 0.5f;
  float rotation_std_degrees = 30, rotation_max_degrees = 60, rotation_zero_probability = 0.6f;
  float scale_std = 0.25f, scale_min = 0.75f, scale_max = 1.25f;
  float color_scale_min = 0.6f, color_scale_max = 1.4f;
  float occluder_probability = 0.0f;  // chance of one random box over the input image
};

// Named settings for training: "full" (all of the above, the official set),
// "flip" (mirroring only: twice the distinct samples, each still a plain render)
// or "none" (plain crops).
inline AugmentOptions augment_mode(const std::string& name) {
  AugmentOptions options;
  if (name == "none") {
    options.enabled = false;
  } else if (name == "flip") {
    options.rotation_zero_probability = 1, options.scale_std = 0;
    options.color_scale_min = options.color_scale_max = 1;
  } else if (name != "full") {
    throw UsageError("augmentation mode '" + name + "': expected full, flip or none");
  }
  return options;
}

// The random choices for one sample.
struct AugmentParams {
  bool flip = false;
  float rotation_degrees = 0;
  float scale = 1;
  std::array<float, 3> color_scale{1, 1, 1};
  bool occluder = false;
  std::array<float, 4> occluder_box{};  // left, top, width, height as fractions of the output side
  std::array<float, 3> occluder_color{};
};

inline AugmentParams sample_augment_params(Generator& rng, const AugmentOptions& options) {
  AugmentParams p;
  if (!options.enabled) return p;
  p.flip = rng.uniform<float>() < options.flip_probability;
  const float rotation = std::clamp(rng.normal<float>() * options.rotation_std_degrees,
                                    -options.rotation_max_degrees, options.rotation_max_degrees);
  p.rotation_degrees = rng.uniform<float>() < options.rotation_zero_probability ? 0.0f : rotation;
  p.scale = std::clamp(1 + rng.normal<float>() * options.scale_std, options.scale_min, options.scale_max);
  for (float& c : p.color_scale) c = rng.uniform(options.color_scale_min, options.color_scale_max);
  p.occluder = rng.uniform<float>() < options.occluder_probability;
  const float width = rng.uniform(0.15f, 0.45f), height = rng.uniform(0.15f, 0.45f);
  p.occluder_box = {rng.uniform(0.0f, 1 - width), rng.uniform(0.0f, 1 - height), width, height};
  for (float& c : p.occluder_color) c = rng.uniform<float>();
  return p;
}

// The similarity that maps stored-image pixels to output pixels:
// out = R/2 + (R / box) * Rot(theta) * (src - center), then x -> R - x if flipped.
struct CropTransform {
  Vec2f center;
  float pixels_per_source = 1;  // R / box side
  float cos_theta = 1, sin_theta = 0;
  float output_size = 1;
  bool flip = false;

  CropTransform(const SampleAnnotation& labels, const AugmentParams& p, int output)
      : center(labels.center[0], labels.center[1]),
        pixels_per_source(static_cast<float>(output) / (labels.scale * 200 * p.scale)),
        cos_theta(std::cos(p.rotation_degrees * std::numbers::pi_v<float> / 180)),
        sin_theta(std::sin(p.rotation_degrees * std::numbers::pi_v<float> / 180)),
        output_size(static_cast<float>(output)), flip(p.flip) {}

  // Rotation of the image plane (x right, y down); 3D labels turn with it about the optical axis.
  Vec2f rotate(const Vec2f& v) const noexcept {
    return {cos_theta * v.x() - sin_theta * v.y(), sin_theta * v.x() + cos_theta * v.y()};
  }
  Vec2f to_output(const Vec2f& source) const noexcept {
    Vec2f out = Vec2f::Constant(output_size / 2) + pixels_per_source * rotate(source - center);
    if (flip) out.x() = output_size - out.x();
    return out;
  }
  Vec2f to_source(Vec2f out) const noexcept {
    if (flip) out.x() = output_size - out.x();
    const Vec2f v = (out - Vec2f::Constant(output_size / 2)) / pixels_per_source;
    return center + Vec2f(cos_theta * v.x() + sin_theta * v.y(), -sin_theta * v.x() + cos_theta * v.y());
  }
};

// 2D joints (J, 3) in stored pixels -> (J, 3) in [-1, 1] output coordinates
// (2 * x / R - 1, the official convention), flipped joints swapped through
// `joint_symmetry`; joints leaving the output lose their visibility.
inline void transform_joints_2d(std::span<const float> source, const CropTransform& crop,
                                std::span<const int> joint_symmetry, std::span<float> out) {
  const std::size_t joints = source.size() / 3;
  for (std::size_t j = 0; j < joints; ++j) {
    const std::size_t from = crop.flip ? static_cast<std::size_t>(joint_symmetry[j]) : j;
    const Vec2f p = crop.to_output({source[3 * from], source[3 * from + 1]});
    const Vec2f normalized = 2 * p / crop.output_size - Vec2f::Ones();
    const bool inside = normalized.cwiseAbs().maxCoeff() <= 1;
    out[3 * j] = normalized.x(), out[3 * j + 1] = normalized.y();
    out[3 * j + 2] = inside ? source[3 * from + 2] : 0.0f;
  }
}

// 3D points (N, stride) in the camera frame -> (N, stride) relative to `root`,
// turned with the image rotation and mirrored (x -> -x, swapped through
// `symmetry`) when flipped. Extra columns (confidence) are copied.
inline void transform_points_3d(std::span<const float> source, int stride, const Vec3f& root,
                                const CropTransform& crop, std::span<const int> symmetry, std::span<float> out) {
  const std::size_t count = source.size() / stride;
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t from = crop.flip ? static_cast<std::size_t>(symmetry[i]) : i;
    const float* p = &source[from * stride];
    const Vec2f xy = crop.rotate({p[0] - root.x(), p[1] - root.y()});
    float* q = &out[i * stride];
    q[0] = crop.flip ? -xy.x() : xy.x(), q[1] = xy.y(), q[2] = p[2] - root.z();
    for (int extra = 3; extra < stride; ++extra) q[extra] = p[extra];
  }
}

// Mid-hip (joints 2 and 3, the official pelvis) of (J, 4) camera-frame joints.
inline Vec3f pelvis(std::span<const float> joints_3d) {
  return 0.5f * Vec3f(joints_3d[8] + joints_3d[12], joints_3d[9] + joints_3d[13], joints_3d[10] + joints_3d[14]);
}

// Warps the image into the (3, R, R) output: crop/rotate/flip by bilinear
// sampling (black outside), color scale, optional occluder, ImageNet normalization.
inline void warp_and_normalize(const render::Image& image, const CropTransform& crop, const AugmentParams& p, int size,
                               std::span<float> out) {
  const std::size_t plane = static_cast<std::size_t>(size) * size;
  const auto& box = p.occluder_box;
  for (int y = 0; y < size; ++y) {
    for (int x = 0; x < size; ++x) {
      const Vec2f source = crop.to_source({x + 0.5f, y + 0.5f});
      const float fx = (x + 0.5f) / size, fy = (y + 0.5f) / size;
      const bool occluded = p.occluder && fx >= box[0] && fx < box[0] + box[2] && fy >= box[1] && fy < box[1] + box[3];
      for (int c = 0; c < 3; ++c) {
        const float value = occluded ? p.occluder_color[c]
                                     : std::min(1.0f, render::sample_bilinear(image, source.x(), source.y(), c) / 255.0f *
                                                          p.color_scale[c]);
        out[c * plane + static_cast<std::size_t>(y) * size + x] = (value - kImageNetMean[c]) / kImageNetStd[c];
      }
    }
  }
}

}  // namespace metro::data
