#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "metro/data/annotations.hpp"
#include "metro/data/augment.hpp"
#include "metro/data/dataset.hpp"
#include "metro/data/image_io.hpp"
#include "metro/data/loader.hpp"
#include "metro/data/synth.hpp"
#include "metro/render/background.hpp"
#include "metro/render/camera.hpp"
#include "metro/render/image.hpp"
#include "metro/render/rasterizer.hpp"
#include "metro/train/body_file.hpp"
#include "metro/train/targets.hpp"
#include "metro/train/visualize.hpp"

namespace fs = std::filesystem;
using namespace metro;

namespace {

// A unique scratch directory under the system temp dir, removed at scope exit.
struct ScratchDir {
  fs::path path;
  explicit ScratchDir(const std::string& name) : path(fs::temp_directory_path() / ("metro_test_data_" + name)) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~ScratchDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

// An axis-aligned cube of side `side` centered at `center` (12 triangles).
struct TestMesh {
  std::vector<metro::Vec3f> vertices;
  std::vector<metro::Vec3i> faces;
  render::MeshView view() const { return {vertices, faces}; }
};

TestMesh cube(const metro::Vec3f& center, float side) {
  TestMesh mesh;
  for (int i = 0; i < 8; ++i) {
    mesh.vertices.push_back(center + 0.5f * side * metro::Vec3f(i & 1 ? 1 : -1, i & 2 ? 1 : -1, i & 4 ? 1 : -1));
  }
  const int quads[6][4] = {{0, 1, 3, 2}, {4, 6, 7, 5}, {0, 4, 5, 1}, {2, 3, 7, 6}, {0, 2, 6, 4}, {1, 5, 7, 3}};
  for (const auto& q : quads) {
    mesh.faces.emplace_back(q[0], q[1], q[2]);
    mesh.faces.emplace_back(q[0], q[2], q[3]);
  }
  return mesh;
}

// A UV sphere (rings x segments) of radius r at `center`.
TestMesh sphere(const metro::Vec3f& center, float radius, int rings = 24, int segments = 48) {
  TestMesh mesh;
  for (int i = 0; i <= rings; ++i) {
    const float theta = std::numbers::pi_v<float> * i / rings;
    for (int j = 0; j < segments; ++j) {
      const float phi = 2 * std::numbers::pi_v<float> * j / segments;
      mesh.vertices.push_back(center + radius * metro::Vec3f(std::sin(theta) * std::cos(phi), std::cos(theta),
                                                                 std::sin(theta) * std::sin(phi)));
    }
  }
  for (int i = 0; i < rings; ++i) {
    for (int j = 0; j < segments; ++j) {
      const int a = i * segments + j, b = i * segments + (j + 1) % segments;
      mesh.faces.emplace_back(a, a + segments, b);
      mesh.faces.emplace_back(b, a + segments, b + segments);
    }
  }
  return mesh;
}

int count_nonzero(const render::Image& mask) {
  int count = 0;
  for (auto p : mask.pixels) count += p != 0;
  return count;
}

}  // namespace

TEST_CASE("rasterizer: a sphere's silhouette is a disc of the projected radius") {
  const TestMesh ball = sphere({0.1f, -0.05f, 3.0f}, 0.5f, 48, 96);
  const render::Camera camera{200, 200, 64, 64};
  const render::Image mask = render::silhouette(ball.view(), camera, 128, 128);
  // Projected radius of a sphere: f * r / sqrt(d^2 - r^2) (d = distance to the center).
  const float d = metro::Vec3f(0.1f, -0.05f, 3.0f).norm();
  const float radius = 200 * 0.5f / std::sqrt(d * d - 0.25f);
  const float expected_area = std::numbers::pi_v<float> * radius * radius;
  CHECK(count_nonzero(mask) == doctest::Approx(expected_area).epsilon(0.03));
  const metro::Vec2f c = camera.project({0.1f, -0.05f, 3.0f});
  CHECK(mask.at(static_cast<int>(c.x()), static_cast<int>(c.y()))[0] == 255);
  CHECK(mask.at(2, 2)[0] == 0);
}

TEST_CASE("rasterizer: the depth buffer keeps the nearest surface") {
  const TestMesh near_cube = cube({0, 0, 2.0f}, 0.4f), far_cube = cube({0.2f, 0, 4.0f}, 1.0f);
  TestMesh both = far_cube;
  for (const auto& f : near_cube.faces) both.faces.push_back(f + metro::Vec3i::Constant(8));
  both.vertices.insert(both.vertices.end(), near_cube.vertices.begin(), near_cube.vertices.end());
  const render::VisibilityBuffer buffer = render::rasterize(both.view(), {100, 100, 32, 32}, 64, 64);
  // Center pixel: the near cube's front face at z = 1.8; the pixel ray hits it at z = 1.8.
  CHECK(buffer.depth[buffer.index(32, 32)] == doctest::Approx(1.8f).epsilon(1e-4));
  CHECK(buffer.face[buffer.index(32, 32)] >= 12);
  // Right of the small cube (x = 0.6 m at z = 3.5 -> pixel 32 + 100 * 0.6 / 3.5 = 49): only the far cube's front.
  CHECK(buffer.depth[buffer.index(49, 32)] == doctest::Approx(3.5f).epsilon(1e-4));
  CHECK(std::isinf(buffer.depth[buffer.index(1, 1)]));
  // Perspective-correct barycentrics reproduce the 3D point on the surface.
  const std::size_t i = buffer.index(40, 27);
  const metro::Vec3i& face = both.faces[buffer.face[i]];
  const metro::Vec3f& w = buffer.barycentric[i];
  const metro::Vec3f point = w[0] * both.vertices[face[0]] + w[1] * both.vertices[face[1]] + w[2] * both.vertices[face[2]];
  const metro::Vec2f pixel = render::Camera{100, 100, 32, 32}.project(point);
  CHECK(pixel.x() == doctest::Approx(40.5f).epsilon(1e-4));
  CHECK(pixel.y() == doctest::Approx(27.5f).epsilon(1e-4));
  CHECK(point.z() == doctest::Approx(buffer.depth[i]).epsilon(1e-5));
}

TEST_CASE("rasterizer: Lambert shading is brighter facing the light, overlay blends") {
  const TestMesh ball = sphere({0, 0, 3.0f}, 0.8f);
  const std::vector<render::Color> white(ball.vertices.size(), render::Color{1, 1, 1});
  render::Lighting light;
  light.to_light = metro::Vec3f(-1, 0, 0);  // from the left (camera x points right)
  render::Image image(64, 64, 3, 0);
  render::render_over(image, ball.view(), white, {80, 80, 32, 32}, light, 2, 1.0f);
  CHECK(image.at(20, 32)[0] > image.at(44, 32)[0] + 60);
  CHECK(image.at(44, 32)[0] == doctest::Approx(255 * light.ambient).epsilon(0.1));
  CHECK(image.at(0, 0)[0] == 0);
  render::Image gray(64, 64, 3, 100);
  render::render_overlay(gray, ball.view(), {80, 80, 32, 32}, {1, 0, 0}, 0.5f);
  CHECK(gray.at(32, 32)[0] > 100);
  CHECK(gray.at(32, 32)[1] == doctest::Approx(50).epsilon(0.05));  // half of 100 blended with 0 green
  CHECK(gray.at(0, 0)[1] == 100);
}

TEST_CASE("background: every kind is deterministic and not constant") {
  for (std::uint64_t seed = 0; seed < 12; ++seed) {
    Generator a(seed), b(seed);
    const render::Image first = render::random_background(a, 48, 40), second = render::random_background(b, 48, 40);
    CHECK(first.pixels == second.pixels);
    int min_value = 255, max_value = 0;
    for (auto p : first.pixels) min_value = std::min<int>(min_value, p), max_value = std::max<int>(max_value, p);
    CHECK(max_value > min_value);
  }
}

TEST_CASE("image io: PNG round trip and contact sheet") {
  ScratchDir dir("png");
  render::Image image(7, 5, 3);
  for (std::size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = static_cast<std::uint8_t>(i * 7);
  data::write_png(dir.file("a.png"), image);
  const render::Image back = data::read_image(dir.file("a.png"));
  CHECK(back.width == 7);
  CHECK(back.height == 5);
  CHECK(back.pixels == image.pixels);
  const render::Image gray = data::read_image(dir.file("a.png"), 1);
  CHECK(gray.channels == 1);
  const render::Image sheet = render::contact_sheet({image, image, image}, 2, 4);
  CHECK(sheet.width == 8);
  CHECK(sheet.height == 8);
}

TEST_CASE("image io: the bad-input corpus gives typed errors") {
  const std::string bad = std::string(METRO_TEST_DATA_DIR) + "/bad/";
  CHECK_THROWS_AS(data::read_image(bad + "does_not_exist.png"), IOError);
  for (const char* name : {"image_empty.png", "image_truncated.png", "image_corrupt.png", "image_truncated.jpg", "image_corrupt.jpg",
                           "image_text.png", "image_huge.png", "image_zero_width.png"}) {
    CAPTURE(name);
    CHECK_THROWS_AS(data::read_image(bad + name), FormatError);
  }
  try {
    data::read_image(bad + "image_huge.png");
  } catch (const FormatError& e) {
    CHECK(std::string(e.what()).find("too large") != std::string::npos);
    CHECK(e.path() == bad + "image_huge.png");
  }
}

TEST_CASE("annotations: the bad-input corpus gives typed errors, the good file reads back") {
  const std::string bad = std::string(METRO_TEST_DATA_DIR) + "/bad/";
  const std::vector<data::SampleAnnotation> good = data::read_annotations(bad + "dataset_good.bin");
  REQUIRE(good.size() == 2);
  CHECK(good[1].image_name == "b.png");
  CHECK(good[0].joints_2d[3 * 13] == 23.0f);
  CHECK(good[0].joints_3d[4 * 5] == doctest::Approx(0.5f));
  CHECK(good[0].vertices.size() == 12);
  CHECK(good[0].intrinsics[0] == 250.0f);
  CHECK(good[0].has_mesh);
  for (const char* name : {"dataset_truncated.bin", "dataset_wrong_count.bin", "dataset_nan.bin", "dataset_bad_magic.bin",
                           "dataset_bad_version.bin", "dataset_huge_counts.bin", "dataset_unsafe_name.bin",
                           "dataset_empty.bin"}) {
    CAPTURE(name);
    CHECK_THROWS_AS(data::read_annotations(bad + name), FormatError);
  }
  CHECK_THROWS_AS(data::read_annotations(bad + "no_such_file.bin"), IOError);
}

namespace {

constexpr int kTinyJoints = 14, kTinyVertices = 4, kTinySize = 32;

// The flip partner of joint j in the 14-joint order (left/right swapped).
std::vector<int> tiny_joint_symmetry() { return {5, 4, 3, 2, 1, 0, 11, 10, 9, 8, 7, 6, 12, 13}; }
std::vector<int> tiny_vertex_symmetry() { return {1, 0, 3, 2}; }

data::SampleAnnotation tiny_annotation(int index, Generator& rng) {
  data::SampleAnnotation a;
  char name[32];
  std::snprintf(name, sizeof name, "s%d.png", index);  // ("s" + to_string trips a GCC 12 -Wrestrict false positive)
  a.image_name = name;
  a.center = {kTinySize / 2.0f, kTinySize / 2.0f};
  a.scale = kTinySize / 200.0f;
  for (int j = 0; j < kTinyJoints; ++j) {
    a.joints_2d.insert(a.joints_2d.end(), {rng.uniform(4.0f, 28.0f), rng.uniform(4.0f, 28.0f), 1.0f});
    a.joints_3d.insert(a.joints_3d.end(), {rng.uniform(-0.5f, 0.5f), rng.uniform(-0.9f, 0.9f), rng.uniform(4.0f, 5.0f), 1.0f});
  }
  for (int v = 0; v < kTinyVertices; ++v) {
    a.vertices.insert(a.vertices.end(), {rng.uniform(-0.5f, 0.5f), rng.uniform(-0.9f, 0.9f), rng.uniform(4.0f, 5.0f)});
  }
  a.intrinsics = {100, 100, 16, 16};
  a.shape.assign(3, 0.5f);
  a.has_2d = a.has_3d = a.has_mesh = true;
  return a;
}

// A dataset directory of `count` random-background images with random labels.
void write_tiny_dataset(const ScratchDir& dir, int count) {
  fs::create_directories(dir.path / "images");
  Generator rng(7);
  std::vector<data::SampleAnnotation> samples;
  for (int i = 0; i < count; ++i) {
    samples.push_back(tiny_annotation(i, rng));
    data::write_png(dir.file("images/" + samples.back().image_name), render::random_background(rng, kTinySize, kTinySize));
  }
  data::AnnotationHeader header;
  header.num_joints = kTinyJoints, header.num_vertices = kTinyVertices, header.num_shape_params = 3;
  data::write_annotations(dir.file("annotations.bin"), header, samples);
}

data::LoaderOptions tiny_options(int workers, bool flip) {
  data::LoaderOptions options;
  options.batch_size = 4, options.image_size = 24, options.num_workers = workers, options.seed = 3;
  options.joint_symmetry = tiny_joint_symmetry(), options.vertex_symmetry = tiny_vertex_symmetry();
  options.augment.flip_probability = flip ? 1.0f : 0.0f;
  return options;
}

std::vector<data::Batch> whole_epoch(data::DataLoader& loader, std::uint64_t epoch) {
  loader.start_epoch(epoch);
  std::vector<data::Batch> batches;
  while (auto batch = loader.next()) batches.push_back(std::move(*batch));
  return batches;
}

}  // namespace

TEST_CASE("annotations: round trip and truncation at every record boundary") {
  ScratchDir dir("annotations");
  write_tiny_dataset(dir, 3);
  const std::vector<data::SampleAnnotation> back = data::read_annotations(dir.file("annotations.bin"));
  Generator rng(7);
  const data::SampleAnnotation first = tiny_annotation(0, rng);
  REQUIRE(back.size() == 3);
  CHECK(back[0].joints_2d == first.joints_2d);
  CHECK(back[0].vertices == first.vertices);
  CHECK(back[0].shape == first.shape);
  const std::vector<std::uint8_t> bytes = data::read_file_bytes(dir.file("annotations.bin"));
  for (std::size_t cut : {std::size_t{0}, std::size_t{5}, data::kHeaderBytes, bytes.size() / 2, bytes.size() - 1}) {
    CAPTURE(cut);
    data::write_file_bytes(dir.file("cut.bin"), std::vector<std::uint8_t>(bytes.begin(), bytes.begin() + cut));
    CHECK_THROWS_AS(data::read_annotations(dir.file("cut.bin")), FormatError);
  }
}

TEST_CASE("augment modes: flip mirrors about half the samples and changes nothing else; none changes nothing") {
  Generator rng(5);
  int flips = 0;
  for (int i = 0; i < 400; ++i) {
    const data::AugmentParams p = data::sample_augment_params(rng, data::augment_mode("flip"));
    flips += p.flip;
    CHECK(p.rotation_degrees == 0);
    CHECK(p.scale == 1);
    CHECK(p.color_scale == std::array<float, 3>{1, 1, 1});
    CHECK_FALSE(p.occluder);
  }
  CHECK(flips > 160);
  CHECK(flips < 240);
  const data::AugmentParams none = data::sample_augment_params(rng, data::augment_mode("none"));
  CHECK_FALSE(none.flip);
  CHECK(none.scale == 1);
  int rotated = 0;
  for (int i = 0; i < 100; ++i) rotated += data::sample_augment_params(rng, data::augment_mode("full")).rotation_degrees != 0;
  CHECK(rotated > 20);
  CHECK_THROWS_AS(data::augment_mode("rotate"), UsageError);
}

TEST_CASE("augment: flipping twice is the identity; a flip mirrors and swaps") {
  Generator rng(11);
  data::SampleAnnotation labels = tiny_annotation(0, rng);
  data::AugmentParams flip;
  flip.flip = true;
  const data::CropTransform crop(labels, flip, kTinySize);  // output = stored size: a pure mirror
  std::vector<float> once(labels.joints_2d.size()), twice(labels.joints_2d.size());
  const std::vector<int> symmetry = tiny_joint_symmetry();
  // In pixels (undo the [-1, 1] normalization to apply the flip again).
  data::transform_joints_2d(labels.joints_2d, crop, symmetry, once);
  for (int j = 0; j < kTinyJoints; ++j) {
    const int partner = symmetry[j];
    CHECK(once[3 * j] == doctest::Approx(-(2 * labels.joints_2d[3 * partner] / kTinySize - 1)));
    CHECK(once[3 * j + 1] == doctest::Approx(2 * labels.joints_2d[3 * partner + 1] / kTinySize - 1));
  }
  std::vector<float> once_pixels = once;
  for (std::size_t i = 0; i < once.size(); i += 3) {
    once_pixels[i] = (once[i] + 1) * kTinySize / 2, once_pixels[i + 1] = (once[i + 1] + 1) * kTinySize / 2;
  }
  data::transform_joints_2d(once_pixels, crop, symmetry, twice);
  for (std::size_t i = 0; i < twice.size(); i += 3) {
    CHECK((twice[i] + 1) * kTinySize / 2 == doctest::Approx(labels.joints_2d[i]));
    CHECK((twice[i + 1] + 1) * kTinySize / 2 == doctest::Approx(labels.joints_2d[i + 1]));
  }
  std::vector<float> vertices_once(labels.vertices.size()), vertices_twice(labels.vertices.size());
  const metro::Vec3f zero = metro::Vec3f::Zero();
  data::transform_points_3d(labels.vertices, 3, zero, crop, tiny_vertex_symmetry(), vertices_once);
  CHECK(vertices_once[0] == -labels.vertices[3]);
  CHECK(vertices_once[2] == labels.vertices[5]);
  data::transform_points_3d(vertices_once, 3, zero, crop, tiny_vertex_symmetry(), vertices_twice);
  CHECK(vertices_twice == labels.vertices);
}

TEST_CASE("loader: shapes, pelvis-relative labels, normalization, flips, determinism") {
  ScratchDir dir("loader");
  write_tiny_dataset(dir, 10);
  const data::Dataset dataset(dir.path.string());
  data::LoaderOptions plain_options = tiny_options(2, false);
  plain_options.shuffle = false, plain_options.augment.enabled = false;
  data::DataLoader plain(dataset, plain_options);
  CHECK(plain.batches_per_epoch() == 2);  // 10 samples, batches of 4, drop_last
  const std::vector<data::Batch> batches = whole_epoch(plain, 0);
  REQUIRE(batches.size() == 2);
  const data::Batch& b = batches[0];
  CHECK(b.images.size() == 4u * 3 * 24 * 24);
  CHECK(b.joints_2d.size() == 4u * 14 * 3);
  CHECK(b.joints_3d.size() == 4u * 14 * 4);
  CHECK(b.vertices.size() == 4u * 4 * 3);
  CHECK(b.has_mesh == std::vector<float>(4, 1.0f));
  CHECK(b.indices == std::vector<std::size_t>{0, 1, 2, 3});
  // Mid-hip at the origin; joints_2d normalized like the official code.
  CHECK(b.joints_3d[4 * 2] + b.joints_3d[4 * 3] == doctest::Approx(0).epsilon(1e-6));
  const data::SampleAnnotation first = dataset.annotation(0);
  CHECK(b.joints_2d[0] == doctest::Approx(2 * first.joints_2d[0] / kTinySize - 1));
  // ImageNet normalization of a pixel center that maps exactly onto a stored pixel center
  // (24/32 scaling: output pixel 1 center 1.5 -> source 2.0, between pixels 1 and 2).
  const render::Image stored = data::read_image(dataset.image_path(first));
  const float source_value = (stored.at(1, 1)[0] + stored.at(2, 1)[0] + stored.at(1, 2)[0] + stored.at(2, 2)[0]) / 4.0f;
  CHECK(b.images[1 * 24 + 1] == doctest::Approx((source_value / 255 - data::kImageNetMean[0]) / data::kImageNetStd[0]).epsilon(1e-4));

  // With flips: images mirrored, 2D joints mirrored and swapped (no other augmentation).
  data::LoaderOptions flip_options = plain_options;
  flip_options.augment = {};
  flip_options.augment.flip_probability = 1, flip_options.augment.rotation_zero_probability = 1;
  flip_options.augment.scale_std = 0, flip_options.augment.color_scale_min = flip_options.augment.color_scale_max = 1;
  data::DataLoader flipped_loader(dataset, flip_options);
  const data::Batch flipped = whole_epoch(flipped_loader, 0)[0];
  for (int x = 0; x < 24; ++x) CHECK(flipped.images[5 * 24 + x] == b.images[5 * 24 + 23 - x]);
  for (int j = 0; j < kTinyJoints; ++j) {
    const int partner = tiny_joint_symmetry()[j];
    CHECK(flipped.joints_2d[3 * j] == doctest::Approx(-b.joints_2d[3 * partner]));
    CHECK(flipped.joints_3d[4 * j] == doctest::Approx(-b.joints_3d[4 * partner]));
    CHECK(flipped.joints_3d[4 * j + 1] == doctest::Approx(b.joints_3d[4 * partner + 1]));
  }

  // Full augmentation: identical batches with 1 and 3 workers; epochs differ.
  data::DataLoader one(dataset, tiny_options(1, true)), three(dataset, tiny_options(3, true));
  const std::vector<data::Batch> a = whole_epoch(one, 5), c = whole_epoch(three, 5);
  REQUIRE(a.size() == c.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].images == c[i].images);
    CHECK(a[i].joints_3d == c[i].joints_3d);
    CHECK(a[i].indices == c[i].indices);
  }
  CHECK(whole_epoch(one, 6)[0].images != a[0].images);
}

TEST_CASE("loader: a missing image surfaces as FormatError/IOError in the caller") {
  ScratchDir dir("loader_bad");
  write_tiny_dataset(dir, 4);
  fs::remove(dir.path / "images" / "s2.png");
  const data::Dataset dataset(dir.path.string());
  data::DataLoader loader(dataset, tiny_options(2, false));
  loader.start_epoch(0);
  CHECK_THROWS_AS(loader.next(), IOError);
  CHECK_THROWS_AS(data::DataLoader(dataset, [] { auto o = tiny_options(1, true); o.vertex_symmetry.clear(); return o; }()),
                  ValueError);
}

namespace {

// The samples of a small synthetic dataset written once for the synth tests.
const std::vector<data::SynthSample>& synthetic_samples() {
  static const std::vector<data::SynthSample> samples = [] {
    std::vector<data::SynthSample> out;
    for (std::uint64_t i = 0; i < 8; ++i) out.push_back(data::make_synthetic_sample(body::BodyModel::get(), 42, i, {}));
    return out;
  }();
  return samples;
}

render::Camera camera_of(const data::SampleAnnotation& a) {
  return {a.intrinsics[0], a.intrinsics[1], a.intrinsics[2], a.intrinsics[3]};
}

std::vector<metro::Vec3f> points_of(const std::vector<float>& flat, int stride) {
  std::vector<metro::Vec3f> points;
  for (std::size_t i = 0; i + 2 < flat.size(); i += stride) points.emplace_back(flat[i], flat[i + 1], flat[i + 2]);
  return points;
}

}  // namespace

TEST_CASE("synth: 3D joints projected with the stored camera give the 2D joints") {
  for (const data::SynthSample& sample : synthetic_samples()) {
    const data::SampleAnnotation& a = sample.annotation;
    REQUIRE(a.joints_2d.size() == 3u * body::kNumJoints);
    const std::vector<metro::Vec3f> joints = points_of(a.joints_3d, 4);
    for (int j = 0; j < body::kNumJoints; ++j) {
      const metro::Vec2f projected = camera_of(a).project(joints[j]);
      CHECK(std::abs(projected.x() - a.joints_2d[3 * j]) < 0.5f);
      CHECK(std::abs(projected.y() - a.joints_2d[3 * j + 1]) < 0.5f);
    }
  }
}

TEST_CASE("synth: the person fills the crop and visible joints lie on the silhouette") {
  const body::BodyModel& model = body::BodyModel::get();
  int visible_count = 0;
  for (const data::SynthSample& sample : synthetic_samples()) {
    const data::SampleAnnotation& a = sample.annotation;
    const std::vector<metro::Vec3f> vertices = points_of(a.vertices, 3);
    const render::Image mask = render::silhouette({vertices, model.faces(0)}, camera_of(a), 128, 128);
    int min_x = 128, max_x = -1, min_y = 128, max_y = -1;
    for (int y = 0; y < 128; ++y) {
      for (int x = 0; x < 128; ++x) {
        if (!mask.at(x, y)[0]) continue;
        min_x = std::min(min_x, x), max_x = std::max(max_x, x), min_y = std::min(min_y, y), max_y = std::max(max_y, y);
      }
    }
    CHECK(std::max(max_x - min_x, max_y - min_y) > 0.65 * 128);
    for (int j = 0; j < body::kNumJoints; ++j) {
      if (a.joints_2d[3 * j + 2] == 0) continue;
      ++visible_count;
      // A 3x3 neighbourhood: the head-top joint sits on the outline.
      const int x = static_cast<int>(a.joints_2d[3 * j]), y = static_cast<int>(a.joints_2d[3 * j + 1]);
      bool on_body = false;
      for (int dy = -1; dy <= 1; ++dy) {
        for (int dx = -1; dx <= 1; ++dx) {
          const int u = std::clamp(x + dx, 0, 127), v = std::clamp(y + dy, 0, 127);
          on_body = on_body || mask.at(u, v)[0];
        }
      }
      CAPTURE(j);
      CHECK(on_body);
    }
  }
  CHECK(visible_count > 8 * 9);  // most joints are visible
}

TEST_CASE("synth: files are byte-identical on 1 and 2 threads") {
  ScratchDir one("synth1"), two("synth2");
  data::SynthOptions options;
  options.image_size = 64, options.occluder_probability = 0.5f;
  data::write_synthetic_dataset(body::BodyModel::get(), one.path.string(), 6, 9, options, 1);
  data::write_synthetic_dataset(body::BodyModel::get(), two.path.string(), 6, 9, options, 2);
  CHECK(data::read_file_bytes(one.file("annotations.bin")) == data::read_file_bytes(two.file("annotations.bin")));
  for (const char* name : {"images/train_00000000.png", "images/train_00000005.png"}) {
    CHECK(data::read_file_bytes(one.file(name)) == data::read_file_bytes(two.file(name)));
  }
  const data::Dataset dataset(one.path.string());
  CHECK(dataset.size() == 6);
  CHECK(dataset.num_vertices() == body::BodyModel::get().num_vertices(0));
  CHECK(dataset.load(3).image.width == 64);
  // The loader over real body data: flips need the model's symmetry maps.
  data::LoaderOptions options_loader;
  options_loader.batch_size = 3, options_loader.image_size = 48, options_loader.num_workers = 2;
  options_loader.joint_symmetry = data::body_joint_symmetry();
  options_loader.vertex_symmetry = body::BodyModel::get().vertex_symmetry();
  data::DataLoader loader(dataset, options_loader);
  const std::vector<data::Batch> batches = whole_epoch(loader, 0);
  REQUIRE(batches.size() == 2);
  CHECK(batches[0].vertices.size() == 3u * body::BodyModel::get().num_vertices(0) * 3);
  float max_height = 0;
  for (std::size_t i = 1; i < batches[0].vertices.size(); i += 3) max_height = std::max(max_height, std::abs(batches[0].vertices[i]));
  CHECK(max_height > 0.4f);  // pelvis-relative metres: head and feet are 0.4-1.2 m away
  CHECK(max_height < 1.3f);
}

TEST_CASE("rasterizer: culling back faces leaves the body's image unchanged") {
  const body::BodyModel& model = body::BodyModel::get();
  for (const data::SynthSample& sample : synthetic_samples()) {
    const std::vector<metro::Vec3f> vertices = points_of(sample.annotation.vertices, 3);
    const render::MeshView mesh{vertices, model.faces(0)};
    const render::VisibilityBuffer both = render::rasterize(mesh, camera_of(sample.annotation), 128, 128);
    const render::VisibilityBuffer front = render::rasterize(mesh, camera_of(sample.annotation), 128, 128, render::Faces::front_only);
    int covered = 0, differ = 0;
    for (std::size_t i = 0; i < both.face.size(); ++i) covered += both.face[i] >= 0, differ += both.face[i] != front.face[i];
    CHECK(covered > 1000);
    CHECK(differ <= covered / 500);  // a few grazing-angle pixels at most
  }
}

TEST_CASE("loader: rotated/flipped/scaled 2D and 3D labels stay weak-perspective consistent") {
  ScratchDir dir("synth_aug");
  data::write_synthetic_dataset(body::BodyModel::get(), dir.path.string(), 8, 21, {}, 2);
  const data::Dataset dataset(dir.path.string());
  data::LoaderOptions options;
  options.batch_size = 8, options.image_size = 64, options.num_workers = 2;
  options.joint_symmetry = data::body_joint_symmetry();
  options.vertex_symmetry = body::BodyModel::get().vertex_symmetry();
  options.augment.rotation_zero_probability = 0;  // always rotate
  data::DataLoader loader(dataset, options);
  const data::Batch batch = whole_epoch(loader, 0).at(0);
  for (int b = 0; b < batch.batch_size; ++b) {
    // Least-squares s, t with x2d ~ s * xy3d + t (METRO's camera, Sec. 3.1), over the 14 joints.
    metro::Vec2f mean_2d = metro::Vec2f::Zero(), mean_3d = metro::Vec2f::Zero();
    std::vector<metro::Vec2f> p2, p3;
    for (int j = 0; j < 14; ++j) {
      p2.emplace_back(batch.joints_2d[(b * 14 + j) * 3], batch.joints_2d[(b * 14 + j) * 3 + 1]);
      p3.emplace_back(batch.joints_3d[(b * 14 + j) * 4], batch.joints_3d[(b * 14 + j) * 4 + 1]);
      mean_2d += p2.back() / 14, mean_3d += p3.back() / 14;
    }
    float dot = 0, norm = 0;
    for (int j = 0; j < 14; ++j) dot += (p2[j] - mean_2d).dot(p3[j] - mean_3d), norm += (p3[j] - mean_3d).squaredNorm();
    const float scale = dot / norm;
    float residual = 0;
    for (int j = 0; j < 14; ++j) residual += (p2[j] - mean_2d - scale * (p3[j] - mean_3d)).squaredNorm() / 14;
    CAPTURE(b);
    CHECK(scale > 0.5f);
    CHECK(std::sqrt(residual) < 0.04f);  // perspective effects only; a wrong rotation sign gives ~0.3
  }
}

TEST_CASE("camera: the perspective view of a weak-perspective camera draws the same points") {
  const float s = 0.9f, tx = 0.05f, ty = -0.1f;
  const render::PerspectiveView view = render::from_weak_perspective(s, tx, ty, 96);
  for (const metro::Vec3f& point : {metro::Vec3f(0.3f, -0.6f, 0.0f), metro::Vec3f(-0.2f, 0.8f, 0.1f)}) {
    const metro::Vec2f pixel = view.camera.project(point + view.translation);
    const metro::Vec2f expected = (s * (metro::Vec2f(point.x(), point.y()) + metro::Vec2f(tx, ty)) + metro::Vec2f::Ones()) * 48;
    CHECK(pixel.x() == doctest::Approx(expected.x()).epsilon(0.002));
    CHECK(pixel.y() == doctest::Approx(expected.y()).epsilon(0.002));
  }
}

// ---- from the body model to the network's mesh hierarchy (train/targets.hpp) ----

TEST_CASE("MeshHierarchy: the paper's levels and the small preset's, chosen by the network's token count") {
  const train::MeshHierarchy paper;
  CHECK(paper.coarse_vertices() == 431);
  CHECK(paper.mid_vertices() == 1723);
  CHECK(paper.full_vertices() == 6890);
  CHECK(paper.template_vertices.shape() == Shape{431, 3});

  const model::MetroConfig small = train::small_config(64);
  const train::MeshHierarchy mesh = train::MeshHierarchy::for_network(small);
  CHECK(mesh.coarse_level == 3);
  CHECK(mesh.coarse_vertices() == 108);
  CHECK(mesh.mid_vertices() == 431);
  CHECK(mesh.full_vertices() == 6890);
  CHECK(mesh.mid_to_full.rows() == 6890);
  CHECK(mesh.mid_to_full.cols() == 431);

  model::MetroConfig odd = small;
  odd.num_coarse_vertices = 500;
  CHECK_THROWS_AS(train::MeshHierarchy::for_network(odd), ValueError);
  odd = small;
  odd.upsample_sizes = {1723, 6890};
  CHECK_THROWS_AS(train::MeshHierarchy::for_network(odd), ValueError);  // 108 tokens, but not the 431 mid level
}

TEST_CASE("init_upsampling_from_body: the coarse mesh carried up reproduces the full template within 1.5 cm") {
  const model::MetroConfig config = train::small_config(64);
  const train::MeshHierarchy mesh = train::MeshHierarchy::for_network(config);
  model::MetroNetwork<float> net(config);
  train::init_upsampling_from_body(net, mesh);
  TensorF up1, fixed;
  for (const auto& [name, p] : net.named_parameters())
    if (name == "upsampling.weight") up1 = p;
  for (const auto& [name, b] : net.named_buffers())
    if (name == "fixed_upsampling") fixed = b;
  REQUIRE(up1.defined());
  REQUIRE(fixed.defined());
  const body::BodyModel& body = body::BodyModel::get();
  const TensorF coarse = train::tensor_from_points(train::to_camera_orientation(body.rest_vertices(3)));  // (108, 3)
  const TensorF full = matmul(fixed, matmul(up1, coarse));                                                // (6890, 3)
  const TensorF truth = train::tensor_from_points(train::to_camera_orientation(body.rest_vertices(0)));
  const double mean_error = mean(sqrt(sum((full - truth) * (full - truth), {1}))).item();
  MESSAGE("108 -> 431 -> 6890 barycentric round trip: mean error " << mean_error * 1000 << " mm");
  CHECK(mean_error < 0.015);
}

// ---- body files: a body model's mesh hierarchy in one file (train/body_file.hpp) ----

TEST_CASE("body file: saving and loading the small preset's hierarchy gives the same matrices, template and maps") {
  const ScratchDir dir("body_file");
  const train::MeshHierarchy body(3);
  train::save_body_file(dir.file("body.safetensors"), body);
  const train::MeshHierarchy loaded = train::load_body_file(dir.file("body.safetensors"));
  CHECK(loaded.coarse_level == -1);
  CHECK(loaded.full_to_mid == body.full_to_mid);
  CHECK(loaded.mid_to_coarse == body.mid_to_coarse);
  CHECK(loaded.coarse_to_mid == body.coarse_to_mid);
  CHECK(loaded.mid_to_full == body.mid_to_full);
  CHECK(loaded.regressor.to_vector() == body.regressor.to_vector());
  CHECK(loaded.template_joints.to_vector() == body.template_joints.to_vector());
  CHECK(loaded.template_vertices.to_vector() == body.template_vertices.to_vector());
  CHECK(loaded.faces == body.faces);
  CHECK(loaded.joint_symmetry == body.joint_symmetry);
  CHECK(loaded.vertex_symmetry == body.vertex_symmetry);
  CHECK_NOTHROW(train::check_network_matches(train::small_config(64, loaded), loaded));
  CHECK_THROWS_AS(train::check_network_matches(model::paper_body(), loaded), ValueError);

  // A checkpoint carries its body; a body file given with it must be the same.
  const std::string print = train::body_fingerprint(loaded);
  CHECK(print.size() == 16);
  CHECK(print == train::body_fingerprint(body));
  train::MeshHierarchy moved = loaded;
  moved.template_vertices = moved.template_vertices + 0.001f;
  CHECK(train::body_fingerprint(moved) != print);
  train::save_body_file(dir.file("moved.safetensors"), moved);
  const model::MetroConfig config = train::small_config(64);
  io::SafeTensorsFile old_checkpoint, checkpoint;
  checkpoint.tensors = train::checkpoint_body_tensors(moved);
  CHECK(train::body_for_checkpoint(old_checkpoint, "old.safetensors", config).coarse_level == 3);  // before bodies were stored
  CHECK(train::body_for_checkpoint(old_checkpoint, "old.safetensors", config, dir.file("body.safetensors")).coarse_level == -1);
  const train::MeshHierarchy carried = train::body_for_checkpoint(checkpoint, "c.safetensors", config);
  CHECK(carried.template_vertices.to_vector() == moved.template_vertices.to_vector());
  CHECK(train::body_fingerprint(carried) == train::body_fingerprint(moved));
  CHECK_NOTHROW(train::body_for_checkpoint(checkpoint, "c.safetensors", config, dir.file("moved.safetensors")));
  CHECK_THROWS_AS(train::body_for_checkpoint(checkpoint, "c.safetensors", config, dir.file("body.safetensors")), ValueError);
  CHECK_THROWS_AS(train::body_for_checkpoint(checkpoint, "c.safetensors", model::paper_body()), ValueError);
  checkpoint.tensors.erase("body.faces");
  CHECK_THROWS_WITH_AS(train::body_for_checkpoint(checkpoint, "c.safetensors", config),
                       "c.safetensors (its body): body file: no tensor \"faces\"", FormatError);
}

TEST_CASE("body file: a missing tensor, a wrong shape or dtype, or an impossible index or value is a FormatError naming it") {
  const ScratchDir dir("body_file_bad");
  const io::SafeTensorsFile good = train::to_safetensors(train::MeshHierarchy(3));
  const auto load_with = [&](const std::function<void(io::SafeTensorsFile&)>& spoil) {
    io::SafeTensorsFile file = good;
    spoil(file);
    io::save_safetensors(dir.file("bad.safetensors"), file);
    try {
      train::load_body_file(dir.file("bad.safetensors"));
    } catch (const FormatError& e) {
      CHECK(e.path() == dir.file("bad.safetensors"));
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const auto set_i32 = [](io::SafeTensorsFile& f, const std::string& name, std::size_t at, std::int32_t value) {
    std::memcpy(f.tensors.at(name).data.data() + at * sizeof value, &value, sizeof value);
  };
  const std::vector<std::pair<std::string, std::function<void(io::SafeTensorsFile&)>>> cases = {
      {"no tensor \"faces\"", [](auto& f) { f.tensors.erase("faces"); }},
      {"\"joint_regressor\" has dtype F64",
       [](auto& f) { f.tensors["joint_regressor"] = io::make_record<double>({14, 6890}, std::vector<double>(14 * 6890)); }},
      {"\"template_vertices\" has shape (431, 3), expected (108, 3)",
       [](auto& f) { f.tensors["template_vertices"] = io::make_record<float>({431, 3}, std::vector<float>(431 * 3)); }},
      {"\"mid_to_full\" is 6890 x 108, expected (6890, 431)",
       [](auto& f) { f.tensors["mid_to_full.shape"] = io::make_record<std::int64_t>({2}, std::vector<std::int64_t>{6890, 108}); }},
      {"\"faces\" has index 6890 outside [0, 6890)", [&](auto& f) { set_i32(f, "faces", 4, 6890); }},
      {"\"vertex_symmetry\" has index -2 outside [0, 6890)", [&](auto& f) { set_i32(f, "vertex_symmetry", 5, -2); }},
      {"\"coarse_to_mid.indptr\" is not a valid CSR row index", [&](auto& f) { set_i32(f, "coarse_to_mid.indptr", 1, -5); }},
      {"\"mid_to_coarse.indptr\" must run from 0 to the number of entries",
       [&](auto& f) { set_i32(f, "mid_to_coarse.indptr", 108, 100); }},  // the last 8 entries would be dropped
      {"\"joint_regressor\" has 17 joints",
       [](auto& f) { f.tensors["joint_regressor"] = io::make_record<float>({17, 6890}, std::vector<float>(17 * 6890)); }},
      {"the mid mesh has 0 vertices",
       [](auto& f) {
         f.tensors["full_to_mid.shape"] = io::make_record<std::int64_t>({2}, std::vector<std::int64_t>{0, 6890});
         f.tensors["full_to_mid.indptr"] = io::make_record<std::int32_t>({1}, std::vector<std::int32_t>{0});
         f.tensors["full_to_mid.indices"] = io::make_record<std::int32_t>({0}, std::vector<std::int32_t>{});
         f.tensors["full_to_mid.data"] = io::make_record<float>({0}, std::vector<float>{});
       }},
      {"\"full_to_mid.indices\" has column -1", [&](auto& f) { set_i32(f, "full_to_mid.indices", 7, -1); }},
      {"\"template_joints\" has a value that is not finite",
       [](auto& f) {
         const float nan = std::numeric_limits<float>::quiet_NaN();
         std::memcpy(f.tensors.at("template_joints").data.data() + 8, &nan, sizeof nan);
       }},
  };
  for (const auto& [expected, spoil] : cases) {
    CAPTURE(expected);
    const std::string message = load_with(spoil);
    CHECK(message.find(expected) != std::string::npos);
  }
  CHECK_THROWS_AS(train::load_body_file(dir.file("missing.safetensors")), IOError);
}

TEST_CASE("body file: sparse matrices as scipy may write them, columns in any order and repeated, load as their sums") {
  const train::MeshHierarchy body(3);
  io::SafeTensorsFile file = train::to_safetensors(body);
  // coarse_to_mid (431, 108) rewritten row by row: columns reversed, each entry split
  // into 0.25 + 0.75 of its value (duplicates, as an unsummed COO -> CSR conversion leaves).
  std::vector<std::int32_t> indptr{0}, indices;
  std::vector<float> values;
  for (int r = 0; r < body.coarse_to_mid.rows(); ++r) {
    const auto columns = body.coarse_to_mid.row_columns(r);
    const auto weights = body.coarse_to_mid.row_values(r);
    for (std::size_t k = columns.size(); k-- > 0;) {
      indices.insert(indices.end(), {columns[k], columns[k]});
      values.insert(values.end(), {0.25f * weights[k], 0.75f * weights[k]});
    }
    indptr.push_back(static_cast<std::int32_t>(indices.size()));
  }
  const auto nnz = static_cast<std::int64_t>(indices.size());
  file.tensors["coarse_to_mid.indptr"] = io::make_record<std::int32_t>({431 + 1}, indptr);
  file.tensors["coarse_to_mid.indices"] = io::make_record<std::int32_t>({nnz}, indices);
  file.tensors["coarse_to_mid.data"] = io::make_record<float>({nnz}, values);
  const train::MeshHierarchy loaded = train::body_from_safetensors(file, "scipy.safetensors");
  REQUIRE(loaded.coarse_to_mid.nonZeros() == body.coarse_to_mid.nonZeros());
  const std::vector<float> expected = body.coarse_to_mid.to_dense(), got = loaded.coarse_to_mid.to_dense();
  float largest_difference = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) largest_difference = std::max(largest_difference, std::abs(got[i] - expected[i]));
  CHECK(largest_difference < 1e-6f);
}

TEST_CASE("body file: a network and its data loader take the body's sizes and mirror maps") {
  train::MeshHierarchy body(3);
  std::iota(body.vertex_symmetry.begin(), body.vertex_symmetry.end(), 0);  // not the procedural body's map
  const data::LoaderOptions o = train::loader_options(body, 4, 64, 0, true, 1);
  CHECK(o.vertex_symmetry == body.vertex_symmetry);
  CHECK(o.joint_symmetry == body.joint_symmetry);
  const model::MetroConfig config = train::preset_config("small", 64, &body);
  CHECK(config.num_coarse_vertices == 108);
  CHECK(config.upsample_sizes == std::vector<std::int64_t>{431, 6890});
}

TEST_CASE("to_tensors: mesh targets centred on the mesh's own pelvis; a dataset without meshes trains with has_mesh 0") {
  const train::MeshHierarchy mesh(3);
  const body::BodyModel& body = body::BodyModel::get();
  data::Batch batch(2, 8, 14, 6890);
  std::fill(batch.has_mesh.begin(), batch.has_mesh.end(), 1.0f);
  const std::vector<metro::Vec3f> rest = body.rest_vertices(0);
  for (int b = 0; b < 2; ++b)
    for (int i = 0; i < 6890; ++i)  // sample 1 as a label without 3D joints leaves it: not centred at all
      for (int c = 0; c < 3; ++c) batch.vertices[static_cast<std::size_t>((b * 6890 + i) * 3 + c)] = rest[static_cast<std::size_t>(i)][c] + (b == 1 ? 4.0f : 0.0f);
  const train::BatchTensors t = train::to_tensors(batch, mesh);
  const TensorF joints = nn::regress_joints(mesh.regressor, t.targets.full_vertices);  // (2, 14, 3)
  const TensorF pelvis = (narrow(joints, 1, 2, 1) + narrow(joints, 1, 3, 1)) * 0.5f;
  CHECK(max(abs(pelvis)).item() < 1e-5);
  const TensorF& full = t.targets.full_vertices;
  CHECK(max(abs(narrow(full, 0, 0, 1) - narrow(full, 0, 1, 1))).item() < 1e-5);  // the offset is gone
  CHECK(t.targets.has_mesh.to_vector() == std::vector<float>{1, 1});

  data::Batch joints_only(2, 8, 14, 0);
  std::fill(joints_only.has_mesh.begin(), joints_only.has_mesh.end(), 1.0f);
  const train::BatchTensors u = train::to_tensors(joints_only, mesh);
  CHECK(u.targets.full_vertices.shape() == Shape{2, 6890, 3});
  CHECK(u.targets.coarse_vertices.shape() == Shape{2, 108, 3});
  CHECK(u.targets.has_mesh.to_vector() == std::vector<float>{0, 0});
}

TEST_CASE("box_crop: the square of side 1.2 max(w, h) around the person box") {
  const train::Crop crop = train::box_crop(40, 10, 200, 260);
  CHECK(crop.side == doctest::Approx(312));
  CHECK(crop.x0 == doctest::Approx(40 + 100 - 156));
  CHECK(crop.y0 == doctest::Approx(10 + 130 - 156));
}

TEST_CASE("body file: a body with other level sizes than the procedural presets builds and runs its own network") {
  const body::BodyModel& model = body::BodyModel::get();
  const train::MeshHierarchy small(3);
  train::MeshHierarchy custom{train::MeshHierarchy::Empty{}};  // 108 tokens, mid 1723 (the procedural small: mid 431)
  custom.full_to_mid = model.downsample(0, 1);
  custom.mid_to_coarse = model.downsample(1, 3);
  custom.coarse_to_mid = model.upsample(3, 1);
  custom.mid_to_full = model.upsample(1, 0);
  custom.regressor = small.regressor;
  custom.template_joints = small.template_joints;
  custom.template_vertices = small.template_vertices;
  custom.faces = small.faces;
  custom.joint_symmetry = small.joint_symmetry;
  custom.vertex_symmetry = small.vertex_symmetry;
  const ScratchDir dir("body_file_custom");
  train::save_body_file(dir.file("custom.safetensors"), custom);
  const train::MeshHierarchy loaded = train::load_body_file(dir.file("custom.safetensors"));
  const model::MetroConfig config = train::preset_config("small", 64, &loaded);
  CHECK(config.upsample_sizes == std::vector<std::int64_t>{1723, 6890});
  Generator gen(5);
  model::MetroNetwork<float> net(config, gen);
  train::init_from_body(net, loaded);
  net.eval();
  NoGradGuard no_grad;
  const auto out = net.forward(randn<float>({1, 3, 64, 64}, gen));
  CHECK(out.mid_vertices.shape() == Shape{1, 1723, 3});
  CHECK(out.full_vertices.shape() == Shape{1, 6890, 3});
  io::SafeTensorsFile checkpoint;  // a checkpoint that carries this body, and one from before bodies were stored
  checkpoint.tensors = train::checkpoint_body_tensors(loaded);
  CHECK(train::body_for_checkpoint(checkpoint, "c.safetensors", config).mid_vertices() == 1723);
  CHECK_THROWS_AS(train::body_for_checkpoint(io::SafeTensorsFile{}, "old.safetensors", config), ValueError);  // no procedural level fits
}
