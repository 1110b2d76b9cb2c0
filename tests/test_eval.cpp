#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <numbers>
#include <type_traits>
#include <vector>

#include "metro/core/eigen.hpp"  // first: Eigen's core under its pragmas
#include "metro/core/random.hpp"
#include "metro/eval/metrics.hpp"

#include <Eigen/Geometry>  // independent references: AngleAxisd and JacobiSVD
#include <Eigen/SVD>

using namespace metro::eval;
using metro::Mat3d;
using metro::Vec3d;
using Vector3f = metro::Vec3f;

namespace {

// `count` points with coordinates drawn from N(0, spread^2) (metres), z = 0 when `planar`.
template <class Point = Vector3f>
std::vector<Point> random_points(metro::Generator& rng, int count, double spread, bool planar = false) {
  using Scalar = std::decay_t<decltype(Point().x())>;
  std::vector<Point> points;
  for (int i = 0; i < count; ++i) {
    const double x = spread * rng.normal(), y = spread * rng.normal(), z = planar ? 0.0 : spread * rng.normal();
    points.emplace_back(static_cast<Scalar>(x), static_cast<Scalar>(y), static_cast<Scalar>(z));
  }
  return points;
}

Vec3d random_axis(metro::Generator& rng) { return Vec3d(rng.normal(), rng.normal(), rng.normal()).normalized(); }

// The rotation by `angle` about the unit `axis`, built by Eigen as an independent reference.
Mat3d axis_angle(double angle, const Vec3d& axis) {
  const Eigen::Matrix3d r = Eigen::AngleAxisd(angle, Eigen::Vector3d(axis.x(), axis.y(), axis.z())).toRotationMatrix();
  Mat3d out;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) out(i, j) = r(i, j);
  return out;
}

double frobenius(const Mat3d& m) {
  double sum = 0;
  for (int i = 0; i < 3; ++i) sum += m.row(i).squaredNorm();
  return std::sqrt(sum);
}

std::vector<Vector3f> transformed(const std::vector<Vector3f>& points, double scale, const Mat3d& rotation,
                                  const Vec3d& translation) {
  std::vector<Vector3f> out;
  for (const Vector3f& p : points) out.push_back((scale * (rotation * p.cast<double>()) + translation).cast<float>());
  return out;
}

Eigen::Matrix3Xd to_eigen(const std::vector<Vec3d>& points) {
  Eigen::Matrix3Xd out(3, static_cast<Eigen::Index>(points.size()));
  for (std::size_t i = 0; i < points.size(); ++i)
    out.col(static_cast<Eigen::Index>(i)) = Eigen::Vector3d(points[i].x(), points[i].y(), points[i].z());
  return out;
}

// det(V U^T) for the SVD U S V^T of sum_i (x_i - mean_x)(y_i - mean_y)^T: negative when the
// best orthogonal map without Umeyama's reflection fix would be a reflection.
double plain_svd_determinant(const std::vector<Vec3d>& source, const std::vector<Vec3d>& target) {
  const Eigen::Matrix3Xd x = to_eigen(source), y = to_eigen(target);
  const Eigen::Matrix3d cross = (x.colwise() - x.rowwise().mean()) * (y.colwise() - y.rowwise().mean()).transpose();
  const Eigen::JacobiSVD<Eigen::Matrix3d> svd(cross, Eigen::ComputeFullU | Eigen::ComputeFullV);
  return (svd.matrixV() * svd.matrixU().transpose()).determinant();
}

// Umeyama's solution written out with Eigen's SVD (the library's earlier implementation),
// as an independent reference: (s, R, t) in a 3 x 4 matrix [s R | t].
Eigen::Matrix<double, 3, 4> umeyama_reference(const std::vector<Vec3d>& source, const std::vector<Vec3d>& target) {
  const Eigen::Matrix3Xd x = to_eigen(source), y = to_eigen(target);
  const Eigen::Vector3d mean_x = x.rowwise().mean(), mean_y = y.rowwise().mean();
  const Eigen::Matrix3Xd x0 = x.colwise() - mean_x, y0 = y.colwise() - mean_y;
  const Eigen::JacobiSVD<Eigen::Matrix3d> svd(x0 * y0.transpose(), Eigen::ComputeFullU | Eigen::ComputeFullV);
  Eigen::Vector3d d = Eigen::Vector3d::Ones();
  if ((svd.matrixV() * svd.matrixU().transpose()).determinant() < 0) d.z() = -1;  // the reflection fix
  const Eigen::Matrix3d rotation = svd.matrixV() * d.asDiagonal() * svd.matrixU().transpose();
  const double scale = svd.singularValues().dot(d) / x0.squaredNorm();
  Eigen::Matrix<double, 3, 4> out;
  out << scale * rotation, mean_y - scale * rotation * mean_x;
  return out;
}

// Brute-force F-score, the definition written out, to check the grid search.
FScore brute_force_fscore(const std::vector<Vector3f>& pred, const std::vector<Vector3f>& gt, float threshold) {
  const auto share = [threshold](const std::vector<Vector3f>& from, const std::vector<Vector3f>& to) {
    int hits = 0;
    for (const Vector3f& p : from) {
      float nearest = INFINITY;
      for (const Vector3f& q : to) nearest = std::min(nearest, (p - q).norm());
      hits += nearest < threshold;
    }
    return static_cast<double>(hits) / static_cast<double>(from.size());
  };
  FScore f{share(pred, gt), share(gt, pred), 0};
  f.fscore = f.precision + f.recall > 0 ? 2 * f.precision * f.recall / (f.precision + f.recall) : 0;
  return f;
}

// A flat 20 mm grid of nx * ny points in the z = 0 plane.
std::vector<Vector3f> grid_points(int nx, int ny) {
  std::vector<Vector3f> points;
  for (int x = 0; x < nx; ++x)
    for (int y = 0; y < ny; ++y) points.emplace_back(0.02f * static_cast<float>(x), 0.02f * static_cast<float>(y), 0.f);
  return points;
}

}  // namespace

TEST_CASE("mpjpe: a global offset is removed by the pelvis; one displaced joint counts once") {
  metro::Generator rng(1);
  const std::vector<Vector3f> gt = random_points(rng, 14, 0.4);
  CHECK(mpjpe(transformed(gt, 1, Mat3d::Identity(), {0.3, -1.0, 4.0}), gt) < 1e-3);
  std::vector<Vector3f> pred = gt;
  pred[0] += Vector3f(0.03f, 0.04f, 0.f);  // 50 mm on the right ankle
  CHECK(mpjpe(pred, gt) == doctest::Approx(50.0 / 14).epsilon(1e-5));
  pred = gt;
  pred[2] += Vector3f(0.f, 0.f, 0.028f);  // right hip: moves the pelvis by 14 mm too
  // 13 joints are 14 mm off after re-centring, the hip itself 28 - 14 = 14 mm: every joint 14 mm.
  CHECK(mpjpe(pred, gt) == doctest::Approx(14.0).epsilon(1e-5));
  CHECK_THROWS_AS(mpjpe(std::vector<Vector3f>(13), std::vector<Vector3f>(13)), metro::ShapeError);
}

TEST_CASE("pa-mpjpe: zero under random similarity transforms, including rotations near 180 degrees") {
  metro::Generator rng(7);
  const double pi = std::numbers::pi;
  const double angles[] = {0.3, 2.0, pi - 1e-3, pi - 1e-6, pi, -pi + 1e-4};
  for (double angle : angles) {
    for (int trial = 0; trial < 4; ++trial) {
      const std::vector<Vector3f> gt = random_points(rng, 14, 0.3);
      const Mat3d rotation = axis_angle(angle, random_axis(rng));
      const double scale = rng.uniform(0.5, 2.0);
      const Vec3d translation(rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5), rng.uniform(0.0, 0.5));
      const std::vector<Vector3f> pred = transformed(gt, scale, rotation, translation);
      CAPTURE(angle);
      CAPTURE(scale);
      CHECK(pa_mpjpe(pred, gt) < 1e-4);
      const SimilarityTransform t = similarity_transform(pred, gt);
      CHECK(t.scale == doctest::Approx(1 / scale).epsilon(1e-5));
      CHECK(frobenius(t.rotation * rotation - Mat3d::Identity()) < 1e-5);
    }
  }
}

TEST_CASE("pa-mpjpe: a mirrored skeleton is matched by a proper rotation, not a reflection") {
  // Non-planar points mirrored in x: no rotation undoes a reflection, so the error stays.
  const std::vector<Vector3f> gt = {{0, 0, 0}, {0.1f, 0, 0}, {0, 0.2f, 0}, {0, 0, 0.3f}, {0.05f, 0.07f, 0.11f}};
  std::vector<Vector3f> mirrored = gt;
  for (Vector3f& p : mirrored) p.x() = -p.x();
  const SimilarityTransform t = similarity_transform(mirrored, gt);
  CHECK(t.rotation.determinant() == doctest::Approx(1.0));
  CHECK(frobenius(t.rotation.transpose() * t.rotation - Mat3d::Identity()) < 1e-12);
  // Reference value from a NumPy port of the official compute_similarity_transform.
  CHECK(procrustes_aligned_error(mirrored, gt) == doctest::Approx(55.867033795392).epsilon(1e-6));
  CHECK(t.scale == doctest::Approx(0.8969673917419675).epsilon(1e-6));
  // A planar set mirrored in-plane is a 180-degree turn about the plane's y axis: error 0.
  std::vector<Vector3f> planar = gt;
  for (Vector3f& p : planar) p.z() = 0;
  std::vector<Vector3f> planar_mirrored = planar;
  for (Vector3f& p : planar_mirrored) p.x() = -p.x();
  CHECK(procrustes_aligned_error(planar_mirrored, planar) < 1e-4);
}

TEST_CASE("pa: collapsed predictions map onto the target centroid") {
  const std::vector<Vector3f> gt = {{0, 0, 0}, {0.1f, 0, 0}, {0, 0.1f, 0}};
  const std::vector<Vector3f> collapsed(3, Vector3f(5, 5, 5));
  const SimilarityTransform t = similarity_transform(collapsed, gt);
  CHECK(t.scale == 0);
  CHECK(t.rotation == Mat3d::Identity());  // as the SVD of the zero cross-covariance gave
  const std::vector<Vector3f> aligned = similarity_align(collapsed, gt);
  REQUIRE(aligned.size() == 3);
  for (const Vector3f& p : aligned) CHECK((p - Vector3f(0.1f / 3, 0.1f / 3, 0)).norm() < 1e-7f);
}

TEST_CASE("procrustes: recovers a known similarity (s, R, t) to 1e-9, planar and in-plane mirrored sets included") {
  metro::Generator rng(13);
  const double pi = std::numbers::pi;
  const Mat3d mirror_x = Mat3d::Diagonal({-1, 1, 1});
  int plain_svd_reflections = 0;
  for (int trial = 0; trial < 50; ++trial) {
    // 0: general 3D set; 1: planar (z = 0); 2: planar and mirrored in its plane (x -> -x), which
    // a reflection and the 180-degree turn about y fit equally well: only det(R) = +1 decides.
    const int kind = trial % 3;
    const int count = 3 + trial % 17;
    const std::vector<Vec3d> source = random_points<Vec3d>(rng, count, 0.3, kind != 0);
    const Mat3d rotation = axis_angle(rng.uniform(-pi, pi), random_axis(rng));
    const double scale = rng.uniform(0.5, 2.0);
    const Vec3d translation(rng.normal(), rng.normal(), rng.normal());
    const Mat3d applied = kind == 2 ? rotation * mirror_x : rotation;
    const Mat3d expected = kind == 2 ? rotation * axis_angle(pi, Vec3d::UnitY()) : rotation;
    std::vector<Vec3d> target;
    for (const Vec3d& x : source) target.push_back(scale * (applied * x) + translation);
    const SimilarityTransform t = similarity_transform(source, target);
    CAPTURE(trial);
    CAPTURE(count);
    CHECK(std::abs(t.scale - scale) < 1e-9);
    CHECK(frobenius(t.rotation - expected) < 1e-9);
    CHECK((t.translation - translation).norm() < 1e-9);
    CHECK(std::abs(t.rotation.determinant() - 1) < 1e-12);
    CHECK(frobenius(t.rotation.transpose() * t.rotation - Mat3d::Identity()) < 1e-12);
    if (kind != 0) plain_svd_reflections += plain_svd_determinant(source, target) < 0;
  }
  MESSAGE("planar sets where plain SVD (no reflection fix) returns a reflection: " << plain_svd_reflections << " of 33");
  CHECK(plain_svd_reflections > 0);  // the reflection case was exercised
  CHECK_THROWS_AS(similarity_transform(std::vector<Vec3d>(3), std::vector<Vec3d>(4)), metro::ShapeError);
}

TEST_CASE("procrustes: the same optimum as Umeyama's SVD solution on noisy and mirrored 3D sets") {
  metro::Generator rng(17);
  for (int trial = 0; trial < 40; ++trial) {
    const bool mirrored = trial % 2 == 1;  // no rotation fits: plain SVD's optimum is a reflection
    const std::vector<Vec3d> source = random_points<Vec3d>(rng, 4 + trial, 0.3);
    const Mat3d rotation = axis_angle(rng.uniform(-3.0, 3.0), random_axis(rng));
    const double scale = rng.uniform(0.5, 2.0);
    std::vector<Vec3d> target;
    for (const Vec3d& x : source) {
      const Vec3d y = mirrored ? Vec3d(-x.x(), x.y(), x.z()) : x;
      target.push_back(scale * (rotation * y) + Vec3d(0.1, -0.2, 3.0) + Vec3d(rng.normal(), rng.normal(), rng.normal()) * 0.02);
    }
    const SimilarityTransform t = similarity_transform(source, target);
    const Eigen::Matrix<double, 3, 4> reference = umeyama_reference(source, target);
    const double reference_scale = reference.col(0).norm();
    CAPTURE(trial);
    CHECK(t.scale == doctest::Approx(reference_scale).epsilon(1e-9));
    for (int i = 0; i < 3; ++i) {
      CHECK(t.translation[i] == doctest::Approx(reference(i, 3)).epsilon(1e-9));
      for (int j = 0; j < 3; ++j) CHECK(std::abs(t.rotation(i, j) - reference(i, j) / reference_scale) < 1e-9);
    }
    CHECK(std::abs(t.rotation.determinant() - 1) < 1e-12);
    if (mirrored) CHECK(plain_svd_determinant(source, target) < 0);
  }
}

TEST_CASE("mpve and pa-mpvpe") {
  metro::Generator rng(3);
  const std::vector<Vector3f> gt_vertices = random_points(rng, 431, 0.3);
  const std::vector<Vector3f> gt_joints = random_points(rng, 14, 0.3);
  std::vector<Vector3f> pred_vertices = gt_vertices;
  for (Vector3f& v : pred_vertices) v.z() += 0.01f;  // every vertex 10 mm off, pelvis unchanged
  CHECK(mpve(pred_vertices, gt_vertices, gt_joints, gt_joints) == doctest::Approx(10.0).epsilon(1e-4));
  // The same offset applied to the predicted joints cancels.
  const std::vector<Vector3f> pred_joints = transformed(gt_joints, 1, Mat3d::Identity(), {0, 0, 0.01});
  CHECK(mpve(pred_vertices, gt_vertices, pred_joints, gt_joints) < 1e-3);
  CHECK(mpve(pred_vertices, gt_vertices, Vector3f::Zero(), Vector3f(0, 0, 0.02f)) == doctest::Approx(30.0).epsilon(1e-4));
  const Mat3d rotation = axis_angle(2.5, Vec3d::UnitY());
  CHECK(pa_mpvpe(transformed(gt_vertices, 1.3, rotation, {0.1, 0.2, 3}), gt_vertices) < 1e-4);
  CHECK_THROWS_AS(mpve(pred_vertices, gt_joints, gt_joints, gt_joints), metro::ShapeError);
}

TEST_CASE("points view: a vector of Vec3f and a row-major (N, 3) float array agree") {
  metro::Generator rng(5);
  const std::vector<Vector3f> pred = random_points(rng, 14, 0.3), gt = random_points(rng, 14, 0.3);
  std::vector<float> pred_rows;  // (14, 3), row-major
  for (const Vector3f& p : pred) pred_rows.insert(pred_rows.end(), {p.x(), p.y(), p.z()});
  const Points view(pred_rows.data(), 14);
  CHECK(view.size() == 14);
  CHECK(view[13] == pred[13]);
  const double expected = pa_mpjpe(pred, gt);
  CHECK(expected > 10);
  CHECK(pa_mpjpe(view, gt) == expected);
  CHECK(pa_mpjpe({pred_rows.data(), 14}, gt) == expected);
  CHECK(Points(std::vector<Vector3f>{}).size() == 0);
  CHECK_THROWS_AS(Points(pred_rows.data(), -1), metro::ShapeError);
  CHECK_THROWS_AS(pa_mpjpe({pred_rows.data(), 13}, gt), metro::ShapeError);
}

TEST_CASE("f-score: identical sets score 1, a known shift scores as hand-computed") {
  const std::vector<Vector3f> gt = grid_points(30, 30);  // 20 mm spacing
  const FScore same = fscore(gt, gt, 0.005);
  CHECK(same.precision == 1.0);
  CHECK(same.recall == 1.0);
  CHECK(same.fscore == 1.0);
  // Shifted by 10 mm in z: nearest neighbour is exactly 10 mm away.
  const std::vector<Vector3f> shifted = transformed(gt, 1, Mat3d::Identity(), {0, 0, 0.01});
  CHECK(fscore(shifted, gt, 0.005).fscore == 0.0);
  CHECK(fscore(shifted, gt, 0.015).fscore == 1.0);
  // Half the points shifted: precision = recall = 1/2 at 5 mm, F = 1/2.
  std::vector<Vector3f> half = gt;
  for (std::size_t i = 0; i < half.size(); i += 2) half[i].z() += 0.01f;
  const FScore f = fscore(half, gt, 0.005);
  CHECK(f.precision == 0.5);
  CHECK(f.recall == 0.5);
  CHECK(f.fscore == doctest::Approx(0.5));
  // Precision and recall differ: 100 extra far-away predictions only hurt precision.
  std::vector<Vector3f> extra = gt;
  for (int i = 0; i < 100; ++i) extra.emplace_back(5.f + 0.02f * static_cast<float>(i), 5.f, 5.f);
  const FScore g = fscore(extra, gt, 0.005);
  CHECK(g.precision == doctest::Approx(900.0 / 1000));
  CHECK(g.recall == 1.0);
  CHECK(g.fscore == doctest::Approx(2 * 0.9 / 1.9));
}

TEST_CASE("f-score: the grid search matches brute force on 7000 random points") {
  metro::Generator rng(11);
  const std::vector<Vector3f> gt = random_points(rng, 7000, 0.1);
  std::vector<Vector3f> pred = gt;
  for (Vector3f& p : pred) p += Vector3f(rng.normal<float>(), rng.normal<float>(), rng.normal<float>()) * 0.004f;
  for (double threshold : {0.005, 0.015}) {
    const auto start = std::chrono::steady_clock::now();
    const FScore fast = fscore(pred, gt, threshold);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    MESSAGE("fscore on 7000 x 7000 points at " << threshold * 1000 << " mm: " << ms << " ms, F = " << fast.fscore);
    const FScore slow = brute_force_fscore(pred, gt, static_cast<float>(threshold));
    CHECK(fast.precision == doctest::Approx(slow.precision).epsilon(1e-3));
    CHECK(fast.recall == doctest::Approx(slow.recall).epsilon(1e-3));
    CHECK(fast.fscore > 0.3);
    CHECK(fast.fscore < 1.0);
  }
}

TEST_CASE("f-score: rejects empty sets, bad thresholds and non-finite points") {
  const std::vector<Vector3f> points = grid_points(2, 2);
  CHECK_THROWS_AS(fscore(std::vector<Vector3f>{}, points, 0.005), metro::ShapeError);
  CHECK_THROWS_AS(fscore(points, points, 0.0), metro::ValueError);
  std::vector<Vector3f> bad = points;
  bad[0].x() = NAN;
  CHECK_THROWS_AS(fscore(bad, points, 0.005), metro::ValueError);
  // Points far beyond the grid's clamped range still count correctly.
  const std::vector<Vector3f> far = {{1e9f, 0, 0}, {-1e9f, 0, 0}};
  CHECK(fscore(far, far, 0.005).fscore == 1.0);
}

TEST_CASE("metric accumulator and batch means") {
  MetricAccumulator metrics;
  metrics.add("mpjpe", 10);
  metrics.add("mpjpe", 20);
  metrics.add("pa_mpjpe", 4);
  CHECK(metrics.mean("mpjpe") == 15.0);
  CHECK(metrics.count("mpjpe") == 2);
  CHECK(metrics.count("f@5") == 0);
  CHECK(metrics.means() == std::map<std::string, double>{{"mpjpe", 15.0}, {"pa_mpjpe", 4.0}});
  CHECK_THROWS_AS(metrics.mean("f@5"), metro::ValueError);

  metro::Generator rng(2);
  const std::vector<Vector3f> gt = random_points(rng, 14, 0.3);
  std::vector<Vector3f> off = gt;
  off[0] += Vector3f(0.014f, 0, 0);  // 1 mm MPJPE
  const std::vector<std::vector<Vector3f>> preds = {gt, off}, gts = {gt, gt};
  CHECK(batch_mean(preds, gts, mpjpe) == doctest::Approx(0.5).epsilon(1e-4));
  CHECK_THROWS_AS(batch_mean(preds, std::vector<std::vector<Vector3f>>{gt}, mpjpe), metro::ShapeError);
}
