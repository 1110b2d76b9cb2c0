#pragma once
// Random procedural backgrounds (gradients, value noise, stripes, checkers) and
// rectangular occluders for the synthetic dataset. Every draw comes from the
// caller's Generator, so an image depends only on its seed.
#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>
#include <vector>

#include "metro/core/random.hpp"
#include "metro/render/image.hpp"

namespace metro::render {

inline Color random_color(Generator& rng) {
  return {rng.uniform<float>(), rng.uniform<float>(), rng.uniform<float>()};
}

inline Color mix(Color a, Color b, float t) noexcept {
  return {a.r + (b.r - a.r) * t, a.g + (b.g - a.g) * t, a.b + (b.b - a.b) * t};
}

// A random hue at a brightness in [min_value, max_value] and a random saturation
// in [0.15, 0.85] (less garish than random_color: clothes, walls).
inline Color random_tinted_color(Generator& rng, float min_value, float max_value) {
  const Color hue = random_color(rng);
  const float value = rng.uniform(min_value, max_value), saturation = rng.uniform(0.15f, 0.85f);
  const float peak = std::max({hue.r, hue.g, hue.b, 1e-3f});
  const auto channel = [&](float h) { return value * (1 - saturation + saturation * h / peak); };
  return {channel(hue.r), channel(hue.g), channel(hue.b)};
}

// Fills every pixel with pattern(x, y) -> t in [0, 1], colored between a and b.
template <class Pattern>
void fill_two_tone(Image& image, Color a, Color b, Pattern pattern) {
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) put_rgb(image, x, y, mix(a, b, pattern(x + 0.5f, y + 0.5f)));
  }
}

// Coordinate along a random direction (pixels): gradients and stripes use it.
struct Direction {
  float cos_angle, sin_angle;
  float along(float x, float y) const noexcept { return x * cos_angle + y * sin_angle; }
};

inline Direction random_direction(Generator& rng) {
  const float angle = rng.uniform<float>(0.0f, 2 * std::numbers::pi_v<float>);
  return {std::cos(angle), std::sin(angle)};
}

// Value noise: random values on a coarse grid of `cell` pixels, bilinearly
// interpolated with a smoothstep.
inline std::vector<float> value_noise(Generator& rng, int width, int height, float cell) {
  const int grid_w = static_cast<int>(width / cell) + 2, grid_h = static_cast<int>(height / cell) + 2;
  std::vector<float> grid(static_cast<std::size_t>(grid_w) * grid_h);
  for (float& g : grid) g = rng.uniform<float>();
  std::vector<float> noise(static_cast<std::size_t>(width) * height);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      const float gx = (x + 0.5f) / cell, gy = (y + 0.5f) / cell;
      const int ix = static_cast<int>(gx), iy = static_cast<int>(gy);
      float tx = gx - ix, ty = gy - iy;
      tx = tx * tx * (3 - 2 * tx), ty = ty * ty * (3 - 2 * ty);
      const auto at = [&](int i, int j) { return grid[static_cast<std::size_t>(j) * grid_w + i]; };
      const float top = at(ix, iy) + (at(ix + 1, iy) - at(ix, iy)) * tx;
      const float bottom = at(ix, iy + 1) + (at(ix + 1, iy + 1) - at(ix, iy + 1)) * tx;
      noise[static_cast<std::size_t>(y) * width + x] = top + (bottom - top) * ty;
    }
  }
  return noise;
}

enum class BackgroundKind { gradient, noise, stripes, checker, count };

// A random RGB background of one of the BackgroundKind patterns.
inline Image random_background(Generator& rng, int width, int height) {
  Image image(width, height, 3);
  const auto kind = static_cast<BackgroundKind>(rng.randint(0, static_cast<int>(BackgroundKind::count)));
  const Color a = random_tinted_color(rng, 0.1f, 1.0f), b = random_tinted_color(rng, 0.1f, 1.0f);
  const float side = static_cast<float>(std::max(width, height));
  const Direction direction = random_direction(rng);
  switch (kind) {
    case BackgroundKind::gradient: {
      fill_two_tone(image, a, b, [&](float x, float y) {
        return std::clamp(0.5f + direction.along(x - width / 2.0f, y - height / 2.0f) / side, 0.0f, 1.0f);
      });
      break;
    }
    case BackgroundKind::noise: {
      const std::vector<float> noise = value_noise(rng, width, height, rng.uniform<float>(side / 16, side / 3));
      fill_two_tone(image, a, b, [&](float x, float y) { return noise[static_cast<std::size_t>(y) * width + static_cast<std::size_t>(x)]; });
      break;
    }
    case BackgroundKind::stripes: {
      const float period = rng.uniform<float>(side / 20, side / 4);
      fill_two_tone(image, a, b, [&](float x, float y) {
        return 0.5f + 0.5f * std::sin(2 * std::numbers::pi_v<float> * direction.along(x, y) / period);
      });
      break;
    }
    default: {
      const float cell = rng.uniform<float>(side / 16, side / 4);
      const Direction across{-direction.sin_angle, direction.cos_angle};
      fill_two_tone(image, a, b, [&](float x, float y) {
        const auto u = static_cast<long>(std::floor(direction.along(x, y) / cell));
        const auto v = static_cast<long>(std::floor(across.along(x, y) / cell));
        return static_cast<float>((u + v) & 1);
      });
      break;
    }
  }
  return image;
}

// Draws a filled axis-aligned rectangle of a random color and size (10-40% of
// the image side) at a random place (synthetic occlusion).
inline void draw_random_occluder(Image& image, Generator& rng) {
  const int w = static_cast<int>(image.width * rng.uniform<float>(0.1f, 0.4f));
  const int h = static_cast<int>(image.height * rng.uniform<float>(0.1f, 0.4f));
  const int left = static_cast<int>(rng.randint(0, image.width - w + 1));
  const int top = static_cast<int>(rng.randint(0, image.height - h + 1));
  const Color color = random_color(rng);
  for (int y = top; y < top + h; ++y) {
    for (int x = left; x < left + w; ++x) put_rgb(image, x, y, color);
  }
}

}  // namespace metro::render
