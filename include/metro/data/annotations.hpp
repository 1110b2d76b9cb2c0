#pragma once
// The annotation file of a METRO dataset (DIR/annotations.bin): a versioned,
// little-endian binary file of fixed-size records, one per sample. The format is
// documented in docs/data.md. Readers validate the header, the counts against the
// file size (before allocating anything), and every value of a record they read,
// and throw metro::FormatError(path, reason) on any inconsistency.
#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "metro/core/error.hpp"

namespace metro::data {

inline constexpr char kAnnotationMagic[8] = {'M', 'E', 'T', 'R', 'O', 'S', 'Y', 'N'};
inline constexpr std::uint32_t kAnnotationVersion = 1;
inline constexpr std::size_t kHeaderBytes = 8 + 7 * 4;  // magic, version, 5 counts, reserved
inline constexpr std::size_t kImageNameBytes = 128;      // NUL-padded UTF-8, relative to DIR/images/

// Sanity caps on the header's counts (far above any real dataset).
inline constexpr std::uint32_t kMaxSamples = 100'000'000;
inline constexpr std::uint32_t kMaxJoints = 256;
inline constexpr std::uint32_t kMaxVertices = 1'000'000;
inline constexpr std::uint32_t kMaxShapeParams = 1024;
inline constexpr std::uint32_t kMaxPoseParams = 4096;

struct AnnotationHeader {
  std::uint32_t num_samples = 0;
  std::uint32_t num_joints = 0;
  std::uint32_t num_vertices = 0;      // full mesh; 0 when the dataset has no meshes
  std::uint32_t num_shape_params = 0;
  std::uint32_t num_pose_params = 0;   // floats (e.g. 3 per skeleton joint, axis-angle)

  // Bytes of one sample record.
  std::uint64_t record_bytes() const noexcept {
    const std::uint64_t floats = 3 + 3ull * num_joints + 4ull * num_joints + 3ull * num_vertices + 4 +
                                 num_shape_params + num_pose_params;
    return kImageNameBytes + 4 * floats + 4;
  }
  std::uint64_t file_bytes() const noexcept { return kHeaderBytes + num_samples * record_bytes(); }
};

// One sample's labels. Coordinates: pixels of the stored image (x right, y down;
// pixel i covers [i, i+1)); metres in the camera frame (x right, y down, z forward).
struct SampleAnnotation {
  std::string image_name;             // file under DIR/images/
  std::array<float, 2> center{};      // person box center, pixels
  float scale = 1;                    // person box side = scale * 200 pixels (official convention)
  std::vector<float> joints_2d;       // (J, 3): x, y pixels, visibility in {0, 1}
  std::vector<float> joints_3d;       // (J, 4): x, y, z metres, confidence in [0, 1]
  std::vector<float> vertices;        // (V, 3): metres
  std::array<float, 4> intrinsics{};  // fx, fy, cx, cy in pixels of the stored image
  std::vector<float> shape;           // (num_shape_params)
  std::vector<float> pose;            // (num_pose_params)
  bool has_2d = false, has_3d = false, has_mesh = false;
};

namespace detail {

// Little-endian encoding whatever the host byte order.
inline void put_u32(std::vector<std::uint8_t>& out, std::uint32_t value) {
  for (int shift = 0; shift < 32; shift += 8) out.push_back(static_cast<std::uint8_t>(value >> shift));
}
inline void put_floats(std::vector<std::uint8_t>& out, const float* values, std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) put_u32(out, std::bit_cast<std::uint32_t>(values[i]));
}

// Reads little-endian values from a byte span; the caller checked the length.
struct ByteCursor {
  const std::uint8_t* data;
  std::size_t pos = 0;
  std::uint32_t u32() noexcept {
    std::uint32_t value = 0;
    for (int k = 0; k < 4; ++k) value |= static_cast<std::uint32_t>(data[pos + k]) << (8 * k);
    pos += 4;
    return value;
  }
  float f32() noexcept { return std::bit_cast<float>(u32()); }
  void floats(float* out, std::size_t count) noexcept {
    for (std::size_t i = 0; i < count; ++i) out[i] = f32();
  }
};

}  // namespace detail

inline std::vector<std::uint8_t> encode_header(const AnnotationHeader& header) {
  std::vector<std::uint8_t> out(kAnnotationMagic, kAnnotationMagic + 8);
  for (std::uint32_t value : {kAnnotationVersion, header.num_samples, header.num_joints, header.num_vertices,
                              header.num_shape_params, header.num_pose_params, 0u}) {
    detail::put_u32(out, value);
  }
  return out;
}

// Encodes one record; throws ValueError when the sample does not match the header.
inline std::vector<std::uint8_t> encode_record(const AnnotationHeader& header, const SampleAnnotation& sample) {
  const std::size_t joints = header.num_joints;
  if (sample.image_name.empty() || sample.image_name.size() >= kImageNameBytes ||
      sample.joints_2d.size() != 3 * joints || sample.joints_3d.size() != 4 * joints ||
      sample.vertices.size() != 3ull * header.num_vertices || sample.shape.size() != header.num_shape_params ||
      sample.pose.size() != header.num_pose_params) {
    throw ValueError("encode_record: sample '" + sample.image_name + "' does not match the header counts");
  }
  std::vector<std::uint8_t> out(kImageNameBytes, 0);
  out.reserve(header.record_bytes());
  std::memcpy(out.data(), sample.image_name.data(), sample.image_name.size());
  detail::put_floats(out, sample.center.data(), 2);
  detail::put_floats(out, &sample.scale, 1);
  detail::put_floats(out, sample.joints_2d.data(), sample.joints_2d.size());
  detail::put_floats(out, sample.joints_3d.data(), sample.joints_3d.size());
  detail::put_floats(out, sample.vertices.data(), sample.vertices.size());
  detail::put_floats(out, sample.intrinsics.data(), 4);
  detail::put_floats(out, sample.shape.data(), sample.shape.size());
  detail::put_floats(out, sample.pose.data(), sample.pose.size());
  for (bool flag : {sample.has_2d, sample.has_3d, sample.has_mesh, false}) out.push_back(flag ? 1 : 0);
  return out;
}

// Writes a whole annotation file in one go.
inline void write_annotations(const std::string& path, AnnotationHeader header,
                              const std::vector<SampleAnnotation>& samples) {
  header.num_samples = static_cast<std::uint32_t>(samples.size());
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  if (!file) throw IOError(path, "cannot open for writing");
  const std::vector<std::uint8_t> head = encode_header(header);
  file.write(reinterpret_cast<const char*>(head.data()), static_cast<std::streamsize>(head.size()));
  for (const SampleAnnotation& sample : samples) {
    const std::vector<std::uint8_t> record = encode_record(header, sample);
    file.write(reinterpret_cast<const char*>(record.data()), static_cast<std::streamsize>(record.size()));
  }
  if (!file) throw IOError(path, "write failed");
}

// Parses and validates the 36-byte header against the file's size.
inline AnnotationHeader decode_header(const std::string& path, const std::uint8_t* bytes, std::uint64_t file_size) {
  if (file_size < kHeaderBytes) throw FormatError(path, "file too short for the header");
  if (std::memcmp(bytes, kAnnotationMagic, 8) != 0) throw FormatError(path, "bad magic (not a METROSYN file)");
  detail::ByteCursor cursor{bytes, 8};
  const std::uint32_t version = cursor.u32();
  if (version != kAnnotationVersion) throw FormatError(path, "unsupported version " + std::to_string(version));
  AnnotationHeader header;
  header.num_samples = cursor.u32();
  header.num_joints = cursor.u32();
  header.num_vertices = cursor.u32();
  header.num_shape_params = cursor.u32();
  header.num_pose_params = cursor.u32();
  if (cursor.u32() != 0) throw FormatError(path, "reserved header field is not 0");
  if (header.num_samples > kMaxSamples || header.num_joints == 0 || header.num_joints > kMaxJoints ||
      header.num_vertices > kMaxVertices || header.num_shape_params > kMaxShapeParams ||
      header.num_pose_params > kMaxPoseParams) {
    throw FormatError(path, "header counts out of range");
  }
  if (header.file_bytes() != file_size) {
    throw FormatError(path, "file size " + std::to_string(file_size) + " does not match the header (" +
                                std::to_string(header.file_bytes()) + " bytes expected; truncated or wrong counts)");
  }
  return header;
}

namespace detail {

inline void require_finite(const std::string& where, const std::vector<float>& values, const char* field) {
  for (float v : values) {
    if (!std::isfinite(v)) throw FormatError(where, std::string("non-finite value in ") + field);
  }
}

// Stored image names are relative paths inside DIR/images/: no "..", no absolute paths.
inline bool is_safe_image_name(const std::string& name) {
  if (name.empty() || name.front() == '/' || name.find('\\') != std::string::npos) return false;
  std::size_t start = 0;
  while (start <= name.size()) {
    const std::size_t end = std::min(name.find('/', start), name.size());
    if (name.compare(start, end - start, "..") == 0 && end - start == 2) return false;
    start = end + 1;
  }
  return true;
}

inline void validate_sample(const std::string& where, const SampleAnnotation& s) {
  require_finite(where, s.joints_2d, "joints_2d");
  require_finite(where, s.joints_3d, "joints_3d");
  require_finite(where, s.vertices, "vertices");
  require_finite(where, s.shape, "shape");
  require_finite(where, s.pose, "pose");
  require_finite(where, {s.center[0], s.center[1], s.scale, s.intrinsics[0], s.intrinsics[1], s.intrinsics[2],
                         s.intrinsics[3]}, "center/scale/intrinsics");
  if (!(s.scale > 0) || !(s.intrinsics[0] > 0) || !(s.intrinsics[1] > 0)) {
    throw FormatError(where, "scale and focal lengths must be positive");
  }
  for (std::size_t j = 0; j < s.joints_2d.size() / 3; ++j) {
    const float visibility = s.joints_2d[3 * j + 2], confidence = s.joints_3d[4 * j + 3];
    if (visibility < 0 || visibility > 1 || confidence < 0 || confidence > 1) {
      throw FormatError(where, "visibility/confidence outside [0, 1]");
    }
  }
}

}  // namespace detail

// Parses and validates one record (`bytes` holds header.record_bytes() bytes).
inline SampleAnnotation decode_record(const std::string& path, std::uint64_t index, const AnnotationHeader& header,
                                      const std::uint8_t* bytes) {
  const std::string where = path + " (sample " + std::to_string(index) + ")";
  SampleAnnotation s;
  const auto* name_end = static_cast<const std::uint8_t*>(std::memchr(bytes, 0, kImageNameBytes));
  if (name_end == nullptr) throw FormatError(where, "image name is not NUL-terminated");
  s.image_name.assign(reinterpret_cast<const char*>(bytes), reinterpret_cast<const char*>(name_end));
  if (!detail::is_safe_image_name(s.image_name)) throw FormatError(where, "bad image name '" + s.image_name + "'");
  detail::ByteCursor cursor{bytes, kImageNameBytes};
  cursor.floats(s.center.data(), 2);
  s.scale = cursor.f32();
  s.joints_2d.resize(3ull * header.num_joints), cursor.floats(s.joints_2d.data(), s.joints_2d.size());
  s.joints_3d.resize(4ull * header.num_joints), cursor.floats(s.joints_3d.data(), s.joints_3d.size());
  s.vertices.resize(3ull * header.num_vertices), cursor.floats(s.vertices.data(), s.vertices.size());
  cursor.floats(s.intrinsics.data(), 4);
  s.shape.resize(header.num_shape_params), cursor.floats(s.shape.data(), s.shape.size());
  s.pose.resize(header.num_pose_params), cursor.floats(s.pose.data(), s.pose.size());
  const std::uint8_t* flags = bytes + cursor.pos;
  if (flags[0] > 1 || flags[1] > 1 || flags[2] > 1 || flags[3] != 0) throw FormatError(where, "bad has_* flags");
  s.has_2d = flags[0], s.has_3d = flags[1], s.has_mesh = flags[2];
  if (s.has_mesh && header.num_vertices == 0) throw FormatError(where, "has_mesh set but the file has no vertices");
  detail::validate_sample(where, s);
  return s;
}

// Random access to the records of an annotation file. Not thread-safe: give
// each thread its own copy (copies reopen the file).
class AnnotationFile {
 public:
  explicit AnnotationFile(std::string path) : path_(std::move(path)) { open(); }
  AnnotationFile(const AnnotationFile& other) : path_(other.path_) { open(); }
  AnnotationFile& operator=(const AnnotationFile&) = delete;

  const std::string& path() const noexcept { return path_; }
  const AnnotationHeader& header() const noexcept { return header_; }
  std::size_t size() const noexcept { return header_.num_samples; }

  SampleAnnotation read(std::size_t index) {
    if (index >= size()) throw ValueError(path_ + ": sample index " + std::to_string(index) + " out of range");
    const std::uint64_t record = header_.record_bytes();
    record_buffer_.resize(record);
    file_.seekg(static_cast<std::streamoff>(kHeaderBytes + index * record));
    if (!file_.read(reinterpret_cast<char*>(record_buffer_.data()), static_cast<std::streamsize>(record))) {
      file_.clear();
      throw FormatError(path_, "read of sample " + std::to_string(index) + " failed (file changed?)");
    }
    return decode_record(path_, index, header_, record_buffer_.data());
  }

 private:
  void open() {
    file_.open(path_, std::ios::binary | std::ios::ate);
    if (!file_) throw IOError(path_, "cannot open annotation file");
    const std::streamoff size = file_.tellg();
    if (size < 0) throw IOError(path_, "cannot determine file size");
    std::uint8_t head[kHeaderBytes] = {};
    file_.seekg(0);
    file_.read(reinterpret_cast<char*>(head), static_cast<std::streamsize>(std::min<std::streamoff>(size, kHeaderBytes)));
    file_.clear();
    header_ = decode_header(path_, head, static_cast<std::uint64_t>(size));
  }

  std::string path_;
  std::ifstream file_;
  AnnotationHeader header_;
  std::vector<std::uint8_t> record_buffer_;
};

// Reads and validates every record (small datasets, tests, conversion checks).
inline std::vector<SampleAnnotation> read_annotations(const std::string& path) {
  AnnotationFile file(path);
  std::vector<SampleAnnotation> samples;
  samples.reserve(file.size());
  for (std::size_t i = 0; i < file.size(); ++i) samples.push_back(file.read(i));
  return samples;
}

}  // namespace metro::data
