#pragma once
// A licence-free parametric human body standing in for SMPL (METRO Sec. 3-4):
// a procedural mannequin mesh (full / mid / coarse levels with sampling
// matrices, plus a coarser level for the `small` preset), a skeleton with linear blend skinning, 10 shape parameters,
// axis-angle pose parameters with an anatomical pose sampler, a joint regressor
// for the 14 evaluation joints and a left/right symmetry map.
//
// Frame: metres, y up, the person faces +z, their left is +x, the pelvis
// (mid-hip) is the origin. Built once, deterministically, on first use.
#include "metro/core/vec.hpp"

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "metro/body/joint_regressor.hpp"
#include "metro/body/mannequin.hpp"
#include "metro/body/mesh_io.hpp"
#include "metro/body/pose_sampler.hpp"
#include "metro/body/shape.hpp"
#include "metro/body/simplify.hpp"
#include "metro/body/skinning.hpp"
#include "metro/body/template_mesh.hpp"
#include "metro/core/error.hpp"
#include "metro/core/random.hpp"

namespace metro::body {

// Evaluation joints in the LSP / Human3.6M-14 order METRO reports (Sec. 4).
inline constexpr int kNumJoints = 14;
enum EvalJoint : int {
  eval_right_ankle, eval_right_knee, eval_right_hip, eval_left_hip, eval_left_knee, eval_left_ankle,
  eval_right_wrist, eval_right_elbow, eval_right_shoulder, eval_left_shoulder, eval_left_elbow, eval_left_wrist,
  eval_neck, eval_head_top
};

// Vertex counts of METRO's SMPL hierarchy (Sec. 3.5): full, mid (~1/4), coarse (~1/16),
// and a fourth level (~1/64) whose vertices are the tokens of the `small` preset.
inline constexpr std::array<int, 4> kLevelVertexCounts{6890, 1723, 431, 108};
inline constexpr int kNumLevels = 4;
inline constexpr int kCoarseLevel = 2;  // the level METRO's transformer works on

struct PosedBody {
  std::vector<Vec3f> vertices;  // (V, 3) full mesh, metres, body frame
  std::vector<Vec3f> joints;    // (kNumJoints, 3) evaluation joints, same frame
};

class BodyModel {
 public:
  // Builds the whole model (~1 s). Prefer get(), which builds it once per program.
  BodyModel() : skeleton_(mannequin::rest_skeleton()) {
    build_levels();
    skin_ = mannequin_skin_weights(level_vertices_[0], skeleton_);
    regions_ = mannequin_regions(level_vertices_[0]);
    rest_joints_ = pose(ShapeParams{}, rest_pose()).joints;
    fit_regressor();
  }

  static const BodyModel& get() {
    static const BodyModel model;
    return model;
  }

  int num_vertices(int level = 0) const { return static_cast<int>(rest_vertices(level).size()); }
  const std::vector<Vec3i>& faces(int level = 0) const { return level_faces_[checked_level(level, kNumLevels)]; }
  const std::vector<Vec3f>& rest_vertices(int level = 0) const { return level_vertices_[checked_level(level, kNumLevels)]; }
  const std::vector<Vec3f>& rest_joints() const { return rest_joints_; }
  const std::vector<Region>& vertex_region() const { return regions_; }
  // (V_{level+1}, V_level): keeps a subset of the vertices (rows one-hot).
  const SparseRowMatrix& downsample(int level) const { return downsample_[checked_level(level, kNumLevels - 1)]; }
  // (V_level, V_{level+1}): barycentric weights in the closest coarse triangle.
  const SparseRowMatrix& upsample(int level) const { return upsample_[checked_level(level, kNumLevels - 1)]; }
  // (V_coarse, V_fine): the downsamplings from level `fine` to the coarser level `coarse`, chained.
  SparseRowMatrix downsample(int fine, int coarse) const {
    SparseRowMatrix m = identity(checked_order(fine, coarse));
    for (int level = fine; level < coarse; ++level) m = downsample(level) * m;
    return m;
  }
  // (V_fine, V_coarse): the upsamplings from level `coarse` to the finer level `fine`, chained.
  SparseRowMatrix upsample(int coarse, int fine) const {
    SparseRowMatrix m = identity(coarse);
    checked_order(fine, coarse);
    for (int level = coarse - 1; level >= fine; --level) m = upsample(level) * m;
    return m;
  }
  // (kNumJoints, V_full): J = G V.
  const SparseRowMatrix& joint_regressor() const { return regressor_; }
  const std::vector<int>& vertex_symmetry() const { return symmetry_; }
  static constexpr std::array<int, kNumJoints> joint_symmetry() { return {5, 4, 3, 2, 1, 0, 11, 10, 9, 8, 7, 6, 12, 13}; }
  int num_skeleton_joints() const { return skeleton_.size(); }
  const Skeleton& skeleton() const { return skeleton_; }
  const SkinWeights& skin_weights() const { return skin_; }

  // Each value ~ N(0, 0.6) clamped to [-1.8, 1.8].
  ShapeParams sample_shape(Generator& rng) const {
    ShapeParams shape;
    for (float& value : shape.values) value = std::clamp(rng.normal<float>(0.0f, 0.6f), -1.8f, 1.8f);
    return shape;
  }
  PoseParams sample_pose(Generator& rng) const { return pose_from_angles(sample_anatomical_pose(rng)); }
  PoseParams rest_pose() const { return PoseParams{std::vector<Vec3f>(skeleton_.size(), Vec3f::Zero())}; }

  // Shape (per-bone scalings blended by the skin weights), then linear blend skinning.
  PosedBody pose(const ShapeParams& shape, const PoseParams& pose) const {
    if (static_cast<int>(pose.axis_angle.size()) != skeleton_.size())
      throw ShapeError("BodyModel::pose: " + std::to_string(pose.axis_angle.size()) + " joint rotations, expected " + std::to_string(skeleton_.size()));
    const auto scale = bone_scalings(skeleton_, shape);
    const Skeleton shaped = shaped_skeleton(skeleton_, scale);
    const auto shaped_vertices = blend_transforms(level_vertices_[0], skin_, shape_transforms(skeleton_, shaped, scale));
    const auto world = forward_kinematics(shaped, pose.axis_angle);
    PosedBody body;
    body.vertices = linear_blend_skinning(shaped_vertices, skin_, shaped, world);
    body.joints = evaluation_joints(world, scale);
    return body;
  }

 private:
  static int checked_level(int level, int count) {
    if (level < 0 || level >= count) throw ValueError("BodyModel: level " + std::to_string(level) + " outside [0, " + std::to_string(count) + ")");
    return level;
  }

  // `fine` after checking that it names a level at least as fine as `coarse`.
  static int checked_order(int fine, int coarse) {
    checked_level(fine, kNumLevels), checked_level(coarse, kNumLevels);
    if (fine > coarse) throw ValueError("BodyModel: level " + std::to_string(fine) + " is coarser than level " + std::to_string(coarse));
    return fine;
  }
  SparseRowMatrix identity(int level) const { return SparseRowMatrix::Identity(num_vertices(level)); }

  // The 14 evaluation joints from the posed skeleton; the head top rides on the head bone.
  std::vector<Vec3f> evaluation_joints(const std::vector<BoneTransform>& world, const std::vector<Mat3f>& scale) const {
    static constexpr std::array<int, kNumJoints - 1> from_skeleton{right_ankle, right_knee, right_hip, left_hip, left_knee, left_ankle,
                                                                   right_wrist, right_elbow, right_shoulder, left_shoulder, left_elbow,
                                                                   left_wrist, neck};
    std::vector<Vec3f> joints;
    for (int j : from_skeleton) joints.push_back(world[j].translation);
    const Vec3f head_offset = scale[head] * (mannequin::rest_head_top() - skeleton_.positions[head]);
    joints.push_back(world[head](head_offset));
    return joints;
  }

  // Surface net of the SDF, then symmetric quadric simplification to 6890, 1723, 431, 108 vertices.
  void build_levels() {
    SymmetricMesh current = mannequin_surface(0.0125f);
    for (int level = -1; level + 1 < kNumLevels; ++level) {
      const SimplifiedMesh simplified = simplify_mesh(current.mesh.vertices, current.mesh.faces, current.mirror, kLevelVertexCounts[level + 1]);
      SymmetricMesh next = restrict_to_kept(current, simplified);
      if (level >= 0) {
        downsample_[level] = downsampling_matrix(simplified, static_cast<int>(current.mesh.vertices.size()));
        upsample_[level] = upsampling_matrix(current.mesh.vertices, simplified);
      }
      level_vertices_[level + 1] = next.mesh.vertices;
      level_faces_[level + 1] = next.mesh.faces;
      if (level < 0) symmetry_ = next.mirror;
      current = std::move(next);
    }
  }

  static SymmetricMesh restrict_to_kept(const SymmetricMesh& fine, const SimplifiedMesh& coarse) {
    SymmetricMesh out;
    std::vector<int> fine_to_coarse(fine.mesh.vertices.size(), -1);
    for (int c = 0; c < static_cast<int>(coarse.kept.size()); ++c) fine_to_coarse[coarse.kept[c]] = c;
    for (int fine_index : coarse.kept) {
      out.mesh.vertices.push_back(fine.mesh.vertices[fine_index]);
      out.mirror.push_back(fine_to_coarse[fine.mirror[fine_index]]);
    }
    out.mesh.faces = coarse.faces;
    return out;
  }

  // NNLS over the rest body and 40 random shaped, posed bodies (fixed seed).
  void fit_regressor() {
    Generator rng(0x5EED'B0D1ull);
    std::vector<std::vector<Vec3f>> vertex_samples{level_vertices_[0]}, joint_samples{rest_joints_};
    for (int s = 0; s < 40; ++s) {
      const ShapeParams shape = sample_shape(rng);
      PosedBody body = pose(shape, sample_pose(rng));
      vertex_samples.push_back(std::move(body.vertices));
      joint_samples.push_back(std::move(body.joints));
    }
    regressor_ = fit_joint_regressor(vertex_samples, joint_samples, 6);
  }

  Skeleton skeleton_;
  std::array<std::vector<Vec3f>, kNumLevels> level_vertices_;
  std::array<std::vector<Vec3i>, kNumLevels> level_faces_;
  std::array<SparseRowMatrix, kNumLevels - 1> downsample_, upsample_;
  std::vector<int> symmetry_;
  SkinWeights skin_;
  std::vector<Region> regions_;
  std::vector<Vec3f> rest_joints_;
  SparseRowMatrix regressor_;
};

}  // namespace metro::body
