#pragma once
// PNG/JPEG reading and PNG writing through stb_image / stb_image_write.
// The stb implementations are compiled `static` into every translation unit that
// includes this header, so the header works in any number of them. Bad files
// throw metro::IOError (cannot open/read/write) or metro::FormatError (not a
// decodable image, empty, too large, unsupported channel count); never crash.
#include <algorithm>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "metro/core/error.hpp"
#include "metro/render/image.hpp"

#pragma GCC diagnostic push
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wunknown-warning-option"
#endif
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#ifndef STB_IMAGE_STATIC
#define STB_IMAGE_STATIC
#endif
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_NO_STDIO
#include <stb_image.h>
#ifndef STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_STATIC
#endif
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO
#include <stb_image_write.h>
#undef STB_IMAGE_IMPLEMENTATION
#undef STB_IMAGE_WRITE_IMPLEMENTATION
#pragma GCC diagnostic pop

namespace metro::data {

using render::Image;

// Limits on what read_image accepts (checked from the header, before decoding).
inline constexpr int kMaxImageSide = 16384;
inline constexpr std::int64_t kMaxImagePixels = std::int64_t{256} << 20;  // 256 MPixel
inline constexpr std::int64_t kMaxImageFileBytes = std::int64_t{1} << 30;

inline std::vector<std::uint8_t> read_file_bytes(const std::string& path) {
  std::ifstream file(path, std::ios::binary | std::ios::ate);
  if (!file) throw IOError(path, "cannot open file");
  const std::streamoff size = file.tellg();
  if (size < 0) throw IOError(path, "cannot determine file size");
  if (size > kMaxImageFileBytes) throw FormatError(path, "file larger than 1 GiB");
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(size));
  file.seekg(0);
  if (!file.read(reinterpret_cast<char*>(bytes.data()), size)) throw IOError(path, "read failed");
  return bytes;
}

// Decodes a PNG or JPEG file into an 8-bit image. `channels` = 0 keeps the
// file's channel count (1..4); 1, 3 or 4 converts.
inline Image read_image(const std::string& path, int channels = 3) {
  if (channels < 0 || channels > 4) throw ValueError("read_image: channels must be 0..4");
  const std::vector<std::uint8_t> bytes = read_file_bytes(path);
  if (bytes.empty()) throw FormatError(path, "empty file");
  const int length = static_cast<int>(bytes.size());
  int width = 0, height = 0, file_channels = 0;
  if (!stbi_info_from_memory(bytes.data(), length, &width, &height, &file_channels)) {
    throw FormatError(path, std::string("not a PNG/JPEG image: ") + stbi_failure_reason());
  }
  if (width <= 0 || height <= 0) throw FormatError(path, "zero image size");
  if (width > kMaxImageSide || height > kMaxImageSide ||
      static_cast<std::int64_t>(width) * height > kMaxImagePixels) {
    throw FormatError(path, "image too large: " + std::to_string(width) + "x" + std::to_string(height));
  }
  if (file_channels < 1 || file_channels > 4) {
    throw FormatError(path, "unsupported channel count " + std::to_string(file_channels));
  }
  const int wanted = channels == 0 ? file_channels : channels;
  int w = 0, h = 0, n = 0;
  std::uint8_t* decoded = stbi_load_from_memory(bytes.data(), length, &w, &h, &n, wanted);
  if (decoded == nullptr) throw FormatError(path, std::string("decode failed: ") + stbi_failure_reason());
  if (w != width || h != height) {
    stbi_image_free(decoded);
    throw FormatError(path, "decoded size differs from the header");
  }
  Image image(w, h, wanted);
  std::copy_n(decoded, image.pixels.size(), image.pixels.begin());
  stbi_image_free(decoded);
  return image;
}

// zlib effort of the PNG writer (stb default 8; 1-3 is much faster and the files
// are a bit larger). It is a global of stb_image_write: set it before starting
// threads that write PNGs.
inline void set_png_compression_level(int level) { stbi_write_png_compression_level = level; }
// PNG row filter: -1 tries all five per row (stb default); 0 (none) is about
// 1.5x faster and, on the synthetic images, also smaller. Same caveat as above.
inline void set_png_filter(int filter) { stbi_write_force_png_filter = filter; }

// Encodes an image (1..4 channels) as PNG bytes.
inline std::vector<std::uint8_t> encode_png(const Image& image) {
  if (image.empty() || static_cast<std::size_t>(image.width) * image.height * image.channels != image.pixels.size()) {
    throw ValueError("encode_png: inconsistent image");
  }
  std::vector<std::uint8_t> bytes;
  auto append = [](void* context, void* data, int size) {
    auto* out = static_cast<std::vector<std::uint8_t>*>(context);
    const auto* begin = static_cast<const std::uint8_t*>(data);
    out->insert(out->end(), begin, begin + size);
  };
  if (!stbi_write_png_to_func(append, &bytes, image.width, image.height, image.channels, image.pixels.data(),
                              image.width * image.channels)) {
    throw ValueError("encode_png: stb_image_write failed");
  }
  return bytes;
}

inline void write_file_bytes(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  if (!file) throw IOError(path, "cannot open for writing");
  file.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!file) throw IOError(path, "write failed");
}

inline void write_png(const std::string& path, const Image& image) { write_file_bytes(path, encode_png(image)); }

}  // namespace metro::data
