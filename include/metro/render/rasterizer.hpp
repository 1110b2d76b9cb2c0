#pragma once
// A CPU z-buffer rasterizer for triangle meshes in the camera frame (deferred:
// rasterize once into a visibility buffer of depth, face id and perspective-
// correct barycentrics, then shade, take silhouettes or test visibility from it).
// One image runs on one thread; parallelize over images.
#include "metro/core/vec.hpp"
#include <algorithm>
#include <cmath>
#include <limits>
#include <span>
#include <vector>

#include "metro/render/camera.hpp"
#include "metro/render/image.hpp"

namespace metro::render {

// A mesh in camera coordinates (metres). Spans: the caller owns the arrays.
struct MeshView {
  std::span<const Vec3f> vertices;  // (V, 3)
  std::span<const Vec3i> faces;     // (F, 3) vertex indices
};

// Per-pixel result of rasterization: nearest face and where on it.
struct VisibilityBuffer {
  int width = 0, height = 0;
  std::vector<float> depth;        // (H, W) camera z of the nearest surface, +inf where empty
  std::vector<int> face;           // (H, W) face index, -1 where empty
  std::vector<Vec3f> barycentric;  // (H, W) perspective-correct weights of the face's vertices

  VisibilityBuffer(int width_, int height_)
      : width(width_), height(height_),
        depth(static_cast<std::size_t>(width_) * height_, std::numeric_limits<float>::infinity()),
        face(depth.size(), -1),
        barycentric(depth.size(), Vec3f::Zero()) {}

  std::size_t index(int x, int y) const noexcept { return static_cast<std::size_t>(y) * width + x; }
  bool covered(int x, int y) const noexcept { return face[index(x, y)] >= 0; }
};

inline constexpr float kNearPlane = 0.01f;  // metres; faces closer than this are skipped

namespace detail {

inline float edge(const Vec2f& a, const Vec2f& b, const Vec2f& p) noexcept {
  return (b.x() - a.x()) * (p.y() - a.y()) - (b.y() - a.y()) * (p.x() - a.x());
}

// Rasterizes one triangle given its screen positions and camera depths. The
// three edge functions are affine in the pixel position, so they are stepped
// incrementally along each row.
inline void rasterize_triangle(VisibilityBuffer& buffer, int face_index, const Vec2f (&screen)[3],
                               const float (&depth)[3]) {
  const float area = edge(screen[0], screen[1], screen[2]);
  if (!std::isfinite(area) || std::abs(area) < 1e-12f) return;
  const float min_x = std::min({screen[0].x(), screen[1].x(), screen[2].x()});
  const float max_x = std::max({screen[0].x(), screen[1].x(), screen[2].x()});
  const float min_y = std::min({screen[0].y(), screen[1].y(), screen[2].y()});
  const float max_y = std::max({screen[0].y(), screen[1].y(), screen[2].y()});
  if (max_x < 0 || max_y < 0) return;
  // Clamp in float first: a vertex near the camera can project very far away.
  const auto clamp_to = [](float value, int limit) { return static_cast<int>(std::clamp(value, 0.0f, static_cast<float>(limit))); };
  const int x0 = clamp_to(std::floor(min_x), buffer.width - 1), x1 = clamp_to(max_x, buffer.width - 1);
  const int y0 = clamp_to(std::floor(min_y), buffer.height - 1), y1 = clamp_to(max_y, buffer.height - 1);
  // Weight k (of vertex k) = edge(opposite edge, p) / area = step_x[k] * x + step_y[k] * y + offset[k].
  float step_x[3], step_y[3], offset[3], inverse_depth[3];
  for (int k = 0; k < 3; ++k) {
    const Vec2f& a = screen[(k + 1) % 3];
    const Vec2f& b = screen[(k + 2) % 3];
    step_x[k] = -(b.y() - a.y()) / area, step_y[k] = (b.x() - a.x()) / area;
    offset[k] = ((b.y() - a.y()) * a.x() - (b.x() - a.x()) * a.y()) / area;
    inverse_depth[k] = 1 / depth[k];
  }
  for (int y = y0; y <= y1; ++y) {
    const float py = static_cast<float>(y) + 0.5f, px = static_cast<float>(x0) + 0.5f;
    float w[3];
    for (int k = 0; k < 3; ++k) w[k] = step_x[k] * px + step_y[k] * py + offset[k];
    for (int x = x0; x <= x1; ++x, w[0] += step_x[0], w[1] += step_x[1], w[2] += step_x[2]) {
      if (w[0] < 0 || w[1] < 0 || w[2] < 0) continue;
      // Perspective-correct: 1/z is linear in screen space.
      const float q0 = w[0] * inverse_depth[0], q1 = w[1] * inverse_depth[1], q2 = w[2] * inverse_depth[2];
      const float z = 1 / (q0 + q1 + q2);
      const std::size_t i = buffer.index(x, y);
      if (z >= buffer.depth[i]) continue;
      buffer.depth[i] = z;
      buffer.face[i] = face_index;
      buffer.barycentric[i] = Vec3f(q0 * z, q1 * z, q2 * z);
    }
  }
}

}  // namespace detail

// Which faces to draw. A face wound counter-clockwise seen from outside (the
// body model's convention) has a negative screen area when it faces the camera
// (y down); culling the others halves the work on a closed mesh.
enum class Faces { both, front_only };

// Rasterizes `mesh` seen by `camera` into a width x height visibility buffer.
inline VisibilityBuffer rasterize(const MeshView& mesh, const Camera& camera, int width, int height,
                                  Faces faces = Faces::both) {
  VisibilityBuffer buffer(width, height);
  std::vector<Vec2f> screen(mesh.vertices.size());
  for (std::size_t v = 0; v < mesh.vertices.size(); ++v) {
    screen[v] = mesh.vertices[v].z() > kNearPlane ? camera.project(mesh.vertices[v]) : Vec2f::Zero();
  }
  for (std::size_t f = 0; f < mesh.faces.size(); ++f) {
    const Vec3i& face = mesh.faces[f];
    const float depth[3] = {mesh.vertices[face[0]].z(), mesh.vertices[face[1]].z(), mesh.vertices[face[2]].z()};
    if (std::min({depth[0], depth[1], depth[2]}) <= kNearPlane) continue;
    const Vec2f corners[3] = {screen[face[0]], screen[face[1]], screen[face[2]]};
    if (faces == Faces::front_only && detail::edge(corners[0], corners[1], corners[2]) >= 0) continue;
    detail::rasterize_triangle(buffer, static_cast<int>(f), corners, depth);
  }
  return buffer;
}

// Area-weighted vertex normals (unit; orientation follows the face winding).
inline std::vector<Vec3f> vertex_normals(const MeshView& mesh) {
  std::vector<Vec3f> normals(mesh.vertices.size(), Vec3f::Zero());
  for (const Vec3i& face : mesh.faces) {
    const Vec3f n =
        (mesh.vertices[face[1]] - mesh.vertices[face[0]]).cross(mesh.vertices[face[2]] - mesh.vertices[face[0]]);
    for (int k = 0; k < 3; ++k) normals[face[k]] += n;
  }
  for (Vec3f& n : normals) n.normalize();
  return normals;
}

// Lambert + ambient lighting, light at infinity.
struct Lighting {
  Vec3f to_light = Vec3f(0, 0, -1);  // unit, camera frame, surface -> light
  float ambient = 0.4f;
  float diffuse = 0.6f;
};

// Shades every covered pixel of `buffer` (per-pixel interpolated normal and
// per-vertex color); returns RGB colors and coverage (0 or 1) per pixel.
struct ShadedPixels {
  std::vector<Color> color;   // (H, W)
  std::vector<float> alpha;   // (H, W)
};

inline ShadedPixels shade(const VisibilityBuffer& buffer, const MeshView& mesh, std::span<const Color> vertex_colors,
                          const Lighting& light) {
  const std::vector<Vec3f> normals = vertex_normals(mesh);
  ShadedPixels out{std::vector<Color>(buffer.face.size()), std::vector<float>(buffer.face.size(), 0.0f)};
  for (std::size_t i = 0; i < buffer.face.size(); ++i) {
    if (buffer.face[i] < 0) continue;
    const Vec3i& face = mesh.faces[buffer.face[i]];
    const Vec3f& w = buffer.barycentric[i];
    Vec3f normal = (w[0] * normals[face[0]] + w[1] * normals[face[1]] + w[2] * normals[face[2]]).normalized();
    const Vec3f point = w[0] * mesh.vertices[face[0]] + w[1] * mesh.vertices[face[1]] + w[2] * mesh.vertices[face[2]];
    if (normal.dot(point) > 0) normal = -normal;  // two-sided: face the camera
    const float intensity = light.ambient + light.diffuse * std::max(0.0f, normal.dot(light.to_light));
    Color c;
    for (int k = 0; k < 3; ++k) {
      const Color& vc = vertex_colors[face[k]];
      c.r += w[k] * vc.r, c.g += w[k] * vc.g, c.b += w[k] * vc.b;
    }
    out.color[i] = {c.r * intensity, c.g * intensity, c.b * intensity};
    out.alpha[i] = 1.0f;
  }
  return out;
}

// Resolves a `factor`-times supersampled shading onto `image` (RGB, in place):
// each pixel blends the mean color of its covered samples by coverage * opacity.
inline void composite(Image& image, const ShadedPixels& shaded, int factor, float opacity = 1.0f) {
  const int k = factor, wide = image.width * factor;
  const float norm = 1.0f / static_cast<float>(k * k);
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      float sum[3] = {0, 0, 0}, coverage = 0;
      for (int dy = 0; dy < k; ++dy) {
        for (int dx = 0; dx < k; ++dx) {
          const std::size_t i = static_cast<std::size_t>(y * k + dy) * wide + (x * k + dx);
          sum[0] += shaded.color[i].r, sum[1] += shaded.color[i].g, sum[2] += shaded.color[i].b;
          coverage += shaded.alpha[i];
        }
      }
      if (coverage == 0) continue;
      const float alpha = coverage * norm * opacity;
      std::uint8_t* pixel = image.at(x, y);
      for (int c = 0; c < 3; ++c) pixel[c] = to_byte((1 - alpha) * (pixel[c] / 255.0f) + alpha * sum[c] / coverage);
    }
  }
}

// Renders the mesh over `image` (RGB, in place) with `supersample`^2 samples
// per pixel; `opacity` < 1 blends semi-transparently (result overlays).
// Returns the supersampled visibility buffer.
inline VisibilityBuffer render_over(Image& image, const MeshView& mesh, std::span<const Color> vertex_colors,
                                    const Camera& camera, const Lighting& light, int supersample = 2, float opacity = 1.0f,
                                    Faces faces = Faces::both) {
  const int k = std::max(1, supersample);
  VisibilityBuffer buffer = rasterize(mesh, camera.scaled(static_cast<float>(k)), image.width * k, image.height * k, faces);
  composite(image, shade(buffer, mesh, vertex_colors, light), k, opacity);
  return buffer;
}

// The same, one color for the whole mesh (e.g. a predicted mesh over its input image).
inline void render_overlay(Image& image, const MeshView& mesh, const Camera& camera, Color color, float opacity = 0.6f) {
  const std::vector<Color> colors(mesh.vertices.size(), color);
  Lighting light;
  light.to_light = Vec3f(0.3f, -0.5f, -1.0f).normalized();
  render_over(image, mesh, colors, camera, light, 2, opacity);
}

// Binary silhouette (1 channel, 255 inside) sampled at pixel centers.
inline Image silhouette(const MeshView& mesh, const Camera& camera, int width, int height) {
  const VisibilityBuffer buffer = rasterize(mesh, camera, width, height);
  Image mask(width, height, 1);
  for (std::size_t i = 0; i < buffer.face.size(); ++i) mask.pixels[i] = buffer.face[i] >= 0 ? 255 : 0;
  return mask;
}

}  // namespace metro::render
