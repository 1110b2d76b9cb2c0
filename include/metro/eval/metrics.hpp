#pragma once
// Evaluation metrics of the paper (Sec. 4.2). Inputs are in metres, results in millimetres.
//
//   MPJPE     mean per-joint error after subtracting each skeleton's pelvis
//             (mid-point of joints 2 and 3 in the 14-joint order: 0 r-ankle, 1 r-knee,
//             2 r-hip, 3 l-hip, 4 l-knee, 5 l-ankle, 6 r-wrist, 7 r-elbow, 8 r-shoulder,
//             9 l-shoulder, 10 l-elbow, 11 l-wrist, 12 neck, 13 head top).
//   PA-MPJPE  mean per-joint error after a per-sample similarity Procrustes alignment.
//   MPVE      mean per-vertex error after subtracting a pelvis from each mesh: the
//             mid-hip of its regressed 14 joints, or passed explicitly (train/evaluate.hpp
//             centres both meshes on theirs). The official evaluation uses the pelvis row of
//             the H36M 17-joint regressor instead; a 14-joint regressor has no such row, and
//             the mid-hip is the same point up to the regressor.
//   PA-MPVPE  mean per-vertex error after similarity Procrustes alignment.
//   F-score   FreiHAND: precision = share of predicted points within d of the nearest
//             ground-truth point, recall = the converse, F = 2PR / (P + R).
//             (FreiHAND evaluates it on Procrustes-aligned predictions: pass similarity_align(pred, gt).)
//
// Plain loops over metro::Vec3d: no Eigen, so this header costs little to compile.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "metro/core/error.hpp"
#include "metro/core/vec.hpp"

namespace metro::eval {

// A read-only view of N points, without copying: a std::vector<Vec3f>, or a row-major
// (N, 3) float array (the memory layout of an (N, 3) tensor or a std::vector<Vec3f>).
// It must not outlive the data it views.
class Points {
 public:
  Points(const std::vector<Vec3f>& points)
      : data_(points.empty() ? nullptr : points.front().data()), size_(static_cast<std::int64_t>(points.size())) {}
  Points(const float* data, std::int64_t n) : data_(data), size_(n) {
    if (n < 0) throw ShapeError("Points: negative point count " + std::to_string(n));
  }

  std::int64_t size() const noexcept { return size_; }
  Vec3f operator[](std::int64_t i) const {
    const float* p = data_ + 3 * i;
    return {p[0], p[1], p[2]};
  }
  std::vector<Vec3d> to_double() const {
    std::vector<Vec3d> out(static_cast<std::size_t>(size_));
    for (std::int64_t i = 0; i < size_; ++i) out[static_cast<std::size_t>(i)] = (*this)[i].cast<double>();
    return out;
  }

 private:
  const float* data_;  // (size_, 3), row-major
  std::int64_t size_;
};

inline constexpr double metres_to_mm = 1000.0;
inline constexpr int num_joints = 14;
inline constexpr int right_hip = 2, left_hip = 3;

namespace detail {

inline void check_same_size(std::size_t pred, std::size_t gt, const char* metric) {
  if (pred != gt)
    throw ShapeError(std::string(metric) + ": prediction has " + std::to_string(pred) + " points, ground truth has " +
                     std::to_string(gt));
  if (pred == 0) throw ShapeError(std::string(metric) + ": no points");
}
inline void check_same_size(const Points& pred, const Points& gt, const char* metric) {
  check_same_size(static_cast<std::size_t>(pred.size()), static_cast<std::size_t>(gt.size()), metric);
}

inline void check_joints(const Points& joints, const char* metric) {
  if (joints.size() != num_joints)
    throw ShapeError(std::string(metric) + ": expected 14 joints, got " + std::to_string(joints.size()));
}

// Mean Euclidean distance in mm between matching points of a and b (N each), each set
// first moved by -origin.
inline double mean_distance_mm(const std::vector<Vec3d>& a, const std::vector<Vec3d>& b,
                               const Vec3d& a_origin = Vec3d::Zero(), const Vec3d& b_origin = Vec3d::Zero()) {
  double total = 0;
  for (std::size_t i = 0; i < a.size(); ++i) total += ((a[i] - a_origin) - (b[i] - b_origin)).norm();
  return total / static_cast<double>(a.size()) * metres_to_mm;
}

inline Vec3d centroid(const std::vector<Vec3d>& points) {
  Vec3d sum = Vec3d::Zero();
  for (const Vec3d& p : points) sum += p;
  return sum / static_cast<double>(points.size());
}

// Unit eigenvector of the largest eigenvalue of a symmetric 4 x 4 matrix, by cyclic
// Jacobi rotations (Golub & Van Loan, Matrix Computations, Sec. 8.5): each rotation
// J(p, q) zeroes a(p, q) in a <- J^T a J; the columns of v = product of the J converge
// to the eigenvectors and diag(a) to the eigenvalues.
inline Vec4d top_eigenvector(Mat4d a) {
  Mat4d v = Mat4d::Identity();
  for (int sweep = 0; sweep < 64; ++sweep) {
    double off = 0, total = 0;  // squared Frobenius norms of the off-diagonal part and of a
    for (int p = 0; p < 4; ++p)
      for (int q = 0; q < 4; ++q) (p == q ? total : off) += a(p, q) * a(p, q);
    if (!(off > 1e-32 * (total + off))) break;  // converged to rounding (or a is 0)
    for (int p = 0; p < 3; ++p)
      for (int q = p + 1; q < 4; ++q) {
        if (a(p, q) == 0) continue;
        // tan of the rotation angle, the smaller root of t^2 + 2 theta t - 1 = 0.
        const double theta = (a(q, q) - a(p, p)) / (2 * a(p, q));
        const double t = std::copysign(1.0, theta) / (std::abs(theta) + std::hypot(1.0, theta));
        const double c = 1 / std::hypot(1.0, t), s = t * c;
        for (int k = 0; k < 4; ++k) {  // columns p, q of a and v
          const double akp = a(k, p), akq = a(k, q), vkp = v(k, p), vkq = v(k, q);
          a(k, p) = c * akp - s * akq, a(k, q) = s * akp + c * akq;
          v(k, p) = c * vkp - s * vkq, v(k, q) = s * vkp + c * vkq;
        }
        for (int k = 0; k < 4; ++k) {  // rows p, q of a
          const double apk = a(p, k), aqk = a(q, k);
          a(p, k) = c * apk - s * aqk, a(q, k) = s * apk + c * aqk;
        }
        a(p, q) = a(q, p) = 0;  // zero by construction; drop the rounding residue
      }
  }
  int top = 0;
  for (int k = 1; k < 4; ++k)
    if (a(k, k) > a(top, top)) top = k;
  return v.col(top).normalized();
}

// The rotation matrix of a unit quaternion (w, x, y, z): p -> q p q*.
inline Mat3d rotation_of(const Vec4d& q) {
  const double w = q[0], x = q[1], y = q[2], z = q[3];
  Mat3d r;
  r.rows[0] = {1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)};
  r.rows[1] = {2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)};
  r.rows[2] = {2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)};
  return r;
}

// The rotation R maximising trace(R m) = sum_i (y_i - mean_y) . R (x_i - mean_x), given the
// cross-covariance m = sum_i (x_i - mean_x)(y_i - mean_y)^T (Horn, "Closed-form solution of
// absolute orientation using unit quaternions", JOSA A 4(4), 1987): the unit quaternion of R
// is the top eigenvector of the symmetric 4 x 4 matrix below. Always a proper rotation
// (det +1), the same optimum as Umeyama's SVD with its reflection fix.
inline Mat3d best_rotation(const Mat3d& m) {
  const double xx = m(0, 0), xy = m(0, 1), xz = m(0, 2), yx = m(1, 0), yy = m(1, 1), yz = m(1, 2), zx = m(2, 0),
               zy = m(2, 1), zz = m(2, 2);
  Mat4d n;
  n.rows[0] = {xx + yy + zz, yz - zy, zx - xz, xy - yx};
  n.rows[1] = {yz - zy, xx - yy - zz, xy + yx, zx + xz};
  n.rows[2] = {zx - xz, xy + yx, -xx + yy - zz, yz + zy};
  n.rows[3] = {xy - yx, zx + xz, yz + zy, -xx - yy + zz};
  return rotation_of(top_eigenvector(n));
}

}  // namespace detail

// Mid-point of the two hips of a 14-joint skeleton.
inline Vec3f pelvis(const Points& joints) {
  detail::check_joints(joints, "pelvis");
  return 0.5f * (joints[right_hip] + joints[left_hip]);
}

// s * R * p + t, the similarity that best maps one point set onto another.
struct SimilarityTransform {
  double scale = 1.0;
  Mat3d rotation = Mat3d::Identity();
  Vec3d translation = Vec3d::Zero();

  Vec3d apply(const Vec3d& point) const { return scale * (rotation * point) + translation; }
  std::vector<Vec3d> apply(const std::vector<Vec3d>& points) const {
    std::vector<Vec3d> out;
    out.reserve(points.size());
    for (const Vec3d& p : points) out.push_back(apply(p));
    return out;
  }
};

// Least-squares similarity transform from `source` to `target` (N points each, N >= 1),
// minimising sum_i |s R x_i + t - y_i|^2 over s, R in SO(3), t (Umeyama, IEEE TPAMI 13(4),
// 1991): R from Horn's quaternion method, then s = sum_i (y_i - mean_y) . R (x_i - mean_x) /
// sum_i |x_i - mean_x|^2 and t = mean_y - s R mean_x. When all source points are equal,
// s = 0: the best fit collapses them onto the target mean.
inline SimilarityTransform similarity_transform(const std::vector<Vec3d>& source, const std::vector<Vec3d>& target) {
  detail::check_same_size(source.size(), target.size(), "similarity_transform");
  const Vec3d source_mean = detail::centroid(source), target_mean = detail::centroid(target);
  Mat3d cross = Mat3d::Zero();  // sum_i (x_i - mean_x)(y_i - mean_y)^T
  double source_variance = 0;   // sum_i |x_i - mean_x|^2
  for (std::size_t i = 0; i < source.size(); ++i) {
    const Vec3d x0 = source[i] - source_mean;
    cross += outer(x0, target[i] - target_mean);
    source_variance += x0.squaredNorm();
  }
  SimilarityTransform result;
  result.rotation = detail::best_rotation(cross);
  result.scale = source_variance > 0 ? (result.rotation * cross).trace() / source_variance : 0.0;
  result.translation = target_mean - result.scale * (result.rotation * source_mean);
  return result;
}

inline SimilarityTransform similarity_transform(const Points& source, const Points& target) {
  return similarity_transform(source.to_double(), target.to_double());
}

// `pred` (N points, metres) mapped onto `gt` by the best similarity transform.
inline std::vector<Vec3f> similarity_align(const Points& pred, const Points& gt) {
  const std::vector<Vec3d> source = pred.to_double();
  const SimilarityTransform transform = similarity_transform(source, gt.to_double());
  std::vector<Vec3f> out;
  out.reserve(source.size());
  for (const Vec3d& p : source) out.push_back(transform.apply(p).cast<float>());
  return out;
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
  const std::vector<Vec3d> source = pred.to_double(), target = gt.to_double();
  return detail::mean_distance_mm(similarity_transform(source, target).apply(source), target);
}

inline double pa_mpjpe(const Points& pred_joints, const Points& gt_joints) {
  detail::check_joints(pred_joints, "pa_mpjpe");
  return procrustes_aligned_error(pred_joints, gt_joints);
}

inline double pa_mpvpe(const Points& pred_vertices, const Points& gt_vertices) {
  return procrustes_aligned_error(pred_vertices, gt_vertices);
}

// MPVE in mm: each mesh translated by its own (given) pelvis position.
inline double mpve(const Points& pred_vertices, const Points& gt_vertices, const Vec3f& pred_pelvis,
                   const Vec3f& gt_pelvis) {
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
  RadiusGrid(const std::vector<Vec3d>& points, double radius) : radius_(radius) {
    entries_.reserve(points.size());
    for (const Vec3d& p : points) entries_.push_back({key(cell_of(p)), p});
    std::sort(entries_.begin(), entries_.end(), [](const Entry& a, const Entry& b) { return a.key < b.key; });
  }

  // True when some point lies strictly closer than `radius` to `query`.
  bool has_neighbour(const Vec3d& query) const {
    const Vec3i centre = cell_of(query);
    for (int dx = -1; dx <= 1; ++dx)
      for (int dy = -1; dy <= 1; ++dy) {
        const Vec3i column = centre + Vec3i(dx, dy, 0);
        if (run_has_neighbour(key(column - Vec3i(0, 0, 1)), key(column + Vec3i(0, 0, 1)), query)) return true;
      }
    return false;
  }

 private:
  struct Entry {
    std::int64_t key;
    Vec3d point;
  };

  Vec3i cell_of(const Vec3d& p) const {
    // Clamped so absurd coordinates cannot overflow; clamping only merges far cells,
    // which costs extra distance checks but never misses a neighbour.
    Vec3i cell;
    for (int k = 0; k < 3; ++k) cell[k] = static_cast<int>(std::clamp(std::floor(p[k] / radius_), -1e6, 1e6));
    return cell;
  }
  static std::int64_t key(const Vec3i& c) {
    constexpr std::int64_t span = 2'000'003;  // > 2e6 + 2 cells per axis
    return ((static_cast<std::int64_t>(c.x()) + span / 2) * span + (c.y() + span / 2)) * span + (c.z() + span / 2);
  }
  // Any point with a key in [first_key, last_key] closer than the radius?
  bool run_has_neighbour(std::int64_t first_key, std::int64_t last_key, const Vec3d& query) const {
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
inline double share_within(const std::vector<Vec3d>& queries, const RadiusGrid& grid) {
  const auto n = static_cast<std::int64_t>(queries.size());
  std::int64_t hits = 0;
#pragma omp parallel for reduction(+ : hits) schedule(static)
  for (std::int64_t i = 0; i < n; ++i) hits += grid.has_neighbour(queries[static_cast<std::size_t>(i)]) ? 1 : 0;
  return static_cast<double>(hits) / static_cast<double>(n);
}

inline bool all_finite(const std::vector<Vec3d>& points) {
  return std::all_of(points.begin(), points.end(), [](const Vec3d& p) {
    return std::isfinite(p.x()) && std::isfinite(p.y()) && std::isfinite(p.z());
  });
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
  const std::vector<Vec3d> p = pred.to_double(), g = gt.to_double();
  if (!detail::all_finite(p) || !detail::all_finite(g)) throw ValueError("fscore: non-finite coordinates");
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
