#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "metro/data/annotations.hpp"
#include "metro/data/image_io.hpp"
#include "metro/render/background.hpp"
#include "metro/render/camera.hpp"
#include "metro/render/image.hpp"
#include "metro/render/rasterizer.hpp"

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
  std::vector<Eigen::Vector3f> vertices;
  std::vector<Eigen::Vector3i> faces;
  render::MeshView view() const { return {vertices, faces}; }
};

TestMesh cube(const Eigen::Vector3f& center, float side) {
  TestMesh mesh;
  for (int i = 0; i < 8; ++i) {
    mesh.vertices.push_back(center + 0.5f * side * Eigen::Vector3f(i & 1 ? 1 : -1, i & 2 ? 1 : -1, i & 4 ? 1 : -1));
  }
  const int quads[6][4] = {{0, 1, 3, 2}, {4, 6, 7, 5}, {0, 4, 5, 1}, {2, 3, 7, 6}, {0, 2, 6, 4}, {1, 5, 7, 3}};
  for (const auto& q : quads) {
    mesh.faces.emplace_back(q[0], q[1], q[2]);
    mesh.faces.emplace_back(q[0], q[2], q[3]);
  }
  return mesh;
}

// A UV sphere (rings x segments) of radius r at `center`.
TestMesh sphere(const Eigen::Vector3f& center, float radius, int rings = 24, int segments = 48) {
  TestMesh mesh;
  for (int i = 0; i <= rings; ++i) {
    const float theta = std::numbers::pi_v<float> * i / rings;
    for (int j = 0; j < segments; ++j) {
      const float phi = 2 * std::numbers::pi_v<float> * j / segments;
      mesh.vertices.push_back(center + radius * Eigen::Vector3f(std::sin(theta) * std::cos(phi), std::cos(theta),
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
  const float d = Eigen::Vector3f(0.1f, -0.05f, 3.0f).norm();
  const float radius = 200 * 0.5f / std::sqrt(d * d - 0.25f);
  const float expected_area = std::numbers::pi_v<float> * radius * radius;
  CHECK(count_nonzero(mask) == doctest::Approx(expected_area).epsilon(0.03));
  const Eigen::Vector2f c = camera.project({0.1f, -0.05f, 3.0f});
  CHECK(mask.at(static_cast<int>(c.x()), static_cast<int>(c.y()))[0] == 255);
  CHECK(mask.at(2, 2)[0] == 0);
}

TEST_CASE("rasterizer: the depth buffer keeps the nearest surface") {
  const TestMesh near_cube = cube({0, 0, 2.0f}, 0.4f), far_cube = cube({0.2f, 0, 4.0f}, 1.0f);
  TestMesh both = far_cube;
  for (const auto& f : near_cube.faces) both.faces.push_back(f + Eigen::Vector3i::Constant(8));
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
  const Eigen::Vector3i& face = both.faces[buffer.face[i]];
  const Eigen::Vector3f& w = buffer.barycentric[i];
  const Eigen::Vector3f point = w[0] * both.vertices[face[0]] + w[1] * both.vertices[face[1]] + w[2] * both.vertices[face[2]];
  const Eigen::Vector2f pixel = render::Camera{100, 100, 32, 32}.project(point);
  CHECK(pixel.x() == doctest::Approx(40.5f).epsilon(1e-4));
  CHECK(pixel.y() == doctest::Approx(27.5f).epsilon(1e-4));
  CHECK(point.z() == doctest::Approx(buffer.depth[i]).epsilon(1e-5));
}

TEST_CASE("rasterizer: Lambert shading is brighter facing the light, overlay blends") {
  const TestMesh ball = sphere({0, 0, 3.0f}, 0.8f);
  const std::vector<render::Color> white(ball.vertices.size(), render::Color{1, 1, 1});
  render::Lighting light;
  light.to_light = Eigen::Vector3f(-1, 0, 0);  // from the left (camera x points right)
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
