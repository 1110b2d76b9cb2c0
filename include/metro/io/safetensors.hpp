#pragma once
// safetensors checkpoints as neutral records (no dependency on metro::Tensor).
//
// Layout: u64 little-endian header length N | N bytes of JSON header | data.
// Header: {"__metadata__": {"k": "v"}, "name": {"dtype": "F32", "shape": [2, 3],
//          "data_offsets": [begin, end]}, ...}; offsets are relative to the data section.
// Files written here load in Python's safetensors / torch; the reader validates
// everything before it allocates, so a hostile file yields a FormatError, never a crash.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "metro/core/error.hpp"
#include "metro/io/json.hpp"

namespace metro::io {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

enum class DType { f32, f64, i64, i32, u8 };

inline std::size_t dtype_size(DType d) noexcept {
  switch (d) {
    case DType::f32: return 4;
    case DType::f64: return 8;
    case DType::i64: return 8;
    case DType::i32: return 4;
    case DType::u8: return 1;
  }
  return 0;
}

inline const char* dtype_name(DType d) noexcept {
  switch (d) {
    case DType::f32: return "F32";
    case DType::f64: return "F64";
    case DType::i64: return "I64";
    case DType::i32: return "I32";
    case DType::u8: return "U8";
  }
  return "?";
}

template <class T> inline constexpr bool is_dtype_v = false;
template <> inline constexpr bool is_dtype_v<float> = true;
template <> inline constexpr bool is_dtype_v<double> = true;
template <> inline constexpr bool is_dtype_v<std::int64_t> = true;
template <> inline constexpr bool is_dtype_v<std::int32_t> = true;
template <> inline constexpr bool is_dtype_v<std::uint8_t> = true;

template <class T>
  requires is_dtype_v<T>
constexpr DType dtype_of() noexcept {
  if constexpr (std::is_same_v<T, float>) return DType::f32;
  else if constexpr (std::is_same_v<T, double>) return DType::f64;
  else if constexpr (std::is_same_v<T, std::int64_t>) return DType::i64;
  else if constexpr (std::is_same_v<T, std::int32_t>) return DType::i32;
  else return DType::u8;
}

// One tensor: data holds numel(shape) * dtype_size(dtype) bytes, row-major, little-endian.
struct TensorRecord {
  DType dtype = DType::f32;
  std::vector<std::int64_t> shape;
  std::vector<std::byte> data;
};

struct SafeTensorsFile {
  std::map<std::string, TensorRecord> tensors;
  std::map<std::string, std::string> metadata;
};

// Product of the dims; ValueError on a negative dim or an overflow of int64.
inline std::int64_t shape_numel(std::span<const std::int64_t> shape) {
  std::int64_t numel = 1;
  for (std::int64_t dim : shape) {
    if (dim < 0) throw ValueError("safetensors: negative dimension " + std::to_string(dim));
    if (__builtin_mul_overflow(numel, dim, &numel)) throw ValueError("safetensors: shape product overflows int64");
  }
  return numel;
}

template <class T>
  requires is_dtype_v<T>
TensorRecord make_record(std::vector<std::int64_t> shape, std::span<const T> values) {
  const std::int64_t numel = shape_numel(shape);
  if (static_cast<std::size_t>(numel) != values.size())
    throw ShapeError("make_record: shape holds " + std::to_string(numel) + " elements, got " +
                     std::to_string(values.size()));
  TensorRecord record{dtype_of<T>(), std::move(shape), std::vector<std::byte>(values.size_bytes())};
  if (!values.empty()) std::memcpy(record.data.data(), values.data(), values.size_bytes());
  return record;
}

template <class T>
  requires is_dtype_v<T>
TensorRecord make_record(std::vector<std::int64_t> shape, const std::vector<T>& values) {
  return make_record<T>(std::move(shape), std::span<const T>(values));
}

// The values of `record` (named `name` in messages); ValueError if its dtype is not T.
template <class T>
  requires is_dtype_v<T>
std::vector<T> record_to_vector(const TensorRecord& record, const std::string& name) {
  if (record.dtype != dtype_of<T>())
    throw ValueError("safetensors: tensor \"" + name + "\" has dtype " + dtype_name(record.dtype) + ", expected " +
                     dtype_name(dtype_of<T>()));
  const std::int64_t numel = shape_numel(record.shape);
  if (record.data.size() != static_cast<std::size_t>(numel) * sizeof(T))
    throw ValueError("safetensors: tensor \"" + name + "\" holds " + std::to_string(record.data.size()) +
                     " bytes, its shape needs " + std::to_string(numel * static_cast<std::int64_t>(sizeof(T))));
  std::vector<T> values(static_cast<std::size_t>(numel));
  if (numel > 0) std::memcpy(values.data(), record.data.data(), record.data.size());
  return values;
}

// The reference implementation refuses headers above 100 MB; so do we.
inline constexpr std::uint64_t max_header_bytes = 100'000'000;

namespace detail {

// ---------------------------------------------------------------- writing

// Data layout: largest element size first, then by name, so every tensor starts at a
// multiple of its element size (the data section starts at a multiple of 8).
inline std::vector<const std::pair<const std::string, TensorRecord>*> data_order(const SafeTensorsFile& file) {
  std::vector<const std::pair<const std::string, TensorRecord>*> order;
  for (const auto& entry : file.tensors) order.push_back(&entry);
  std::stable_sort(order.begin(), order.end(), [](const auto* a, const auto* b) {
    return dtype_size(a->second.dtype) > dtype_size(b->second.dtype);
  });
  return order;
}

inline void check_record_for_writing(const std::string& name, const TensorRecord& record) {
  if (name == "__metadata__") throw ValueError("safetensors: \"__metadata__\" is reserved, not a tensor name");
  const std::int64_t numel = shape_numel(record.shape);
  if (record.data.size() != static_cast<std::size_t>(numel) * dtype_size(record.dtype))
    throw ValueError("safetensors: tensor \"" + name + "\" holds " + std::to_string(record.data.size()) +
                     " bytes, its shape needs " + std::to_string(static_cast<std::size_t>(numel) * dtype_size(record.dtype)));
}

// The JSON header (metadata first, tensors sorted by name) padded with spaces to a multiple of 8.
inline std::string build_header(const SafeTensorsFile& file) {
  std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> offsets;
  std::uint64_t cursor = 0;
  for (const auto* entry : data_order(file)) {
    check_record_for_writing(entry->first, entry->second);
    offsets[entry->first] = {cursor, cursor + entry->second.data.size()};
    cursor += entry->second.data.size();
  }
  json::Value header{json::Object{}};
  if (!file.metadata.empty()) {
    json::Value metadata{json::Object{}};
    for (const auto& [key, value] : file.metadata) metadata.insert(key, value);
    header.insert("__metadata__", std::move(metadata));
  }
  for (const auto& [name, record] : file.tensors) {
    json::Array shape(record.shape.begin(), record.shape.end());
    const auto [begin, end] = offsets.at(name);
    json::Array range{json::Value(static_cast<std::int64_t>(begin)), json::Value(static_cast<std::int64_t>(end))};
    header.insert(name, json::Object{{"dtype", dtype_name(record.dtype)}, {"shape", std::move(shape)},
                                     {"data_offsets", std::move(range)}});
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

class FileWriter {
 public:
  explicit FileWriter(const std::string& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) fail("cannot create");
  }
  ~FileWriter() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileWriter(const FileWriter&) = delete;
  FileWriter& operator=(const FileWriter&) = delete;

  void write(const void* bytes, std::size_t count) {
    const char* p = static_cast<const char*>(bytes);
    while (count > 0) {
      const ssize_t written = ::write(fd_, p, count);
      if (written < 0 && errno == EINTR) continue;
      if (written <= 0) fail("write failed");
      p += written;
      count -= static_cast<std::size_t>(written);
    }
  }
  // fsync then close, so the bytes are on disk before the rename makes them visible.
  void sync_and_close() {
    if (::fsync(fd_) != 0) fail("fsync failed");
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) fail("close failed");
  }

 private:
  [[noreturn]] void fail(const char* what) const { throw IOError(path_, std::string(what) + ": " + std::strerror(errno)); }
  std::string path_;
  int fd_ = -1;
};

inline void write_file_contents(const std::string& path, const SafeTensorsFile& file, const std::string& header) {
  FileWriter out(path);
  const std::uint64_t header_length = header.size();
  out.write(&header_length, sizeof(header_length));
  out.write(header.data(), header.size());
  for (const auto* entry : data_order(file)) out.write(entry->second.data.data(), entry->second.data.size());
  out.sync_and_close();
}

// Makes the rename itself durable; failure here loses nothing already written, so it is ignored.
inline void sync_parent_directory(const std::string& path) {
  const std::size_t slash = path.find_last_of('/');
  const std::string directory = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

// ---------------------------------------------------------------- reading

// Random access to the bytes of a file or of a buffer, with a known total size.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual std::uint64_t size() const = 0;
  // Copies bytes [offset, offset + count) into out; the caller has checked the range.
  virtual void read(std::uint64_t offset, std::size_t count, void* out) = 0;
};

class MemorySource final : public ByteSource {
 public:
  explicit MemorySource(std::span<const std::byte> bytes) : bytes_(bytes) {}
  std::uint64_t size() const override { return bytes_.size(); }
  void read(std::uint64_t offset, std::size_t count, void* out) override {
    if (count > 0) std::memcpy(out, bytes_.data() + offset, count);
  }

 private:
  std::span<const std::byte> bytes_;
};

class FileSource final : public ByteSource {
 public:
  explicit FileSource(const std::string& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw IOError(path, std::string("cannot open: ") + std::strerror(errno));
    struct stat info {};
    if (::fstat(fd_, &info) != 0 || !S_ISREG(info.st_mode)) {
      ::close(fd_);
      throw IOError(path, "not a regular file");
    }
    size_ = static_cast<std::uint64_t>(info.st_size);
  }
  ~FileSource() override { ::close(fd_); }
  FileSource(const FileSource&) = delete;
  FileSource& operator=(const FileSource&) = delete;

  std::uint64_t size() const override { return size_; }
  void read(std::uint64_t offset, std::size_t count, void* out) override {
    char* p = static_cast<char*>(out);
    while (count > 0) {
      const ssize_t got = ::pread(fd_, p, count, static_cast<off_t>(offset));
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) throw IOError(path_, std::string("read failed: ") + std::strerror(errno));
      if (got == 0) throw FormatError(path_, "file shrank while reading");
      p += got;
      offset += static_cast<std::uint64_t>(got);
      count -= static_cast<std::size_t>(got);
    }
  }

 private:
  std::string path_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
};

// A header entry after validation: where its bytes lie in the data section.
struct TensorEntry {
  std::string name;
  TensorRecord record;  // data not yet read
  std::uint64_t begin = 0, end = 0;
};

class HeaderValidator {
 public:
  HeaderValidator(const std::string& source, std::uint64_t data_size) : source_(source), data_size_(data_size) {}

  void check_is_object(const json::Value& header) const {
    if (!header.is_object()) fail("header is not a JSON object");
  }

  std::vector<TensorEntry> tensors(const json::Value& header) const {
    std::vector<TensorEntry> entries;
    for (const auto& [name, info] : header.as_object())
      if (name != "__metadata__") entries.push_back(tensor(name, info));
    check_layout(entries);
    return entries;
  }

  std::map<std::string, std::string> metadata(const json::Value& header) const {
    std::map<std::string, std::string> out;
    const json::Value* metadata = header.find("__metadata__");
    if (metadata == nullptr) return out;
    if (!metadata->is_object()) fail("__metadata__ is not an object");
    for (const auto& [key, value] : metadata->as_object()) {
      if (!value.is_string()) fail("__metadata__ value of \"" + key + "\" is not a string");
      out[key] = value.as_string();
    }
    return out;
  }

 private:
  [[noreturn]] void fail(const std::string& reason) const { throw FormatError(source_, "safetensors: " + reason); }

  const json::Value& member(const std::string& name, const json::Value& info, const char* key) const {
    const json::Value* value = info.find(key);
    if (value == nullptr) fail("tensor \"" + name + "\" has no " + key);
    return *value;
  }

  DType parse_dtype(const std::string& name, const json::Value& value) const {
    if (!value.is_string()) fail("tensor \"" + name + "\": dtype is not a string");
    for (DType d : {DType::f32, DType::f64, DType::i64, DType::i32, DType::u8})
      if (value.as_string() == dtype_name(d)) return d;
    fail("tensor \"" + name + "\": unsupported dtype \"" + value.as_string() + "\" (supported: F32, F64, I64, I32, U8)");
  }

  // A non-negative integer within int64; `what` names it in the message.
  std::int64_t parse_count(const std::string& name, const json::Value& value, const std::string& what) const {
    if (!value.is_int64())
      fail("tensor \"" + name + "\": " + what + " is not an integer");
    const std::int64_t n = value.as_int64();
    if (n < 0) fail("tensor \"" + name + "\": " + what + " is negative (" + std::to_string(n) + ")");
    return n;
  }

  std::vector<std::int64_t> parse_shape(const std::string& name, const json::Value& value) const {
    if (!value.is_array()) fail("tensor \"" + name + "\": shape is not an array");
    std::vector<std::int64_t> shape;
    for (const json::Value& dim : value.as_array()) shape.push_back(parse_count(name, dim, "shape dimension"));
    return shape;
  }

  TensorEntry tensor(const std::string& name, const json::Value& info) const {
    if (!info.is_object()) fail("tensor \"" + name + "\": entry is not an object");
    TensorEntry entry{name, {}, 0, 0};
    entry.record.dtype = parse_dtype(name, member(name, info, "dtype"));
    entry.record.shape = parse_shape(name, member(name, info, "shape"));
    const json::Value& offsets = member(name, info, "data_offsets");
    if (!offsets.is_array() || offsets.as_array().size() != 2)
      fail("tensor \"" + name + "\": data_offsets is not an array of two integers");
    entry.begin = static_cast<std::uint64_t>(parse_count(name, offsets.at(0), "data_offsets begin"));
    entry.end = static_cast<std::uint64_t>(parse_count(name, offsets.at(1), "data_offsets end"));
    if (entry.begin > entry.end) fail("tensor \"" + name + "\": data_offsets begin > end");
    if (entry.end > data_size_)
      fail("tensor \"" + name + "\": data_offsets end " + std::to_string(entry.end) + " is past the data section (" +
           std::to_string(data_size_) + " bytes)");
    check_byte_length(entry);
    return entry;
  }

  void check_byte_length(const TensorEntry& entry) const {
    std::int64_t numel = 1;
    std::uint64_t bytes = 0;
    for (std::int64_t dim : entry.record.shape)
      if (__builtin_mul_overflow(numel, dim, &numel)) fail("tensor \"" + entry.name + "\": shape product overflows");
    if (__builtin_mul_overflow(static_cast<std::uint64_t>(numel), dtype_size(entry.record.dtype), &bytes))
      fail("tensor \"" + entry.name + "\": shape product overflows");
    if (bytes != entry.end - entry.begin)
      fail("tensor \"" + entry.name + "\": byte length " + std::to_string(entry.end - entry.begin) +
           " does not match shape and dtype (" + std::to_string(bytes) + " bytes)");
  }

  // Tensors must tile the data section exactly: no overlap, no gap, no trailing bytes
  // (the reference implementation rejects the same files).
  void check_layout(std::vector<TensorEntry>& entries) const {
    std::sort(entries.begin(), entries.end(), [](const TensorEntry& a, const TensorEntry& b) {
      return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    std::uint64_t cursor = 0;
    for (const TensorEntry& entry : entries) {
      if (entry.begin < cursor) fail("tensor \"" + entry.name + "\" overlaps another tensor");
      if (entry.begin > cursor) fail("gap of unused bytes before tensor \"" + entry.name + "\"");
      cursor = entry.end;
    }
    if (cursor != data_size_)
      fail("data section has " + std::to_string(data_size_ - cursor) + " trailing bytes not owned by any tensor");
  }

  const std::string& source_;
  std::uint64_t data_size_;
};

inline SafeTensorsFile read_safetensors(ByteSource& source, const std::string& name) {
  const std::uint64_t file_size = source.size();
  if (file_size < 8) throw FormatError(name, "safetensors: file is " + std::to_string(file_size) + " bytes, shorter than the 8-byte header length");
  std::uint64_t header_length = 0;
  source.read(0, 8, &header_length);
  if (header_length > max_header_bytes)
    throw FormatError(name, "safetensors: header length " + std::to_string(header_length) + " exceeds the 100 MB cap");
  if (header_length > file_size - 8)
    throw FormatError(name, "safetensors: header length " + std::to_string(header_length) + " is larger than the file (" +
                                std::to_string(file_size) + " bytes)");
  std::string text(static_cast<std::size_t>(header_length), '\0');
  source.read(8, text.size(), text.data());
  const json::Value header = json::parse(text, name);
  const HeaderValidator validator(name, file_size - 8 - header_length);
  validator.check_is_object(header);
  SafeTensorsFile file;
  file.metadata = validator.metadata(header);
  for (TensorEntry& entry : validator.tensors(header)) {
    entry.record.data.resize(entry.end - entry.begin);  // bounded by the file size, checked above
    source.read(8 + header_length + entry.begin, entry.record.data.size(), entry.record.data.data());
    file.tensors.emplace(std::move(entry.name), std::move(entry.record));
  }
  return file;
}

}  // namespace detail

// Writes `file` atomically: path.tmp.<pid> is written, fsynced and renamed over path,
// so a crash leaves either the old file or the new one. IOError on failure.
inline void save_safetensors(const std::string& path, const SafeTensorsFile& file) {
  const std::string header = detail::build_header(file);
  const std::string temporary = path + ".tmp." + std::to_string(::getpid());
  try {
    detail::write_file_contents(temporary, file, header);
  } catch (...) {
    std::remove(temporary.c_str());
    throw;
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    std::remove(temporary.c_str());
    throw IOError(path, "cannot rename " + temporary + " over it: " + reason);
  }
  detail::sync_parent_directory(path);
}

// Loads and fully validates a checkpoint; FormatError(path, reason) on any inconsistency.
inline SafeTensorsFile load_safetensors(const std::string& path) {
  detail::FileSource source(path);
  return detail::read_safetensors(source, path);
}

// The same validation on bytes already in memory (used by the fuzzer); `source_name` goes into messages.
inline SafeTensorsFile parse_safetensors(std::span<const std::byte> bytes, const std::string& source_name) {
  detail::MemorySource source(bytes);
  return detail::read_safetensors(source, source_name);
}

}  // namespace metro::io
