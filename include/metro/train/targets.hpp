#pragma once
// From the body model and a data::Batch to what the network and metro_loss take:
//   - the template (rest joints + coarse vertices in the camera orientation,
//     centred on the pelvis), as the official code uses the zero-pose SMPL
//     mesh rotated by pi about x (paper Sec. 3.2; the rotation is the code's);
//   - the targets at three mesh resolutions: full from the labels, mid and
//     coarse by the body's downsampling matrices (Sec. 3.4, official training);
//   - the joint regressor as a dense (J, V_full) tensor for regress_joints.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "metro/body/body_model.hpp"
#include "metro/core/eigen.hpp"
#include "metro/data/loader.hpp"
#include "metro/model/model.hpp"
#include "metro/nn/losses.hpp"
#include "metro/tensor.hpp"

namespace metro::train {

using RowPoints = Eigen::Matrix<float, Eigen::Dynamic, 3, Eigen::RowMajor>;  // (N, 3)

// Body-frame points (y up, facing +z) -> camera orientation (y down, z forward).
inline RowPoints to_camera_orientation(const std::vector<Vec3f>& points) {
  RowPoints out(static_cast<Eigen::Index>(points.size()), 3);
  for (std::size_t i = 0; i < points.size(); ++i) out.row(static_cast<Eigen::Index>(i)) << points[i].x(), -points[i].y(), -points[i].z();
  return out;
}

// (N, 3) rows -> N points.
inline std::vector<Vec3f> to_vectors(const RowPoints& points) {
  std::vector<Vec3f> out;
  for (Eigen::Index i = 0; i < points.rows(); ++i) out.emplace_back(points(i, 0), points(i, 1), points(i, 2));
  return out;
}

inline Tensor<float> tensor_from_points(const RowPoints& points) {
  return from_vector<float>(std::vector<float>(points.data(), points.data() + points.size()), {points.rows(), 3});
}

// A body model's sparse matrix as a dense (rows, cols) tensor.
inline Tensor<float> tensor_from_sparse(const body::SparseRowMatrix& m) {
  return from_vector<float>(m.to_dense(), {m.rows(), m.cols()});
}

// What training needs from the body model, as tensors and sparse matrices: three
// mesh resolutions ending at the full mesh. The paper's network puts its tokens
// on body level 2 (431 vertices; mid 1723); the `small` preset on level 3 (108;
// mid 431). The mid level is always the next finer one.
struct MeshHierarchy;
inline void check_network_matches(const model::MetroConfig& c, const MeshHierarchy& mesh);

struct MeshHierarchy {
  int coarse_level = body::kCoarseLevel;             // procedural body level of the vertex tokens (-1: a body file)
  body::SparseRowMatrix full_to_mid, mid_to_coarse;  // downsampling (V_mid, V_full), (V_coarse, V_mid)
  body::SparseRowMatrix coarse_to_mid, mid_to_full;  // upsampling (V_mid, V_coarse), (V_full, V_mid)
  Tensor<float> regressor;                           // (J, V_full), dense
  Tensor<float> template_joints, template_vertices;  // (J, 3), (V_coarse, 3), pelvis at the origin
  std::vector<Vec3i> faces;                          // (F, 3) triangles of the full mesh, for writing and drawing it
  std::vector<int> joint_symmetry, vertex_symmetry;  // (J), (V_full): the mirror image of each, for flip augmentation

  explicit MeshHierarchy(int coarse = body::kCoarseLevel, const body::BodyModel& body = body::BodyModel::get())
      : coarse_level(checked_coarse_level(coarse)),
        full_to_mid(body.downsample(0, coarse - 1)),
        mid_to_coarse(body.downsample(coarse - 1)),
        coarse_to_mid(body.upsample(coarse - 1)),
        mid_to_full(body.upsample(coarse - 1, 0)),
        faces(body.faces(0)),
        vertex_symmetry(body.vertex_symmetry()) {
    const auto joints_mirrored = body::BodyModel::joint_symmetry();
    joint_symmetry.assign(joints_mirrored.begin(), joints_mirrored.end());
    regressor = tensor_from_sparse(body.joint_regressor());
    const RowPoints joints = to_camera_orientation(body.rest_joints());
    const Eigen::RowVector3f pelvis = 0.5f * (joints.row(nn::kRightHip) + joints.row(nn::kLeftHip));
    template_joints = tensor_from_points(joints.rowwise() - pelvis);
    template_vertices = tensor_from_points(to_camera_orientation(body.rest_vertices(coarse)).rowwise() - pelvis);
  }

  // A hierarchy to be filled in field by field (a body file: train/body_file.hpp).
  struct Empty {};
  explicit MeshHierarchy(Empty) : coarse_level(-1) {}

  // The hierarchy a network was built for: the body level with its number of vertex tokens.
  static MeshHierarchy for_network(const model::MetroConfig& c, const body::BodyModel& body = body::BodyModel::get()) {
    for (int level = 1; level < body::kNumLevels; ++level) {
      if (body.num_vertices(level) != c.num_coarse_vertices) continue;
      MeshHierarchy mesh(level, body);
      check_network_matches(c, mesh);
      return mesh;
    }
    throw ValueError("the network has " + std::to_string(c.num_coarse_vertices) + " vertex tokens; no level of the body model has that many vertices");
  }

  std::int64_t full_vertices() const { return full_to_mid.cols(); }
  std::int64_t mid_vertices() const { return full_to_mid.rows(); }
  std::int64_t coarse_vertices() const { return mid_to_coarse.rows(); }
  // (V_full, V_coarse): a coarse-vertex quantity carried to the full mesh.
  std::vector<float> coarse_to_full(const std::vector<float>& coarse) const { return mid_to_full * (coarse_to_mid * coarse); }

 private:
  static int checked_coarse_level(int level) {
    if (level < 1 || level >= body::kNumLevels)
      throw ValueError("MeshHierarchy: coarse level " + std::to_string(level) + " outside [1, " + std::to_string(body::kNumLevels) + ")");
    return level;
  }
};

// Checks that the network was built for this mesh hierarchy.
inline void check_network_matches(const model::MetroConfig& c, const MeshHierarchy& mesh) {
  const bool ok = c.num_joints == mesh.template_joints.shape()[0] && c.num_coarse_vertices == mesh.coarse_vertices() &&
                  c.upsample_sizes == std::vector<std::int64_t>{mesh.mid_vertices(), mesh.full_vertices()};
  if (ok) return;
  std::string network = std::to_string(c.num_joints) + " joints, " + std::to_string(c.num_coarse_vertices);
  for (std::int64_t size : c.upsample_sizes) network += " -> " + std::to_string(size);
  throw ValueError("the network's template sizes (" + network + " vertices) do not match the body model's (" + std::to_string(mesh.template_joints.shape()[0]) +
                   " joints, " + std::to_string(mesh.coarse_vertices()) + " -> " + std::to_string(mesh.mid_vertices()) + " -> " +
                   std::to_string(mesh.full_vertices()) + " vertices)");
}

// The `small` preset on a mesh hierarchy's sizes; by default the procedural body's
// coarsest level (108 vertex tokens, mid 431, full 6890).
inline model::MetroConfig small_config(std::int64_t image_size, const MeshHierarchy& mesh = MeshHierarchy(body::kNumLevels - 1)) {
  return model::small(mesh.coarse_vertices(), {mesh.mid_vertices(), mesh.full_vertices()}, image_size);
}

// A config by preset name: `small` on the given body file's sizes (none: the
// procedural body's coarsest level); the paper presets keep their own template sizes.
inline model::MetroConfig preset_config(const std::string& name, std::int64_t image_size, const MeshHierarchy* body_file = nullptr) {
  if (name == "small") return body_file ? small_config(image_size, *body_file) : small_config(image_size);
  if (name == "paper_body") return model::paper_body();
  throw UsageError("--preset: unknown preset \"" + name + "\" (small, paper_body)");
}

// Starts the learned upsampling (paper Sec. 3.5: Linear layers along the vertex
// axis, coarse -> mid -> full) at the body model's barycentric upsampling
// matrices, with zero bias (a fixed last step, MetroConfig::learned_full_upsampling,
// at the same matrix), so the full mesh follows the coarse prediction from
// the first step instead of being learned from a random map of millions of
// weights. (The official code starts them at random; training then moves them freely.)
template <class Net>
void init_upsampling_from_body(Net& net, const MeshHierarchy& mesh) {
  NoGradGuard no_grad;
  for (auto& [name, parameter] : net.named_parameters()) {
    if (name == "upsampling.weight") copy_(parameter, tensor_from_sparse(mesh.coarse_to_mid));      // (mid, coarse)
    else if (name == "upsampling2.weight") copy_(parameter, tensor_from_sparse(mesh.mid_to_full));  // (full, mid)
    else if (name == "upsampling.bias" || name == "upsampling2.bias") copy_(parameter, zeros<float>(parameter.shape()));
  }
  if (!net.config().learned_full_upsampling) net.set_fixed_upsampling(tensor_from_sparse(mesh.mid_to_full));  // (full, mid)
}

// A new network on the procedural body: its template mesh (the tokens' xyz) and
// its upsampling matrices.
template <class Net>
void init_from_body(Net& net, const MeshHierarchy& mesh) {
  net.set_template(mesh.template_joints, mesh.template_vertices);
  init_upsampling_from_body(net, mesh);
}

// One batch as tensors: images (B, 3, S, S) and every target of metro_loss.
struct BatchTensors {
  Tensor<float> images;
  nn::MetroTargets<float> targets;
};

namespace detail {

// (B, V_in, 3) -> (B, V_out, 3) by a sparse (V_out, V_in) matrix, per sample.
inline std::vector<float> downsample_batch(const body::SparseRowMatrix& matrix, const std::vector<float>& vertices, int batch) {
  const std::int64_t in = matrix.cols(), out = matrix.rows();
  std::vector<float> result(static_cast<std::size_t>(batch * out * 3), 0.0f);
  for (int b = 0; b < batch; ++b)
    for (int r = 0; r < out; ++r) {
      float* target = result.data() + (b * out + r) * 3;
      const std::span<const int> columns = matrix.row_columns(r);
      const std::span<const float> weights = matrix.row_values(r);
      for (std::size_t k = 0; k < columns.size(); ++k)
        for (int c = 0; c < 3; ++c) target[c] += weights[k] * vertices[static_cast<std::size_t>((b * in + columns[k]) * 3 + c)];
    }
  return result;
}

// (B, V, 3) meshes, each moved so that the pelvis of the joints regressed from it
// (the mid-point of the hips, rows 2 and 3 of the (J, V) regressor) is at the
// origin, as the official code centres its mesh targets (on the mesh's own
// pelvis, whether or not the sample has 3D joint labels).
inline std::vector<float> centred_on_mesh_pelvis(std::vector<float> vertices, const Tensor<float>& regressor, int batch) {
  const std::int64_t v = regressor.shape()[1];
  const float* hips[2] = {regressor.data() + nn::kRightHip * v, regressor.data() + nn::kLeftHip * v};
  for (int b = 0; b < batch; ++b) {
    float* mesh = vertices.data() + b * v * 3;
    float pelvis[3] = {0, 0, 0};
    for (const float* row : hips)
      for (std::int64_t i = 0; i < v; ++i)
        for (int c = 0; c < 3; ++c) pelvis[c] += 0.5f * row[i] * mesh[i * 3 + c];
    for (std::int64_t i = 0; i < v; ++i)
      for (int c = 0; c < 3; ++c) mesh[i * 3 + c] -= pelvis[c];
  }
  return vertices;
}

}  // namespace detail

// A dataset without meshes (V = 0: 2D or 3D joints only) gets zero mesh targets and
// has_mesh 0, so the vertex losses skip it.
inline BatchTensors to_tensors(const data::Batch& batch, const MeshHierarchy& mesh) {
  const std::int64_t b = batch.batch_size, j = batch.num_joints, s = batch.image_size;
  const bool meshes = batch.num_vertices > 0;
  if (meshes && batch.num_vertices != mesh.full_vertices())
    throw ValueError("dataset meshes have " + std::to_string(batch.num_vertices) + " vertices, the body model " +
                     std::to_string(mesh.full_vertices()));
  BatchTensors out;
  out.images = from_vector<float>(batch.images, {b, 3, s, s});
  auto& t = out.targets;
  t.joints_3d = from_vector<float>(batch.joints_3d, {b, j, 4});
  t.joints_2d = from_vector<float>(batch.joints_2d, {b, j, 3});
  const std::vector<float> full = meshes ? detail::centred_on_mesh_pelvis(batch.vertices, contiguous(mesh.regressor), batch.batch_size)
                                         : std::vector<float>(static_cast<std::size_t>(b * mesh.full_vertices() * 3), 0.0f);
  const std::vector<float> mid = detail::downsample_batch(mesh.full_to_mid, full, batch.batch_size);
  t.full_vertices = from_vector<float>(full, {b, mesh.full_vertices(), 3});
  t.mid_vertices = from_vector<float>(mid, {b, mesh.mid_vertices(), 3});
  t.coarse_vertices = from_vector<float>(detail::downsample_batch(mesh.mid_to_coarse, mid, batch.batch_size), {b, mesh.coarse_vertices(), 3});
  t.has_2d = from_vector<float>(batch.has_2d, {b});
  t.has_3d = from_vector<float>(batch.has_3d, {b});
  t.has_mesh = meshes ? from_vector<float>(batch.has_mesh, {b}) : zeros<float>({b});
  return out;
}

// The network output in the form metro_loss takes (joints regressed from the full mesh).
inline nn::MetroPredictions<float> predictions(const model::MetroOutput<float>& out, const MeshHierarchy& mesh) {
  if (!out.mid_vertices.defined()) throw ValueError("metro_loss needs a mid-resolution mesh (two upsampling steps)");
  return {out.joints, out.coarse_vertices, out.mid_vertices, out.full_vertices, nn::regress_joints(mesh.regressor, out.full_vertices),
          out.camera};
}

// The data loader options for a body (its flip symmetry maps) and a network input
// size: for training (shuffled, augmented, full batches) or evaluation (in order, plain).
inline data::LoaderOptions loader_options(const MeshHierarchy& mesh, int batch_size, int image_size, std::uint64_t seed, bool training,
                                          int workers) {
  data::LoaderOptions o;
  o.batch_size = batch_size, o.image_size = image_size, o.seed = seed, o.num_workers = workers;
  o.augment.enabled = training, o.shuffle = training, o.drop_last = training;
  o.joint_symmetry = mesh.joint_symmetry;
  o.vertex_symmetry = mesh.vertex_symmetry;
  return o;
}

}  // namespace metro::train
