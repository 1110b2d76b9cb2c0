#pragma once
// Evaluation metrics of the paper (Sec. 4.2). Inputs are in metres, results in millimetres.
//
//   MPJPE     mean per-joint error after subtracting each skeleton's pelvis
//             (mid-point of joints 2 and 3 in the 14-joint order: 0 r-ankle, 1 r-knee,
//             2 r-hip, 3 l-hip, 4 l-knee, 5 l-ankle, 6 r-wrist, 7 r-elbow, 8 r-shoulder,
//             9 l-shoulder, 10 l-elbow, 11 l-wrist, 12 neck, 13 head top).
//   PA-MPJPE  mean per-joint error after a per-sample similarity Procrustes alignment.
//   MPVE      mean per-vertex error after subtracting each mesh's pelvis; the pelvis is
//             taken from that mesh's regressed 14 joints (as the official evaluation does),
//             or passed explicitly.
//   PA-MPVPE  mean per-vertex error after similarity Procrustes alignment.
//   F-score   FreiHAND: precision = share of predicted points within d of the nearest
//             ground-truth point, recall = the converse, F = 2PR / (P + R).
//             (FreiHAND evaluates it on Procrustes-aligned predictions: pass similarity_align(pred, gt).)
#include "metro/core/eigen.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "metro/core/error.hpp"

namespace metro::eval {

// A read-only 3 x N view of N points; binds std::vector<Eigen::Vector3f>, Eigen::Matrix3Xf
// and row-major N x 3 matrices (the memory layout of an (N, 3) tensor) without copying.
class Points {
 public:
  using RowMajorN3 = Eigen::Matrix<float, Eigen::Dynamic, 3, Eigen::RowMajor>;
  Points(const std::vector<Eigen::Vector3f>& points)
      : view_(points.empty() ? nullptr : points.front().data(), 3, static_cast<Eigen::Index>(points.size())) {}
  Points(const Eigen::Matrix3Xf& points) : view_(points.data(), 3, points.cols()) {}
  Points(const RowMajorN3& points) : view_(points.data(), 3, points.rows()) {}

  Eigen::Index size() const noexcept { return view_.cols(); }
  Eigen::Vector3f operator[](Eigen::Index i) const { return view_.col(i); }
  Eigen::Matrix3Xd to_double() const { return view_.cast<double>(); }

 private:
  Eigen::Map<const Eigen::Matrix3Xf> view_;
};

inline constexpr double metres_to_mm = 1000.0;
inline constexpr int num_joints = 14;
inline constexpr int right_hip = 2, left_hip = 3;

namespace detail {

inline void check_same_size(const Points& pred, const Points& gt, const char* metric) {
  if (pred.size() != gt.size())
    throw ShapeError(std::string(metric) + ": prediction has " + std::to_string(pred.size()) +
                     " points, ground truth has " + std::to_string(gt.size()));
  if (pred.size() == 0) throw ShapeError(std::string(metric) + ": no points");
}

inline void check_joints(const Points& joints, const char* metric) {
  if (joints.size() != num_joints)
    throw ShapeError(std::string(metric) + ": expected 14 joints, got " + std::to_string(joints.size()));
}

// Column loops over fixed-size 3-vectors below: they are as fast here as Eigen's
// dynamic-size products and reductions, whose AVX-512 double kernels trip g++ 12's
// -Wmaybe-uninitialized false positives under -Werror.

// Mean Euclidean distance in mm between matching columns, each set first moved by -origin.
inline double mean_distance_mm(const Eigen::Matrix3Xd& a, const Eigen::Matrix3Xd& b,
                               const Eigen::Vector3d& a_origin = Eigen::Vector3d::Zero(),
                               const Eigen::Vector3d& b_origin = Eigen::Vector3d::Zero()) {
  double total = 0;
  for (Eigen::Index i = 0; i < a.cols(); ++i) total += ((a.col(i) - a_origin) - (b.col(i) - b_origin)).norm();
  return total / static_cast<double>(a.cols()) * metres_to_mm;
}

inline Eigen::Vector3d centroid(const Eigen::Matrix3Xd& points) {
  Eigen::Vector3d sum = Eigen::Vector3d::Zero();
  for (Eigen::Index i = 0; i < points.cols(); ++i) sum += points.col(i);
  return sum / static_cast<double>(points.cols());
}

}  // namespace detail

// Mid-point of the two hips of a 14-joint skeleton.
inline Eigen::Vector3f pelvis(const Points& joints) {
  detail::check_joints(joints, "pelvis");
  return 0.5f * (joints[right_hip] + joints[left_hip]);
}

// s * R * p + t, the similarity that best maps one point set onto another.
struct SimilarityTransform {
  double scale = 1.0;
  Eigen::Matrix3d rotation = Eigen::Matrix3d::Identity();
  Eigen::Vector3d translation = Eigen::Vector3d::Zero();

  Eigen::Matrix3Xd apply(const Eigen::Matrix3Xd& points) const {
    Eigen::Matrix3Xd out(3, points.cols());
    for (Eigen::Index i = 0; i < points.cols(); ++i) out.col(i) = scale * (rotation * points.col(i)) + translation;
    return out;
  }
};

// Least-squares similarity transform from `source` to `target` (Umeyama): SVD of the
// cross-covariance, with the last singular direction flipped when the best orthogonal
// map would be a reflection, so the result is always a proper rotation.
inline SimilarityTransform similarity_transform(const Points& source, const Points& target) {
  detail::check_same_size(source, target, "similarity_transform");
  const Eigen::Matrix3Xd s = source.to_double(), t = target.to_double();
  const Eigen::Vector3d source_mean = detail::centroid(s), target_mean = detail::centroid(t);
  Eigen::Matrix3d cross = Eigen::Matrix3d::Zero();  // sum_i (s_i - mean_s)(t_i - mean_t)^T
  double source_variance = 0;                       // sum_i |s_i - mean_s|^2
  for (Eigen::Index i = 0; i < s.cols(); ++i) {
    const Eigen::Vector3d s0 = s.col(i) - source_mean;
    cross += s0 * (t.col(i) - target_mean).transpose();
    source_variance += s0.squaredNorm();
  }
  const Eigen::JacobiSVD<Eigen::Matrix3d> svd(cross, Eigen::ComputeFullU | Eigen::ComputeFullV);
  Eigen::Matrix3d flip = Eigen::Matrix3d::Identity();
  flip(2, 2) = (svd.matrixU() * svd.matrixV().transpose()).determinant() < 0 ? -1.0 : 1.0;
  SimilarityTransform result;
  result.rotation = svd.matrixV() * flip * svd.matrixU().transpose();
  // All source points equal: the best fit collapses them onto the target mean.
  result.scale = source_variance > 0 ? (result.rotation * cross).trace() / source_variance : 0.0;
  result.translation = target_mean - result.scale * result.rotation * source_mean;
  return result;
}

// `pred` mapped onto `gt` by the best similarity transform (3 x N, metres).
inline Eigen::Matrix3Xf similarity_align(const Points& pred, const Points& gt) {
  return similarity_transform(pred, gt).apply(pred.to_double()).cast<float>();
}

// MPJPE in mm over 14 joints, each skeleton centred on its own pelvis.
inline double mpjpe(const Points& pred_joints, const Points& gt_joints) {
  detail::check_joints(pred_joints, "mpjpe");
  detail::check_joints(gt_joints, "mpjpe");
  return detail::mean_distance_mm(pred_joints.to_double(), gt_joints.to_double(), pelvis(pred_joints).cast<double>(),
                                  pelvis(gt_joints).cast<double>());
}

// Mean error in mm after similarity Procrustes alignment (PA-MPJPE on joints, PA-MPVPE on vertices).
inline double procrustes_aligned_error(const Points& pred, const Points& gt) {
  detail::check_same_size(pred, gt, "procrustes_aligned_error");
  const Eigen::Matrix3Xd aligned = similarity_transform(pred, gt).apply(pred.to_double());
  return detail::mean_distance_mm(aligned, gt.to_double());
}

inline double pa_mpjpe(const Points& pred_joints, const Points& gt_joints) {
  detail::check_joints(pred_joints, "pa_mpjpe");
  return procrustes_aligned_error(pred_joints, gt_joints);
}

inline double pa_mpvpe(const Points& pred_vertices, const Points& gt_vertices) {
  return procrustes_aligned_error(pred_vertices, gt_vertices);
}

// MPVE in mm: each mesh translated by its own (given) pelvis position.
inline double mpve(const Points& pred_vertices, const Points& gt_vertices, const Eigen::Vector3f& pred_pelvis,
                   const Eigen::Vector3f& gt_pelvis) {
  detail::check_same_size(pred_vertices, gt_vertices, "mpve");
  return detail::mean_distance_mm(pred_vertices.to_double(), gt_vertices.to_double(), pred_pelvis.cast<double>(),
                                  gt_pelvis.cast<double>());
}

// MPVE in mm with each pelvis taken from the mesh's regressed 14 joints.
inline double mpve(const Points& pred_vertices, const Points& gt_vertices, const Points& pred_joints,
                   const Points& gt_joints) {
  return mpve(pred_vertices, gt_vertices, pelvis(pred_joints), pelvis(gt_joints));
}

namespace detail {

// Points sorted into cubic cells of side `radius`: any point within `radius` of a query
// lies in the query's cell or one of its 26 neighbours. Cells are keyed x-major, z-minor,
// so each (x, y) column of three cells is one contiguous run: 9 binary searches per query.
class RadiusGrid {
 public:
  RadiusGrid(const Eigen::Matrix3Xd& points, double radius) : radius_(radius) {
    entries_.reserve(static_cast<std::size_t>(points.cols()));
    for (Eigen::Index i = 0; i < points.cols(); ++i) entries_.push_back({key(cell_of(points.col(i))), points.col(i)});
    std::sort(entries_.begin(), entries_.end(), [](const Entry& a, const Entry& b) { return a.key < b.key; });
  }

  // True when some point lies strictly closer than `radius` to `query`.
  bool has_neighbour(const Eigen::Vector3d& query) const {
    const Eigen::Array3i centre = cell_of(query);
    for (int dx = -1; dx <= 1; ++dx)
      for (int dy = -1; dy <= 1; ++dy) {
        const Eigen::Array3i column = centre + Eigen::Array3i(dx, dy, 0);
        if (run_has_neighbour(key(column - Eigen::Array3i(0, 0, 1)), key(column + Eigen::Array3i(0, 0, 1)), query))
          return true;
      }
    return false;
  }

 private:
  struct Entry {
    std::int64_t key;
    Eigen::Vector3d point;
  };

  Eigen::Array3i cell_of(const Eigen::Vector3d& p) const {
    // Clamped so absurd coordinates cannot overflow; clamping only merges far cells,
    // which costs extra distance checks but never misses a neighbour.
    const Eigen::Array3d c = (p.array() / radius_).floor().cwiseMax(-1e6).cwiseMin(1e6);
    return c.cast<int>();
  }
  static std::int64_t key(const Eigen::Array3i& c) {
    constexpr std::int64_t span = 2'000'003;  // > 2e6 + 2 cells per axis
    return ((static_cast<std::int64_t>(c.x()) + span / 2) * span + (c.y() + span / 2)) * span + (c.z() + span / 2);
  }
  // Any point with a key in [first_key, last_key] closer than the radius?
  bool run_has_neighbour(std::int64_t first_key, std::int64_t last_key, const Eigen::Vector3d& query) const {
    auto it = std::lower_bound(entries_.begin(), entries_.end(), first_key,
                               [](const Entry& e, std::int64_t k) { return e.key < k; });
    for (; it != entries_.end() && it->key <= last_key; ++it)
      if ((it->point - query).squaredNorm() < radius_ * radius_) return true;
    return false;
  }

  double radius_;
  std::vector<Entry> entries_;  // sorted by key
};

// Share of `queries` that have a point of `grid` within its radius.
inline double share_within(const Eigen::Matrix3Xd& queries, const RadiusGrid& grid) {
  std::int64_t hits = 0;
#pragma omp parallel for reduction(+ : hits) schedule(static)
  for (Eigen::Index i = 0; i < queries.cols(); ++i) hits += grid.has_neighbour(queries.col(i)) ? 1 : 0;
  return static_cast<double>(hits) / static_cast<double>(queries.cols());
}

}  // namespace detail

struct FScore {
  double precision = 0, recall = 0, fscore = 0;
};

// FreiHAND F-score at `threshold_m` metres (5 mm = 0.005, 15 mm = 0.015); a point counts
// when its nearest neighbour in the other set is strictly closer than the threshold.
inline FScore fscore(const Points& pred, const Points& gt, double threshold_m) {
  if (pred.size() == 0 || gt.size() == 0) throw ShapeError("fscore: empty point set");
  if (!(threshold_m > 0) || !std::isfinite(threshold_m)) throw ValueError("fscore: threshold must be positive");
  const Eigen::Matrix3Xd p = pred.to_double(), g = gt.to_double();
  if (!p.allFinite() || !g.allFinite()) throw ValueError("fscore: non-finite coordinates");
  FScore result;
  result.precision = detail::share_within(p, detail::RadiusGrid(g, threshold_m));
  result.recall = detail::share_within(g, detail::RadiusGrid(p, threshold_m));
  const double sum = result.precision + result.recall;
  result.fscore = sum > 0 ? 2 * result.precision * result.recall / sum : 0.0;
  return result;
}

// Collects per-sample values under metric names and reports their means.
class MetricAccumulator {
 public:
  void add(const std::string& metric, double value) {
    Sum& sum = sums_[metric];
    sum.total += value;
    sum.count += 1;
  }
  std::int64_t count(const std::string& metric) const {
    auto it = sums_.find(metric);
    return it == sums_.end() ? 0 : it->second.count;
  }
  // ValueError for a metric that received no samples.
  double mean(const std::string& metric) const {
    auto it = sums_.find(metric);
    if (it == sums_.end() || it->second.count == 0) throw ValueError("MetricAccumulator: no samples for \"" + metric + "\"");
    return it->second.total / static_cast<double>(it->second.count);
  }
  // Every metric's mean, by name.
  std::map<std::string, double> means() const {
    std::map<std::string, double> out;
    for (const auto& [metric, sum] : sums_) out[metric] = sum.total / static_cast<double>(sum.count);
    return out;
  }

 private:
  struct Sum {
    double total = 0;
    std::int64_t count = 0;
  };
  std::map<std::string, Sum> sums_;
};

// Mean of metric(pred[i], gt[i]) over a batch, e.g. batch_mean(preds, gts, pa_mpjpe).
template <class PointSet, class Metric>
double batch_mean(const std::vector<PointSet>& pred, const std::vector<PointSet>& gt, Metric metric) {
  if (pred.size() != gt.size() || pred.empty())
    throw ShapeError("batch_mean: " + std::to_string(pred.size()) + " predictions for " + std::to_string(gt.size()) +
                     " ground truths");
  double total = 0;
  for (std::size_t i = 0; i < pred.size(); ++i) total += metric(pred[i], gt[i]);
  return total / static_cast<double>(pred.size());
}

}  // namespace metro::eval
