#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <numbers>
#include <vector>

#include "metro/core/random.hpp"
#include "metro/eval/metrics.hpp"

using namespace metro::eval;
using Eigen::Vector3f;

namespace {

std::vector<Vector3f> random_points(metro::Generator& rng, int count, float spread_m) {
  std::vector<Vector3f> points;
  for (int i = 0; i < count; ++i)
    points.emplace_back(spread_m * rng.normal<float>(), spread_m * rng.normal<float>(), spread_m * rng.normal<float>());
  return points;
}

Eigen::Vector3d random_axis(metro::Generator& rng) {
  return Eigen::Vector3d(rng.normal(), rng.normal(), rng.normal()).normalized();
}

std::vector<Vector3f> transformed(const std::vector<Vector3f>& points, double scale, const Eigen::Matrix3d& rotation,
                                  const Eigen::Vector3d& translation) {
  std::vector<Vector3f> out;
  for (const Vector3f& p : points) out.push_back((scale * rotation * p.cast<double>() + translation).cast<float>());
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
  const std::vector<Vector3f> gt = random_points(rng, 14, 0.4f);
  CHECK(mpjpe(transformed(gt, 1, Eigen::Matrix3d::Identity(), {0.3, -1.0, 4.0}), gt) < 1e-3);
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
      const std::vector<Vector3f> gt = random_points(rng, 14, 0.3f);
      const Eigen::Matrix3d rotation = Eigen::AngleAxisd(angle, random_axis(rng)).toRotationMatrix();
      const double scale = rng.uniform(0.5, 2.0);
      const Eigen::Vector3d translation(rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5), rng.uniform(0.0, 0.5));
      const std::vector<Vector3f> pred = transformed(gt, scale, rotation, translation);
      CAPTURE(angle);
      CAPTURE(scale);
      CHECK(pa_mpjpe(pred, gt) < 1e-4);
      const SimilarityTransform t = similarity_transform(pred, gt);
      CHECK(t.scale == doctest::Approx(1 / scale).epsilon(1e-5));
      CHECK((t.rotation * rotation - Eigen::Matrix3d::Identity()).norm() < 1e-5);
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
  CHECK((t.rotation.transpose() * t.rotation - Eigen::Matrix3d::Identity()).norm() < 1e-12);
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
  const Eigen::Matrix3Xf aligned = similarity_align(collapsed, gt);
  CHECK(aligned.col(0).isApprox(Vector3f(0.1f / 3, 0.1f / 3, 0)));
}

TEST_CASE("mpve and pa-mpvpe") {
  metro::Generator rng(3);
  const std::vector<Vector3f> gt_vertices = random_points(rng, 431, 0.3f);
  const std::vector<Vector3f> gt_joints = random_points(rng, 14, 0.3f);
  std::vector<Vector3f> pred_vertices = gt_vertices;
  for (Vector3f& v : pred_vertices) v.z() += 0.01f;  // every vertex 10 mm off, pelvis unchanged
  CHECK(mpve(pred_vertices, gt_vertices, gt_joints, gt_joints) == doctest::Approx(10.0).epsilon(1e-4));
  // The same offset applied to the predicted joints cancels.
  const std::vector<Vector3f> pred_joints = transformed(gt_joints, 1, Eigen::Matrix3d::Identity(), {0, 0, 0.01});
  CHECK(mpve(pred_vertices, gt_vertices, pred_joints, gt_joints) < 1e-3);
  CHECK(mpve(pred_vertices, gt_vertices, Vector3f::Zero(), Vector3f(0, 0, 0.02f)) == doctest::Approx(30.0).epsilon(1e-4));
  const Eigen::Matrix3d rotation = Eigen::AngleAxisd(2.5, Eigen::Vector3d::UnitY()).toRotationMatrix();
  CHECK(pa_mpvpe(transformed(gt_vertices, 1.3, rotation, {0.1, 0.2, 3}), gt_vertices) < 1e-4);
  CHECK_THROWS_AS(mpve(pred_vertices, gt_joints, gt_joints, gt_joints), metro::ShapeError);
}

TEST_CASE("points view: vectors, 3 x N and row-major N x 3 matrices agree") {
  metro::Generator rng(5);
  const std::vector<Vector3f> pred = random_points(rng, 14, 0.3f), gt = random_points(rng, 14, 0.3f);
  Eigen::Matrix3Xf pred_columns(3, 14);
  Points::RowMajorN3 pred_rows(14, 3);
  for (int i = 0; i < 14; ++i) pred_columns.col(i) = pred[static_cast<std::size_t>(i)], pred_rows.row(i) = pred[static_cast<std::size_t>(i)].transpose();
  const double expected = pa_mpjpe(pred, gt);
  CHECK(expected > 10);
  CHECK(pa_mpjpe(pred_columns, gt) == expected);
  CHECK(pa_mpjpe(pred_rows, gt) == expected);
}

TEST_CASE("f-score: identical sets score 1, a known shift scores as hand-computed") {
  const std::vector<Vector3f> gt = grid_points(30, 30);  // 20 mm spacing
  const FScore same = fscore(gt, gt, 0.005);
  CHECK(same.precision == 1.0);
  CHECK(same.recall == 1.0);
  CHECK(same.fscore == 1.0);
  // Shifted by 10 mm in z: nearest neighbour is exactly 10 mm away.
  const std::vector<Vector3f> shifted = transformed(gt, 1, Eigen::Matrix3d::Identity(), {0, 0, 0.01});
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
  const std::vector<Vector3f> gt = random_points(rng, 7000, 0.1f);
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
  const std::vector<Vector3f> gt = random_points(rng, 14, 0.3f);
  std::vector<Vector3f> off = gt;
  off[0] += Vector3f(0.014f, 0, 0);  // 1 mm MPJPE
  const std::vector<std::vector<Vector3f>> preds = {gt, off}, gts = {gt, gt};
  CHECK(batch_mean(preds, gts, mpjpe) == doctest::Approx(0.5).epsilon(1e-4));
  CHECK_THROWS_AS(batch_mean(preds, std::vector<std::vector<Vector3f>>{gt}, mpjpe), metro::ShapeError);
}
