#pragma once
// A body model in one file: what training, evaluation and inference take from a
// body model (a MeshHierarchy), stored as safetensors, so that a real template
// mesh with its sampling matrices and joint regressor (SMPL's, MANO's) can replace
// the procedural body: metro_train --body FILE. docs/data.md tells how to write
// one from the official METRO files.
//
//   template_joints     F32 (J, 3)      rest joints    } camera orientation (x right, y down,
//   template_vertices   F32 (V_c, 3)    rest vertices  } z forward), pelvis at the origin
//   joint_regressor     F32 (J, V_f)    dense
//   faces               I32 (F, 3)      triangles of the full mesh
//   joint_symmetry      I32 (J)         mirror joint of each joint    } used by flip
//   vertex_symmetry     I32 (V_f)       mirror vertex of each vertex  } augmentation
//   full_to_mid (V_m, V_f), mid_to_coarse (V_c, V_m)     downsampling  } sparse, each as scipy's
//   coarse_to_mid (V_m, V_c), mid_to_full (V_f, V_m)     upsampling    } CSR arrays: NAME.shape I64 (2),
//                                 NAME.indptr I32 (rows + 1), NAME.indices I32 (nnz), NAME.data F32 (nnz)
//
// J is 14: the evaluation joints in LSP order (eval/metrics.hpp). The trainer's
// checkpoints carry the body they were trained on (checkpoint_body_tensors), so
// only the first training run needs the file.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "metro/eval/metrics.hpp"
#include "metro/io/safetensors.hpp"
#include "metro/train/targets.hpp"

namespace metro::train {

namespace body_file_detail {

using SparseField = body::SparseRowMatrix MeshHierarchy::*;
inline constexpr std::pair<const char*, SparseField> kSparseFields[] = {{"full_to_mid", &MeshHierarchy::full_to_mid},
                                                                        {"mid_to_coarse", &MeshHierarchy::mid_to_coarse},
                                                                        {"coarse_to_mid", &MeshHierarchy::coarse_to_mid},
                                                                        {"mid_to_full", &MeshHierarchy::mid_to_full}};

inline void put_sparse(io::SafeTensorsFile& file, const std::string& name, const body::SparseRowMatrix& m) {
  std::vector<std::int32_t> indptr{0}, indices;
  std::vector<float> values;
  for (int r = 0; r < m.rows(); ++r) {
    indices.insert(indices.end(), m.row_columns(r).begin(), m.row_columns(r).end());
    values.insert(values.end(), m.row_values(r).begin(), m.row_values(r).end());
    indptr.push_back(static_cast<std::int32_t>(indices.size()));
  }
  const auto nnz = static_cast<std::int64_t>(values.size());
  file.tensors[name + ".shape"] = io::make_record<std::int64_t>({2}, std::vector<std::int64_t>{m.rows(), m.cols()});
  file.tensors[name + ".indptr"] = io::make_record<std::int32_t>({m.rows() + 1}, indptr);
  file.tensors[name + ".indices"] = io::make_record<std::int32_t>({nnz}, indices);
  file.tensors[name + ".data"] = io::make_record<float>({nnz}, values);
}

template <class T>
io::TensorRecord record_of(const Tensor<T>& t) {
  return io::make_record<T>(t.shape().to_vector(), t.to_vector());
}

// Reads the tensors of a body file, each checked against the dtype and the shape
// it must have (-1: any size, fixed by an earlier tensor); FormatError otherwise.
class Reader {
 public:
  Reader(io::SafeTensorsFile file, std::string path) : file_(std::move(file)), path_(std::move(path)) {}

  template <class T>
  std::vector<T> read(const std::string& name, std::vector<std::int64_t> shape) {
    const auto it = file_.tensors.find(name);
    if (it == file_.tensors.end()) fail("no tensor \"" + name + "\"");
    const io::TensorRecord& record = it->second;
    if (record.dtype != io::dtype_of<T>())
      fail("\"" + name + "\" has dtype " + io::dtype_name(record.dtype) + ", expected " + io::dtype_name(io::dtype_of<T>()));
    bool fits = record.shape.size() == shape.size();
    for (std::size_t d = 0; fits && d < shape.size(); ++d) fits = shape[d] < 0 || shape[d] == record.shape[d];
    if (!fits) fail("\"" + name + "\" has shape " + dims(record.shape) + ", expected " + dims(shape));
    last_shape_ = record.shape;
    return io::record_to_vector<T>(record, name);
  }
  const std::vector<std::int64_t>& last_shape() const { return last_shape_; }

  body::SparseRowMatrix sparse(const std::string& name, std::int64_t rows, std::int64_t cols) {
    const auto shape = read<std::int64_t>(name + ".shape", {2});
    if ((rows >= 0 && shape[0] != rows) || (cols >= 0 && shape[1] != cols) || shape[0] < 0 || shape[1] < 0 || shape[0] > kMaxSize || shape[1] > kMaxSize)
      fail("\"" + name + "\" is " + std::to_string(shape[0]) + " x " + std::to_string(shape[1]) + ", expected " + dims({rows, cols}));
    const auto indptr = read<std::int32_t>(name + ".indptr", {shape[0] + 1});
    const auto indices = read<std::int32_t>(name + ".indices", {-1});
    const auto values = read<float>(name + ".data", {static_cast<std::int64_t>(indices.size())});
    if (indptr.front() != 0 || indptr.back() != static_cast<std::int64_t>(indices.size()))
      fail("\"" + name + ".indptr\" must run from 0 to the number of entries (" + std::to_string(indices.size()) + ")");
    std::vector<body::SparseEntry> entries;
    for (std::int64_t r = 0; r < shape[0]; ++r) {
      const auto begin = indptr[static_cast<std::size_t>(r)], end = indptr[static_cast<std::size_t>(r) + 1];
      if (begin < 0 || end < begin || end > static_cast<std::int64_t>(indices.size())) fail("\"" + name + ".indptr\" is not a valid CSR row index");
      for (auto k = static_cast<std::size_t>(begin); k < static_cast<std::size_t>(end); ++k) {
        if (indices[k] < 0 || indices[k] >= shape[1]) fail("\"" + name + ".indices\" has column " + std::to_string(indices[k]) + " outside [0, " + std::to_string(shape[1]) + ")");
        finite(values[k], name + ".data");
        entries.push_back({static_cast<int>(r), indices[k], values[k]});
      }
    }
    return {static_cast<int>(shape[0]), static_cast<int>(shape[1]), std::move(entries)};
  }

  std::vector<float> finite_floats(const std::string& name, std::vector<std::int64_t> shape) {
    std::vector<float> values = read<float>(name, std::move(shape));
    for (float v : values) finite(v, name);
    return values;
  }

  // Every entry of an index tensor in [0, size).
  void check_indices(const std::vector<std::int32_t>& index, std::int64_t size, const std::string& name) {
    for (std::int32_t i : index)
      if (i < 0 || i >= size) fail("\"" + name + "\" has index " + std::to_string(i) + " outside [0, " + std::to_string(size) + ")");
  }

  // A mesh level's vertex count: at least 1, and small enough that the network's dense
  // (V_fine, V_coarse) upsampling weights stay below 2^28 entries (the paper's: 1.2e7).
  void check_level(const char* level, std::int64_t vertices, std::int64_t coarser) {
    if (vertices < 1 || vertices > kMaxSize) fail(std::string("the ") + level + " mesh has " + std::to_string(vertices) + " vertices");
    if (vertices * coarser > kMaxDense)
      fail(std::string("the ") + level + " mesh's upsampling would be a dense " + std::to_string(vertices) + " x " + std::to_string(coarser) +
           " matrix, over 2^28 entries");
  }

  [[noreturn]] void fail(const std::string& reason) const { throw FormatError(path_, "body file: " + reason); }

 private:
  static constexpr std::int64_t kMaxSize = 1 << 24;   // vertices; also keeps int indices exact
  static constexpr std::int64_t kMaxDense = 1 << 28;  // entries of one upsampling matrix

  void finite(float v, const std::string& name) const {
    if (!std::isfinite(v)) fail("\"" + name + "\" has a value that is not finite");
  }
  static std::string dims(const std::vector<std::int64_t>& shape) {
    std::string s = "(";
    for (std::size_t d = 0; d < shape.size(); ++d) s += (d ? ", " : "") + (shape[d] < 0 ? std::string("any") : std::to_string(shape[d]));
    return s + ")";
  }

  io::SafeTensorsFile file_;
  std::string path_;
  std::vector<std::int64_t> last_shape_;
};

}  // namespace body_file_detail

// The body as the tensors of a body file (the layout at the top of this header).
inline io::SafeTensorsFile to_safetensors(const MeshHierarchy& mesh) {
  using namespace body_file_detail;
  io::SafeTensorsFile file;
  file.metadata = {{"format", "metro-body"}, {"version", "1"}};
  file.tensors["template_joints"] = record_of(contiguous(mesh.template_joints));
  file.tensors["template_vertices"] = record_of(contiguous(mesh.template_vertices));
  file.tensors["joint_regressor"] = record_of(contiguous(mesh.regressor));
  std::vector<std::int32_t> faces;
  for (const Vec3i& f : mesh.faces) faces.insert(faces.end(), {f[0], f[1], f[2]});
  file.tensors["faces"] = io::make_record<std::int32_t>({static_cast<std::int64_t>(mesh.faces.size()), 3}, faces);
  file.tensors["joint_symmetry"] = io::make_record<std::int32_t>({static_cast<std::int64_t>(mesh.joint_symmetry.size())}, mesh.joint_symmetry);
  file.tensors["vertex_symmetry"] = io::make_record<std::int32_t>({static_cast<std::int64_t>(mesh.vertex_symmetry.size())}, mesh.vertex_symmetry);
  for (const auto& [name, field] : kSparseFields) put_sparse(file, name, mesh.*field);
  return file;
}

// Writes a body file (atomically, like checkpoints).
inline void save_body_file(const std::string& path, const MeshHierarchy& mesh) { io::save_safetensors(path, to_safetensors(mesh)); }

// The body in a loaded safetensors file (named `path` in errors); FormatError
// when a tensor is missing, has the wrong dtype or shape, or an index or value
// that cannot be right.
inline MeshHierarchy body_from_safetensors(io::SafeTensorsFile file, const std::string& path) {
  body_file_detail::Reader in(std::move(file), path);
  MeshHierarchy mesh{MeshHierarchy::Empty{}};
  const std::vector<float> regressor = in.finite_floats("joint_regressor", {-1, -1});
  const std::int64_t joints = in.last_shape()[0], full = in.last_shape()[1];
  if (joints != eval::num_joints)
    in.fail("\"joint_regressor\" has " + std::to_string(joints) + " joints; a body file has the 14 evaluation joints in LSP order (docs/data.md)");
  in.check_level("full", full, 0);
  mesh.regressor = from_vector<float>(regressor, {joints, full});
  mesh.full_to_mid = in.sparse("full_to_mid", -1, full);
  in.check_level("mid", mesh.mid_vertices(), 0);
  in.check_level("full", full, mesh.mid_vertices());
  mesh.mid_to_coarse = in.sparse("mid_to_coarse", -1, mesh.mid_vertices());
  in.check_level("coarse", mesh.coarse_vertices(), 0);
  in.check_level("mid", mesh.mid_vertices(), mesh.coarse_vertices());
  mesh.coarse_to_mid = in.sparse("coarse_to_mid", mesh.mid_vertices(), mesh.coarse_vertices());
  mesh.mid_to_full = in.sparse("mid_to_full", full, mesh.mid_vertices());
  mesh.template_joints = from_vector<float>(in.finite_floats("template_joints", {joints, 3}), {joints, 3});
  mesh.template_vertices = from_vector<float>(in.finite_floats("template_vertices", {mesh.coarse_vertices(), 3}), {mesh.coarse_vertices(), 3});
  const auto faces = in.read<std::int32_t>("faces", {-1, 3});
  in.check_indices(faces, full, "faces");
  for (std::size_t f = 0; f < faces.size(); f += 3) mesh.faces.emplace_back(faces[f], faces[f + 1], faces[f + 2]);
  mesh.joint_symmetry = in.read<std::int32_t>("joint_symmetry", {joints});
  in.check_indices(mesh.joint_symmetry, joints, "joint_symmetry");
  mesh.vertex_symmetry = in.read<std::int32_t>("vertex_symmetry", {full});
  in.check_indices(mesh.vertex_symmetry, full, "vertex_symmetry");
  return mesh;
}

// Reads a body file (body_from_safetensors's checks).
inline MeshHierarchy load_body_file(const std::string& path) { return body_from_safetensors(io::load_safetensors(path), path); }

// A 64-bit FNV-1a hash of a body's tensors, as 16 hex digits: equal for the same body.
inline std::string body_fingerprint(const MeshHierarchy& mesh) {
  std::uint64_t hash = 14695981039346656037ull;
  const auto mix = [&hash](const auto& bytes) {
    for (const auto byte : bytes) hash = (hash ^ static_cast<std::uint8_t>(byte)) * 1099511628211ull;
  };
  for (const auto& [name, record] : to_safetensors(mesh).tensors) mix(name), mix(record.data);
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash));
  return hex;
}

// A trainer's checkpoint carries the body it was trained on, as the body file's
// tensors under "body.": evaluation, inference and resumption then use exactly
// those matrices and that template. (The procedural body is rebuilt by every
// program, and which vertices its coarse levels keep can differ between builds:
// -O0 against -O3 -march=native, with contracted multiply-adds and other
// summation orders, picks other edge collapses.)
inline constexpr const char* kCheckpointBodyPrefix = "body.";

inline std::map<std::string, io::TensorRecord> checkpoint_body_tensors(const MeshHierarchy& mesh) {
  std::map<std::string, io::TensorRecord> out;
  for (auto& [name, record] : to_safetensors(mesh).tensors) out.emplace(kCheckpointBodyPrefix + name, std::move(record));
  return out;
}

// The body a checkpoint carries; none in checkpoints from before bodies were stored.
inline std::optional<MeshHierarchy> checkpoint_body(const io::SafeTensorsFile& checkpoint, const std::string& path) {
  io::SafeTensorsFile body;
  for (const auto& [name, record] : checkpoint.tensors)
    if (name.starts_with(kCheckpointBodyPrefix)) body.tensors.emplace(name.substr(std::string_view(kCheckpointBodyPrefix).size()), record);
  if (body.tensors.empty()) return std::nullopt;
  return body_from_safetensors(std::move(body), path + " (its body)");
}

// The body for a checkpoint's network: the one it carries; a body file given with
// it (`body_file`, e.g. metro_train --body with --resume) must be that same body.
// A checkpoint without one gets the procedural body's levels for its token count.
// ValueError when the sizes do not fit the network or the bodies differ.
inline MeshHierarchy body_for_checkpoint(const io::SafeTensorsFile& checkpoint, const std::string& path, const model::MetroConfig& config,
                                         const std::string& body_file = "") {
  std::optional<MeshHierarchy> body = checkpoint_body(checkpoint, path);
  if (!body_file.empty()) {
    MeshHierarchy given = load_body_file(body_file);
    if (body && body_fingerprint(*body) != body_fingerprint(given))
      throw ValueError(path + ": the network was trained on another body than " + body_file + " (the checkpoint carries its own; leave --body out)");
    body = std::move(given);
  }
  if (!body) return MeshHierarchy::for_network(config);
  check_network_matches(config, *body);
  return std::move(*body);
}

}  // namespace metro::train
