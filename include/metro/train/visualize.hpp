#pragma once
// Pictures of a prediction: the input crop, the mesh rendered over the image
// with the predicted weak-perspective camera, a side view of the mesh, the
// attention matrix of a transformer layer (paper Fig. 4) and a mesh colored by
// one joint's attention (Fig. 3).
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "metro/data/augment.hpp"
#include "metro/render/rasterizer.hpp"
#include "metro/train/targets.hpp"

namespace metro::train {

// A square region of an input image: left, top, side in pixels.
struct Crop {
  float x0 = 0, y0 = 0, side = 1;
};

// The largest centred square.
inline Crop center_crop(int width, int height) {
  const float side = static_cast<float>(std::min(width, height));
  return {(static_cast<float>(width) - side) / 2, (static_cast<float>(height) - side) / 2, side};
}

// The square around a tight person box x, y, w, h (pixels): the same centre and side
// 1.2 max(w, h), as the official crops (scale = 1.2 x box / 200) and about as much of
// the crop as the person fills in training (72-90 % of the synthetic crops' side).
inline Crop box_crop(float x, float y, float w, float h) {
  if (!(w > 0) || !(h > 0)) throw UsageError("--box: width and height must be positive");
  const float side = 1.2f * std::max(w, h);
  return {x + w / 2 - side / 2, y + h / 2 - side / 2, side};
}

// The network input (1, 3, S, S), ImageNet-normalized, for `crop` of `image`.
inline Tensor<float> crop_to_input(const render::Image& image, const Crop& crop, int size) {
  data::SampleAnnotation where;
  where.center = {crop.x0 + crop.side / 2, crop.y0 + crop.side / 2};
  where.scale = crop.side / 200;  // the official box convention
  const data::AugmentParams none;
  std::vector<float> pixels(static_cast<std::size_t>(3 * size * size));
  data::warp_and_normalize(image, data::CropTransform(where, none, size), none, size, pixels);
  return from_vector<float>(pixels, {1, 3, size, size});
}

// Depth at which a perspective camera imitates the weak-perspective one.
inline constexpr float kFarDepth = 1000.0f;

// The pinhole camera that maps points placed at kFarDepth (see at_depth) where the
// weak-perspective camera [s, tx, ty] maps them: crop pixel = (s (xy + t) + 1) / 2 * side.
inline render::Camera weak_perspective_camera(float s, float tx, float ty, const Crop& crop) {
  const float half = crop.side / 2, f = s * half * kFarDepth;
  return {f, f, crop.x0 + half + s * tx * half, crop.y0 + half + s * ty * half};
}

inline std::vector<Vec3f> at_depth(const RowPoints& points, float depth) {
  std::vector<Vec3f> out = to_vectors(points);
  for (Vec3f& p : out) p.z() += depth;
  return out;
}

inline render::Lighting front_light() {
  render::Lighting light;
  light.to_light = Vec3f(0.3f, -0.5f, -1.0f).normalized();
  return light;
}

// Renders `vertices` (V, 3, camera orientation) turned by `yaw` radians about the
// vertical axis, framed to fill `size` x `size` on a grey background.
inline render::Image render_turned(const RowPoints& vertices, const std::vector<Vec3i>& faces,
                                   const std::vector<render::Color>& colors, float yaw, int size) {
  RowPoints turned(vertices.rows(), 3);
  const float c = std::cos(yaw), s = std::sin(yaw);
  for (Eigen::Index i = 0; i < vertices.rows(); ++i)
    turned.row(i) << c * vertices(i, 0) + s * vertices(i, 2), vertices(i, 1), -s * vertices(i, 0) + c * vertices(i, 2);
  const Eigen::RowVector3f low = turned.colwise().minCoeff(), high = turned.colwise().maxCoeff();
  const float extent = std::max({high.x() - low.x(), high.y() - low.y(), 1e-3f});
  const float scale = 1.7f / extent;  // weak-perspective scale filling ~85% of the picture
  const Eigen::RowVector3f middle = 0.5f * (low + high);
  const Crop frame{0, 0, static_cast<float>(size)};
  render::Image image(size, size, 3, 60);
  const auto placed = at_depth(turned.rowwise() - middle, kFarDepth);
  render::render_over(image, render::MeshView{placed, faces}, colors, weak_perspective_camera(scale, 0, 0, frame), front_light(), 2);
  return image;
}

// a | b, side by side (same height).
inline render::Image side_by_side(const render::Image& a, const render::Image& b) {
  if (a.height != b.height || a.channels != 3 || b.channels != 3) throw ValueError("side_by_side: needs two RGB images of one height");
  render::Image out(a.width + b.width, a.height, 3);
  for (int y = 0; y < a.height; ++y) {
    std::copy_n(a.at(0, y), 3 * a.width, out.at(0, y));
    std::copy_n(b.at(0, y), 3 * b.width, out.at(a.width, y));
  }
  return out;
}

// The mesh over the image with the predicted camera, next to a side view (90 degrees).
inline render::Image overlay_picture(const render::Image& image, const Crop& crop, const RowPoints& vertices,
                                     const std::vector<Vec3i>& faces, const float camera[3]) {
  render::Image front = image;
  const auto placed = at_depth(vertices, kFarDepth);
  const std::vector<render::Color> colors(placed.size(), render::Color{0.55f, 0.75f, 1.0f});
  render::render_over(front, render::MeshView{placed, faces}, colors, weak_perspective_camera(camera[0], camera[1], camera[2], crop),
                      front_light(), 2, 0.7f);
  const float pi = 3.14159265f;
  return side_by_side(front, render_turned(vertices, faces, colors, pi / 2, image.height));
}

// A blue -> green -> yellow -> red ramp for t in [0, 1].
inline render::Color heat_color(float t) {
  t = std::clamp(t, 0.0f, 1.0f);
  if (t < 1.0f / 3) return {0.1f, 0.2f + 2.4f * t, 0.9f - 1.5f * t};
  if (t < 2.0f / 3) return {3.0f * (t - 1.0f / 3), 1.0f, 0.4f - 1.2f * (t - 1.0f / 3)};
  return {1.0f, 1.0f - 3.0f * (t - 2.0f / 3), 0.0f};
}

// Head-averaged attention (N, N) of sample 0 from `attention` (B, heads, N, N).
inline Eigen::MatrixXf mean_over_heads(const Tensor<float>& attention) {
  if (attention.dim() != 4) throw ShapeError("mean_over_heads: expected (B, heads, N, N), got " + attention.shape().str());
  const Tensor<float> a = contiguous(attention);
  const std::int64_t heads = a.shape()[1], n = a.shape()[2];
  Eigen::MatrixXf mean = Eigen::MatrixXf::Zero(n, n);
  for (std::int64_t h = 0; h < heads; ++h)
    mean += Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(a.data() + h * n * n, n, n);
  return mean / static_cast<float>(heads);
}

// The (N, N) matrix as a heat map, each pixel `zoom` x `zoom`, values scaled by
// sqrt((a - min) / (max - min)) so weak links stay visible; a white line after the joints.
inline render::Image attention_matrix_picture(const Eigen::MatrixXf& attention, int num_joints, int zoom) {
  const int n = static_cast<int>(attention.rows());
  const float low = attention.minCoeff(), range = std::max(attention.maxCoeff() - low, 1e-12f);
  render::Image image(n * zoom, n * zoom, 3);
  for (int y = 0; y < n * zoom; ++y)
    for (int x = 0; x < n * zoom; ++x) {
      const bool border = x / zoom == num_joints || y / zoom == num_joints;
      render::put_rgb(image, x, y, border ? render::Color{1, 1, 1} : heat_color(std::sqrt((attention(y / zoom, x / zoom) - low) / range)));
    }
  return image;
}

// One joint's attention to the coarse vertices (columns J.. of its row),
// carried to the full mesh by the body's upsampling matrices, scaled to [0, 1].
inline std::vector<float> joint_attention_on_mesh(const Eigen::MatrixXf& attention, int joint, int num_joints, const MeshHierarchy& mesh) {
  if (joint < 0 || joint >= num_joints) throw UsageError("--joint: must be in [0, " + std::to_string(num_joints) + ")");
  std::vector<float> coarse;
  for (Eigen::Index c = num_joints; c < attention.cols(); ++c) coarse.push_back(attention(joint, c));
  std::vector<float> full = mesh.coarse_to_full(coarse);
  const auto [low, high] = std::minmax_element(full.begin(), full.end());
  const float lowest = *low, range = *high - *low;
  for (float& value : full) value = range > 0 ? (value - lowest) / range : 0.0f;
  return full;
}

}  // namespace metro::train
