#pragma once
// Evaluation as in the paper (Sec. 4): MPJPE and PA-MPJPE on the 14 joints
// regressed from the predicted full mesh, pelvis-aligned; MPVE (pelvis-aligned)
// and PA-MPVPE on the full mesh; F-scores at 5 and 15 mm on the
// Procrustes-aligned mesh (as FreiHAND). Also the mean-pose baseline: the mean
// training mesh predicted for every image.
#include <cstdio>
#include <ostream>
#include <string>
#include <vector>

#include "metro/data/dataset.hpp"
#include "metro/eval/metrics.hpp"
#include "metro/io/json.hpp"
#include "metro/train/targets.hpp"

namespace metro::train {

struct MeshMetrics {
  double mpjpe_mm = 0, pa_mpjpe_mm = 0, mpve_mm = 0, pa_mpvpe_mm = 0, f_at_5mm = 0, f_at_15mm = 0;
  std::int64_t samples = 0;
};

// The metrics in metrics.json order.
inline std::vector<std::pair<std::string, double>> metric_list(const MeshMetrics& m) {
  return {{"mpjpe_mm", m.mpjpe_mm}, {"pa_mpjpe_mm", m.pa_mpjpe_mm}, {"mpve_mm", m.mpve_mm},
          {"pa_mpvpe_mm", m.pa_mpvpe_mm}, {"f_at_5mm", m.f_at_5mm}, {"f_at_15mm", m.f_at_15mm}};
}

inline io::json::Value to_json(const MeshMetrics& m) {
  io::json::Object o;
  for (const auto& [name, value] : metric_list(m)) o.emplace_back(name, value);
  o.emplace_back("samples", m.samples);
  return o;
}

// Adds one sample: predicted full mesh (V, 3) and its regressed joints (J, 3)
// against the labels, all in metres; the label mesh centred on its own pelvis (the
// mid-hip of the joints regressed from it, as the training targets: to_tensors).
inline void add_sample(eval::MetricAccumulator& acc, const RowPoints& pred_vertices, const RowPoints& pred_joints,
                       const RowPoints& gt_vertices, const RowPoints& gt_joints) {
  const eval::Points pv(pred_vertices.data(), pred_vertices.rows()), pj(pred_joints.data(), pred_joints.rows());
  const eval::Points gv(gt_vertices.data(), gt_vertices.rows()), gj(gt_joints.data(), gt_joints.rows());
  acc.add("mpjpe_mm", eval::mpjpe(pj, gj));
  acc.add("pa_mpjpe_mm", eval::pa_mpjpe(pj, gj));
  acc.add("mpve_mm", eval::mpve(pv, gv, eval::pelvis(pj), Vec3f(0, 0, 0)));
  acc.add("pa_mpvpe_mm", eval::pa_mpvpe(pv, gv));
  const std::vector<Vec3f> aligned = eval::similarity_align(pv, gv);
  acc.add("f_at_5mm", eval::fscore(aligned, gv, 0.005).fscore);
  acc.add("f_at_15mm", eval::fscore(aligned, gv, 0.015).fscore);
}

inline MeshMetrics summarize(const eval::MetricAccumulator& acc) {
  MeshMetrics m;
  m.samples = acc.count("mpjpe_mm");
  if (m.samples == 0) throw ValueError("evaluation: no samples with 3D joints and a mesh");
  m.mpjpe_mm = acc.mean("mpjpe_mm"), m.pa_mpjpe_mm = acc.mean("pa_mpjpe_mm"), m.mpve_mm = acc.mean("mpve_mm");
  m.pa_mpvpe_mm = acc.mean("pa_mpvpe_mm"), m.f_at_5mm = acc.mean("f_at_5mm"), m.f_at_15mm = acc.mean("f_at_15mm");
  return m;
}

// Sample `b` of a (B, N, C) float array as (N, 3) points (the first 3 channels).
inline RowPoints points_of(const float* data, std::int64_t b, std::int64_t n, std::int64_t channels) {
  RowPoints out(n, 3);
  for (std::int64_t i = 0; i < n; ++i)
    for (int k = 0; k < 3; ++k) out(i, k) = data[(b * n + i) * channels + k];
  return out;
}

// Labels of sample `b`: its joints from the batch, its mesh from the targets
// (centred on the mesh's pelvis); false when it lacks either.
inline bool batch_labels(const data::Batch& batch, const Tensor<float>& target_vertices, int b, RowPoints& joints, RowPoints& vertices) {
  if (batch.has_3d[b] != 1 || batch.has_mesh[b] != 1) return false;
  joints = points_of(batch.joints_3d.data(), b, batch.num_joints, 4);
  vertices = points_of(target_vertices.data(), b, target_vertices.shape()[1], 3);
  return true;
}

struct EvalOptions {
  int batch_size = 16;
  std::int64_t max_samples = 0;  // 0: the whole dataset
  int workers = 1;
};

// The network (in eval mode) on a dataset, without augmentation.
template <class Net>
MeshMetrics evaluate(Net& net, const data::Dataset& dataset, const MeshHierarchy& mesh, const EvalOptions& options) {
  const bool was_training = net.is_training();
  net.eval();
  NoGradGuard no_grad;
  data::DataLoader loader(dataset, loader_options(mesh, options.batch_size, static_cast<int>(net.config().image_size), 0, false, options.workers));
  loader.start_epoch(0);
  eval::MetricAccumulator acc;
  std::int64_t seen = 0;
  while (auto batch = loader.next()) {
    const BatchTensors inputs = to_tensors(*batch, mesh);
    const auto out = net.forward(inputs.images);
    const Tensor<float> vertices = contiguous(out.full_vertices);
    const Tensor<float> joints = contiguous(nn::regress_joints(mesh.regressor, out.full_vertices));
    const Tensor<float> target_vertices = contiguous(inputs.targets.full_vertices);
    for (int b = 0; b < batch->batch_size && (options.max_samples == 0 || seen < options.max_samples); ++b, ++seen) {
      RowPoints gt_joints, gt_vertices;
      if (!batch_labels(*batch, target_vertices, b, gt_joints, gt_vertices)) continue;
      add_sample(acc, points_of(vertices.data(), b, mesh.full_vertices(), 3), points_of(joints.data(), b, batch->num_joints, 3), gt_vertices,
                 gt_joints);
    }
    clear_tape();
    if (options.max_samples > 0 && seen >= options.max_samples) break;
  }
  net.train(was_training);
  return summarize(acc);
}

// The pelvis (mid-hip) of a sample's 3D joints, as a (1, 3) row.
inline Eigen::RowVector3f pelvis_row(const data::SampleAnnotation& a) {
  const Vec3f pelvis = data::pelvis(a.joints_3d);
  return {pelvis.x(), pelvis.y(), pelvis.z()};
}

// The mean pelvis-centred mesh (V, 3) of up to `max_samples` training labels (camera frame).
inline RowPoints mean_training_mesh(const data::Dataset& dataset, std::size_t max_samples = 5000) {
  const std::size_t count = std::min(dataset.size(), max_samples);
  if (count == 0 || dataset.num_vertices() == 0) throw ValueError("mean_training_mesh: the training set has no meshes");
  RowPoints total = RowPoints::Zero(dataset.num_vertices(), 3);
  std::size_t used = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const data::SampleAnnotation a = dataset.annotation(i);
    if (!a.has_mesh || !a.has_3d) continue;
    const Eigen::RowVector3f root = pelvis_row(a);
    total += Eigen::Map<const RowPoints>(a.vertices.data(), dataset.num_vertices(), 3).rowwise() - root;
    ++used;
  }
  if (used == 0) throw ValueError("mean_training_mesh: no training sample has a mesh and 3D joints");
  return total / static_cast<float>(used);
}

// The baseline that predicts `mean_mesh` (V, 3) for every image of `dataset`.
inline MeshMetrics evaluate_constant_mesh(const RowPoints& mean_mesh, const data::Dataset& dataset, const MeshHierarchy& mesh,
                                          std::int64_t max_samples = 0) {
  const Tensor<float> regressed = contiguous(nn::regress_joints(mesh.regressor, unsqueeze(tensor_from_points(mean_mesh), 0)));
  const RowPoints joints = points_of(regressed.data(), 0, regressed.shape()[1], 3);
  eval::MetricAccumulator acc;
  const auto count = static_cast<std::int64_t>(dataset.size());
  for (std::int64_t i = 0; i < count && (max_samples == 0 || i < max_samples); ++i) {
    const data::SampleAnnotation a = dataset.annotation(static_cast<std::size_t>(i));
    if (!a.has_mesh || !a.has_3d) continue;
    const Eigen::RowVector3f root = pelvis_row(a);
    const std::vector<float> centred = detail::centred_on_mesh_pelvis(a.vertices, contiguous(mesh.regressor), 1);
    const RowPoints gt_vertices = points_of(centred.data(), 0, dataset.num_vertices(), 3);
    const RowPoints gt_joints = points_of(a.joints_3d.data(), 0, dataset.num_joints(), 4).rowwise() - root;
    add_sample(acc, mean_mesh, joints, gt_vertices, gt_joints);
  }
  return summarize(acc);
}

// A table of our metrics next to the baseline's, with the ratio.
inline void print_comparison(std::ostream& out, const MeshMetrics& ours, const MeshMetrics* baseline) {
  char line[160];
  std::snprintf(line, sizeof line, "%-14s %10s %10s %8s\n", "metric", "model", baseline ? "baseline" : "", baseline ? "ratio" : "");
  out << line;
  const auto base = baseline ? metric_list(*baseline) : metric_list(MeshMetrics{});
  const auto mine = metric_list(ours);
  for (std::size_t i = 0; i < mine.size(); ++i) {
    if (baseline)
      std::snprintf(line, sizeof line, "%-14s %10.4g %10.4g %8.3f\n", mine[i].first.c_str(), mine[i].second, base[i].second,
                    base[i].second != 0 ? mine[i].second / base[i].second : 0.0);
    else
      std::snprintf(line, sizeof line, "%-14s %10.4g\n", mine[i].first.c_str(), mine[i].second);
    out << line;
  }
  out << "(" << ours.samples << " samples; lower is better except the F-scores)\n";
}

}  // namespace metro::train
