#pragma once
// The synthetic dataset: the procedural body in a random shape and pose, seen by
// a pinhole camera that frames it in a square crop, rendered over a random
// background, with exact labels (2D/3D joints, full mesh, camera, parameters).
// Sample i depends only on (seed, i), so files are identical on any thread count.
#if defined(_OPENMP)
#include <omp.h>
#endif

#include <algorithm>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <string>
#include <vector>

#include "metro/body/body_model.hpp"
#include "metro/core/random.hpp"
#include "metro/data/annotations.hpp"
#include "metro/data/image_io.hpp"
#include "metro/render/appearance.hpp"
#include "metro/render/background.hpp"
#include "metro/render/camera.hpp"
#include "metro/render/rasterizer.hpp"

namespace metro::data {

struct SynthOptions {
  int image_size = 128;               // square crop side, pixels
  float occluder_probability = 0.0f;  // chance of a random rectangle over each image
  int supersample = 2;                // anti-aliasing: samples per pixel = supersample^2
  std::string name_prefix = "train";  // image files are <prefix>_<index>.png
};

struct SynthSample {
  render::Image image;
  SampleAnnotation annotation;
};

// A joint counts as self-occluded when the visible surface at its pixel is more
// than this in front of it (joints lie inside the body, up to ~10 cm deep).
inline constexpr float kSelfOcclusionMargin = 0.12f;

inline AnnotationHeader synth_header(const body::BodyModel& model, std::uint32_t num_samples) {
  AnnotationHeader h;
  h.num_samples = num_samples;
  h.num_joints = body::kNumJoints;
  h.num_vertices = static_cast<std::uint32_t>(model.num_vertices(0));
  h.num_shape_params = body::kNumShapeParams;
  h.num_pose_params = static_cast<std::uint32_t>(3 * model.num_skeleton_joints());
  return h;
}

// Mirror maps of the body model, for flips in the DataLoader.
inline std::vector<int> body_joint_symmetry() {
  const auto map = body::BodyModel::joint_symmetry();
  return {map.begin(), map.end()};
}

namespace detail {

// The root rotation (axis-angle): a random heading (any yaw) and a slight lean.
inline Vec3f random_root_rotation(Generator& rng) {
  const float yaw = rng.uniform(-std::numbers::pi_v<float>, std::numbers::pi_v<float>);
  const float lean = 0.08f * rng.normal<float>(), roll = 0.05f * rng.normal<float>();
  const Mat3f rotation = body::rotation_from_axis_angle(yaw * Vec3f::UnitY()) * body::rotation_from_axis_angle(lean * Vec3f::UnitX()) *
                         body::rotation_from_axis_angle(roll * Vec3f::UnitZ());
  return body::axis_angle_from_rotation(rotation);
}

// Intrinsics that frame the points: a fixed-ish distance gives the perspective,
// the focal length makes the person's box fill `fill` of the crop, and the
// principal point centers it (with jitter). Equivalent to cropping a larger image.
inline render::Camera frame_points(const std::vector<Vec3f>& points, int size, Generator& rng) {
  Vec2f low = Vec2f::Constant(1e9f), high = Vec2f::Constant(-1e9f);
  for (const Vec3f& p : points) {
    const Vec2f q = Vec2f(p.x(), p.y()) / p.z();
    low = low.cwiseMin(q), high = high.cwiseMax(q);
  }
  const float side = static_cast<float>(size), fill = rng.uniform(0.72f, 0.9f);
  const float focal = side * fill / std::max(high.x() - low.x(), high.y() - low.y());
  const Vec2f middle = 0.5f * (low + high);
  const float jitter_x = rng.uniform(-0.05f, 0.05f) * side, jitter_y = rng.uniform(-0.05f, 0.05f) * side;
  return {focal, focal, side / 2 - focal * middle.x() + jitter_x, side / 2 - focal * middle.y() + jitter_y};
}

inline render::Lighting random_lighting(Generator& rng) {
  render::Lighting light;
  light.to_light = Vec3f(rng.uniform(-1.0f, 1.0f), rng.uniform(-1.0f, 0.3f), -rng.uniform(0.3f, 1.0f)).normalized();
  light.ambient = rng.uniform(0.3f, 0.5f);
  light.diffuse = rng.uniform(0.5f, 0.8f);
  return light;
}

inline std::vector<float> flatten(const std::vector<Vec3f>& points) {
  std::vector<float> out;
  out.reserve(points.size() * 3);
  for (const Vec3f& p : points) out.insert(out.end(), {p.x(), p.y(), p.z()});
  return out;
}

// 2D joints (J, 3) with visibility: inside the image and not hidden by the body.
inline std::vector<float> project_joints(const std::vector<Vec3f>& joints, const render::Camera& camera,
                                         const render::VisibilityBuffer& buffer, int size, int supersample) {
  std::vector<float> out;
  for (const Vec3f& joint : joints) {
    const Vec2f pixel = camera.project(joint);
    const bool inside = pixel.x() >= 0 && pixel.y() >= 0 && pixel.x() < size && pixel.y() < size;
    bool visible = inside;
    if (inside) {
      const int x = static_cast<int>(pixel.x() * supersample), y = static_cast<int>(pixel.y() * supersample);
      visible = buffer.depth[buffer.index(x, y)] >= joint.z() - kSelfOcclusionMargin;
    }
    out.insert(out.end(), {pixel.x(), pixel.y(), visible ? 1.0f : 0.0f});
  }
  return out;
}

}  // namespace detail

// Sample `index` of the dataset `seed`.
inline SynthSample make_synthetic_sample(const body::BodyModel& model, std::uint64_t seed, std::uint64_t index,
                                         const SynthOptions& options) {
  Generator rng(random_bits(seed, index));
  const body::ShapeParams shape = model.sample_shape(rng);
  body::PoseParams pose = model.sample_pose(rng);
  pose.axis_angle[0] = detail::random_root_rotation(rng);
  body::PosedBody posed = model.pose(shape, pose);
  const Vec3f translation(0, 0, rng.uniform(4.0f, 6.0f));
  for (Vec3f& v : posed.vertices) v = render::body_to_camera(v, translation);
  for (Vec3f& j : posed.joints) j = render::body_to_camera(j, translation);

  const int size = options.image_size;
  const render::Camera camera = detail::frame_points(posed.vertices, size, rng);
  SynthSample out{render::random_background(rng, size, size), {}};
  const render::MeshView mesh{posed.vertices, model.faces(0)};
  const std::vector<render::Color> colors =
      render::vertex_colors(model.vertex_region(), render::random_outfit(rng), rng);
  const render::VisibilityBuffer buffer =
      render::render_over(out.image, mesh, colors, camera, detail::random_lighting(rng), options.supersample, 1.0f,
                          render::Faces::front_only);
  if (rng.uniform<float>() < options.occluder_probability) render::draw_random_occluder(out.image, rng);

  SampleAnnotation& a = out.annotation;
  char name[64];
  std::snprintf(name, sizeof name, "_%08llu.png", static_cast<unsigned long long>(index));
  a.image_name = options.name_prefix + name;
  a.center = {size / 2.0f, size / 2.0f};
  a.scale = static_cast<float>(size) / 200;
  a.joints_2d = detail::project_joints(posed.joints, camera, buffer, size, options.supersample);
  for (const Vec3f& j : posed.joints) a.joints_3d.insert(a.joints_3d.end(), {j.x(), j.y(), j.z(), 1.0f});
  a.vertices = detail::flatten(posed.vertices);
  a.intrinsics = {camera.fx, camera.fy, camera.cx, camera.cy};
  a.shape.assign(shape.values.begin(), shape.values.end());
  for (const Vec3f& r : pose.axis_angle) a.pose.insert(a.pose.end(), {r.x(), r.y(), r.z()});
  a.has_2d = a.has_3d = a.has_mesh = true;
  return out;
}

// Writes samples [0, count) of dataset `seed` to DIR/images/*.png and
// DIR/annotations.bin, rendering `threads` images at a time (0: OpenMP default).
// The files do not depend on the thread count. `keep_images` (may be null)
// receives the first images, up to its capacity() (e.g. for a contact sheet).
inline void write_synthetic_dataset(const body::BodyModel& model, const std::string& directory, std::uint32_t count,
                                    std::uint64_t seed, const SynthOptions& options, [[maybe_unused]] int threads = 0,
                                    std::vector<render::Image>* keep_images = nullptr) {
  namespace fs = std::filesystem;
  fs::create_directories(fs::path(directory) / "images");
  const std::string annotation_path = (fs::path(directory) / "annotations.bin").string();
  const std::string partial_path = annotation_path + ".partial";
  std::ofstream file(partial_path, std::ios::binary | std::ios::trunc);
  if (!file) throw IOError(partial_path, "cannot open for writing");
  const AnnotationHeader header = synth_header(model, count);
  const auto write_bytes = [&](const std::vector<std::uint8_t>& bytes) {
    file.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  };
  write_bytes(encode_header(header));
  constexpr std::uint32_t kChunk = 256;  // samples rendered in parallel between two appends
  std::vector<SynthSample> chunk;
  std::vector<std::vector<std::uint8_t>> records;
  for (std::uint32_t first = 0; first < count; first += kChunk) {
    chunk.assign(std::min(kChunk, count - first), SynthSample{});
    records.assign(chunk.size(), {});
    std::exception_ptr error;
#pragma omp parallel for schedule(dynamic) num_threads(threads > 0 ? threads : omp_get_max_threads())
    for (std::int64_t i = 0; i < static_cast<std::int64_t>(chunk.size()); ++i) {
      try {
        chunk[i] = make_synthetic_sample(model, seed, first + i, options);
        write_png((fs::path(directory) / "images" / chunk[i].annotation.image_name).string(), chunk[i].image);
        records[i] = encode_record(header, chunk[i].annotation);
      } catch (...) {
#pragma omp critical(metro_synth_error)
        if (!error) error = std::current_exception();
      }
    }
    if (error) std::rethrow_exception(error);
    for (std::size_t i = 0; i < chunk.size(); ++i) {
      write_bytes(records[i]);
      if (keep_images && keep_images->size() < keep_images->capacity()) keep_images->push_back(std::move(chunk[i].image));
    }
  }
  file.close();
  if (!file) throw IOError(partial_path, "write failed");
  fs::rename(partial_path, annotation_path);
}

}  // namespace metro::data
