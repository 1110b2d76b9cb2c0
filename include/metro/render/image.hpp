#pragma once
// An 8-bit image (row-major, channels interleaved) and the small pixel helpers
// the renderer, the data loader and the contact sheet share.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "metro/core/error.hpp"

namespace metro::render {

struct Image {
  int width = 0;
  int height = 0;
  int channels = 0;
  std::vector<std::uint8_t> pixels;  // (height, width, channels)

  Image() = default;
  Image(int width_, int height_, int channels_, std::uint8_t fill = 0)
      : width(width_), height(height_), channels(channels_) {
    if (width_ <= 0 || height_ <= 0 || channels_ < 1 || channels_ > 4) {
      throw ValueError("Image: bad size " + std::to_string(width_) + "x" + std::to_string(height_) + "x" +
                       std::to_string(channels_));
    }
    pixels.assign(static_cast<std::size_t>(width_) * height_ * channels_, fill);
  }

  bool empty() const noexcept { return pixels.empty(); }
  std::size_t index(int x, int y) const noexcept {
    return (static_cast<std::size_t>(y) * width + x) * channels;
  }
  std::uint8_t* at(int x, int y) noexcept { return pixels.data() + index(x, y); }
  const std::uint8_t* at(int x, int y) const noexcept { return pixels.data() + index(x, y); }
};

// A float RGB color in [0, 1].
struct Color {
  float r = 0, g = 0, b = 0;
};

inline std::uint8_t to_byte(float value) noexcept {
  return static_cast<std::uint8_t>(std::clamp(value, 0.0f, 1.0f) * 255.0f + 0.5f);
}

inline void put_rgb(Image& image, int x, int y, Color color) noexcept {
  std::uint8_t* pixel = image.at(x, y);
  pixel[0] = to_byte(color.r), pixel[1] = to_byte(color.g), pixel[2] = to_byte(color.b);
}

// Bilinear sample of channel c at continuous coordinates (pixel i covers [i, i+1),
// its center is i + 0.5). Outside the image the value is `outside`.
inline float sample_bilinear(const Image& image, float x, float y, int c, float outside = 0.0f) noexcept {
  const float fx = x - 0.5f, fy = y - 0.5f;
  const int x0 = static_cast<int>(std::floor(fx)), y0 = static_cast<int>(std::floor(fy));
  const float ax = fx - static_cast<float>(x0), ay = fy - static_cast<float>(y0);
  auto value = [&](int xi, int yi) -> float {
    if (xi < 0 || yi < 0 || xi >= image.width || yi >= image.height) return outside;
    return image.at(xi, yi)[c];
  };
  const float top = value(x0, y0) * (1 - ax) + value(x0 + 1, y0) * ax;
  const float bottom = value(x0, y0 + 1) * (1 - ax) + value(x0 + 1, y0 + 1) * ax;
  return top * (1 - ay) + bottom * ay;
}

// Box-filter downscale by an integer factor (used to resolve supersampling and
// to make thumbnails). Width and height must be multiples of `factor`.
inline Image downscale(const Image& image, int factor) {
  if (factor < 1 || image.width % factor || image.height % factor) {
    throw ValueError("downscale: size not a multiple of the factor");
  }
  Image out(image.width / factor, image.height / factor, image.channels);
  const float norm = 1.0f / static_cast<float>(factor * factor);
  for (int y = 0; y < out.height; ++y) {
    for (int x = 0; x < out.width; ++x) {
      for (int c = 0; c < image.channels; ++c) {
        float sum = 0;
        for (int dy = 0; dy < factor; ++dy) {
          for (int dx = 0; dx < factor; ++dx) sum += image.at(x * factor + dx, y * factor + dy)[c];
        }
        out.at(x, y)[c] = static_cast<std::uint8_t>(sum * norm + 0.5f);
      }
    }
  }
  return out;
}

// Bilinear resize to (width, height); channels unchanged.
inline Image resize(const Image& image, int width, int height) {
  Image out(width, height, image.channels);
  const float sx = static_cast<float>(image.width) / width, sy = static_cast<float>(image.height) / height;
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      for (int c = 0; c < image.channels; ++c) {
        const float v = sample_bilinear(image, (x + 0.5f) * sx, (y + 0.5f) * sy, c, 0.0f);
        out.at(x, y)[c] = static_cast<std::uint8_t>(std::clamp(v, 0.0f, 255.0f) + 0.5f);
      }
    }
  }
  return out;
}

// Tiles equally sized RGB images into a grid of `columns` columns, each scaled to
// `tile` x `tile` pixels, row by row (the synthetic-data contact sheet).
inline Image contact_sheet(const std::vector<Image>& images, int columns, int tile) {
  if (images.empty() || columns < 1 || tile < 1) throw ValueError("contact_sheet: nothing to tile");
  const int rows = (static_cast<int>(images.size()) + columns - 1) / columns;
  Image sheet(columns * tile, rows * tile, 3);
  for (std::size_t i = 0; i < images.size(); ++i) {
    if (images[i].channels != 3) throw ValueError("contact_sheet: images must be RGB");
    const Image thumb = resize(images[i], tile, tile);
    const int left = static_cast<int>(i % columns) * tile, top = static_cast<int>(i / columns) * tile;
    for (int y = 0; y < tile; ++y) {
      std::copy_n(thumb.at(0, y), tile * 3, sheet.at(left, top + y));
    }
  }
  return sheet;
}

}  // namespace metro::render
