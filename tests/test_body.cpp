#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <string>

#include "metro/body/body_model.hpp"
#include "metro/core/eigen.hpp"  // first: Eigen's core under its pragmas

#include <Eigen/Geometry>  // independent references: Eigen::AngleAxisf and 3 x 3 products

using namespace metro::body;
using Vec3 = metro::Vec3f;

namespace {

const BodyModel& model() { return BodyModel::get(); }

Eigen::Vector3f to_eigen(const Vec3& v) { return {v.x(), v.y(), v.z()}; }
Eigen::Matrix3f to_eigen(const metro::Mat3f& m) {
  Eigen::Matrix3f out;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) out(i, j) = m(i, j);
  return out;
}

// Largest coordinate difference, and mean distance, between matching points.
float max_abs_difference(const std::vector<Vec3>& a, const std::vector<Vec3>& b) {
  REQUIRE(a.size() == b.size());
  float out = 0.0f;
  for (std::size_t i = 0; i < a.size(); ++i) out = std::max(out, (a[i] - b[i]).cwiseAbs().maxCoeff());
  return out;
}
double mean_distance(const std::vector<Vec3>& a, const std::vector<Vec3>& b) {
  REQUIRE(a.size() == b.size());
  double total = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) total += (a[i] - b[i]).norm();
  return total / static_cast<double>(a.size());
}

// Mean distance (m) between G V and the skeleton's evaluation joints.
double regressor_error(const PosedBody& body) {
  return mean_distance(model().joint_regressor() * body.vertices, body.joints);
}

// Edge -> number of faces using it.
std::map<std::pair<int, int>, int> edge_face_counts(const std::vector<metro::Vec3i>& faces) {
  std::map<std::pair<int, int>, int> counts;
  for (const auto& f : faces)
    for (int k = 0; k < 3; ++k) ++counts[{std::min(f[k], f[(k + 1) % 3]), std::max(f[k], f[(k + 1) % 3])}];
  return counts;
}

void check_convex_rows(const SparseRowMatrix& m) {
  for (int r = 0; r < m.rows(); ++r) {
    float sum = 0.0f;
    for (float value : m.row_values(r)) {
      REQUIRE(value >= 0.0f);
      sum += value;
    }
    REQUIRE(sum == doctest::Approx(1.0f).epsilon(1e-5));
  }
}

double distance_to_segment(const Vec3& p, const Vec3& a, const Vec3& b) {
  const float t = std::clamp((p - a).dot(b - a) / (b - a).squaredNorm(), 0.0f, 1.0f);
  return (p - (a + t * (b - a))).norm();
}

std::string temp_path(const std::string& name) { return "/tmp/metro_test_body_" + name; }

}  // namespace

TEST_CASE("vertex counts follow METRO's 6890 / 1723 / 431 hierarchy, plus 108 for the small preset") {
  CHECK(model().num_vertices(0) == 6890);
  CHECK(model().num_vertices(1) == 1723);
  CHECK(model().num_vertices(2) == 431);
  CHECK(model().num_vertices(3) == 108);
  CHECK(model().rest_joints().size() == kNumJoints);
  CHECK(model().num_skeleton_joints() == kNumSkeletonJoints);
  CHECK(model().vertex_region().size() == 6890);
  CHECK_THROWS_AS(model().faces(4), metro::ValueError);
  CHECK_THROWS_AS(model().downsample(3), metro::ValueError);
  CHECK_THROWS_AS(model().downsample(2, 1), metro::ValueError);
  CHECK_THROWS_AS(model().upsample(1, 2), metro::ValueError);
}

TEST_CASE("every level is a closed, consistently oriented surface") {
  for (int level = 0; level < kNumLevels; ++level) {
    const auto& faces = model().faces(level);
    const int vertex_count = model().num_vertices(level);
    for (const auto& f : faces) {
      REQUIRE(f.minCoeff() >= 0);
      REQUIRE(f.maxCoeff() < vertex_count);
      REQUIRE((f[0] != f[1] && f[1] != f[2] && f[0] != f[2]));
    }
    const auto edges = edge_face_counts(faces);
    int non_manifold = 0;
    for (const auto& [edge, count] : edges) non_manifold += count != 2;
    CHECK(non_manifold == 0);
    // Orientation: each directed edge appears at most once.
    std::set<std::pair<int, int>> directed;
    int repeated = 0;
    for (const auto& f : faces)
      for (int k = 0; k < 3; ++k) repeated += !directed.insert({f[k], f[(k + 1) % 3]}).second;
    CHECK(repeated == 0);
    CHECK(vertex_count - static_cast<long>(edges.size()) + static_cast<long>(faces.size()) == 2);  // a sphere's Euler characteristic
    // Outward: the signed volume is positive and near a person's (~0.06-0.08 m^3).
    double volume = 0.0;
    const auto& v = model().rest_vertices(level);
    for (const auto& f : faces) volume += v[f[0]].cast<double>().dot(v[f[1]].cast<double>().cross(v[f[2]].cast<double>())) / 6.0;
    CHECK(volume > 0.04);
    CHECK(volume < 0.10);
  }
}

TEST_CASE("the mannequin has human proportions, faces +z and stands on y = -0.9") {
  const auto& v = model().rest_vertices();
  float top = -1e9f, bottom = 1e9f;
  for (const auto& p : v) top = std::max(top, p.y()), bottom = std::min(bottom, p.y());
  CHECK(top - bottom == doctest::Approx(1.75f).epsilon(0.03));
  CHECK(bottom == doctest::Approx(-0.9f).epsilon(0.02));
  const auto& joints = model().rest_joints();
  CHECK(joints[eval_head_top].y() > joints[eval_neck].y());
  CHECK(joints[eval_left_hip].x() > 0.0f);  // the person's left is +x
  CHECK(joints[eval_left_hip].norm() < 0.12f);  // pelvis (mid-hip) at the origin
  // Shoes point forward: toes (in front of the ankle) exist, the nose and eyes are on the front.
  double shoe_z = 0.0, eye_z = 0.0;
  int shoes = 0, eyes = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (model().vertex_region()[i] == Region::shoe) shoe_z += v[i].z(), ++shoes;
    if (model().vertex_region()[i] == Region::eye) eye_z += v[i].z(), ++eyes;
  }
  CHECK(shoe_z / shoes > joints[eval_left_ankle].z() + 0.02);
  CHECK(eyes > 4);
  CHECK(eye_z / eyes > 0.07);
}

TEST_CASE("every color region is used and the shirt differs front and back") {
  std::map<Region, int> counts;
  for (Region r : model().vertex_region()) ++counts[r];
  CHECK(counts.size() == 11);
  const auto& v = model().rest_vertices();
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (model().vertex_region()[i] == Region::shirt_front) REQUIRE(v[i].z() > -0.03f);
    if (model().vertex_region()[i] == Region::shirt_back) REQUIRE(v[i].z() < -0.01f);
  }
}

TEST_CASE("vertex symmetry is an involution that mirrors the rest mesh within 1 mm") {
  const auto& mirror = model().vertex_symmetry();
  const auto& v = model().rest_vertices();
  REQUIRE(mirror.size() == v.size());
  int midline = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    REQUIRE(mirror[i] >= 0);
    REQUIRE(mirror[mirror[i]] == static_cast<int>(i));
    REQUIRE((v[mirror[i]] - Vec3(-v[i].x(), v[i].y(), v[i].z())).norm() < 1e-3f);
    REQUIRE(model().vertex_region()[mirror[i]] == model().vertex_region()[i]);
    midline += mirror[i] == static_cast<int>(i);
  }
  CHECK(midline > 20);
  const auto joint_mirror = BodyModel::joint_symmetry();
  const auto& joints = model().rest_joints();
  for (int j = 0; j < kNumJoints; ++j) {
    CHECK(joint_mirror[joint_mirror[j]] == j);
    CHECK((joints[joint_mirror[j]] - Vec3(-joints[j].x(), joints[j].y(), joints[j].z())).norm() < 1e-4f);
  }
}

TEST_CASE("sampling matrices are convex and up(down(V)) approximates the mesh") {
  for (int level = 0; level + 1 < kNumLevels; ++level) {
    const auto& down = model().downsample(level);
    const auto& up = model().upsample(level);
    CHECK(down.rows() == model().num_vertices(level + 1));
    CHECK(down.cols() == model().num_vertices(level));
    CHECK(up.rows() == model().num_vertices(level));
    CHECK(up.cols() == model().num_vertices(level + 1));
    check_convex_rows(down);
    check_convex_rows(up);
    const std::vector<Vec3>& fine = model().rest_vertices(level);
    const std::vector<Vec3> coarse = down * fine;
    CHECK(max_abs_difference(coarse, model().rest_vertices(level + 1)) == 0.0f);
    const double mean_error = mean_distance(up * coarse, fine);
    MESSAGE("level " << level << " up(down(V)) mean error " << mean_error * 1000 << " mm");
    CHECK(mean_error < (level == 0 ? 0.004 : level == 1 ? 0.010 : 0.012));  // measured 0.6, 2.4, 8.6 mm
  }
}

TEST_CASE("chained sampling matrices equal the products of the single steps") {
  const std::vector<Vec3> coarsest = model().downsample(0, 3) * model().rest_vertices(0);
  CHECK(max_abs_difference(coarsest, model().rest_vertices(3)) == 0.0f);
  const std::vector<Vec3> stepwise = model().upsample(0) * (model().upsample(1) * (model().upsample(2) * coarsest));
  CHECK(max_abs_difference(model().upsample(3, 0) * coarsest, stepwise) < 1e-6f);
  check_convex_rows(model().upsample(3, 0));
  CHECK(model().downsample(1, 1).nonZeros() == 1723);  // the identity
}

TEST_CASE("the joint regressor is sparse, convex and reproduces the joints within 5 mm") {
  const auto& regressor = model().joint_regressor();
  CHECK(regressor.rows() == kNumJoints);
  CHECK(regressor.cols() == 6890);
  CHECK(regressor.nonZeros() < 60 * kNumJoints);
  check_convex_rows(regressor);
  const double rest_error = regressor_error(model().pose(ShapeParams{}, model().rest_pose()));
  CHECK(rest_error < 0.005);
  metro::Generator rng(2024);  // not the seed the regressor was fitted on
  double posed_error = 0.0;
  for (int s = 0; s < 20; ++s) posed_error += regressor_error(model().pose(model().sample_shape(rng), model().sample_pose(rng))) / 20;
  MESSAGE("regressor mean error: rest " << rest_error * 1000 << " mm, 20 random bodies " << posed_error * 1000 << " mm");
  CHECK(posed_error < 0.005);
}

TEST_CASE("posing: the rest pose returns the rest mesh, rotations move the limbs") {
  const auto rest = model().pose(ShapeParams{}, model().rest_pose());
  double max_difference = 0.0;
  for (std::size_t i = 0; i < rest.vertices.size(); ++i)
    max_difference = std::max<double>(max_difference, (rest.vertices[i] - model().rest_vertices()[i]).norm());
  CHECK(max_difference < 1e-5);
  PoseParams bent = model().rest_pose();
  bent.axis_angle[left_knee] = Vec3(1.5f, 0.0f, 0.0f);  // knee flexion moves the ankle backwards (-z)
  const auto body = model().pose(ShapeParams{}, bent);
  CHECK(body.joints[eval_left_ankle].z() < rest.joints[eval_left_ankle].z() - 0.3f);
  CHECK((body.joints[eval_right_ankle] - rest.joints[eval_right_ankle]).norm() < 1e-6f);
  PoseParams wrong = model().rest_pose();
  wrong.axis_angle.pop_back();
  CHECK_THROWS_AS(model().pose(ShapeParams{}, wrong), metro::ShapeError);
}

TEST_CASE("SparseRowMatrix: entries, products and errors") {
  // [[1, 0, 2], [0, 0, 0], [0, 3, 0.5 + 0.25]]: the two (2, 2) entries are summed.
  const SparseRowMatrix a(3, 3, {{2, 2, 0.5f}, {0, 2, 2.0f}, {2, 1, 3.0f}, {0, 0, 1.0f}, {2, 2, 0.25f}});
  CHECK(a.nonZeros() == 4);
  CHECK(a.to_dense() == std::vector<float>{1, 0, 2, 0, 0, 0, 0, 3, 0.75f});
  CHECK(a.row_columns(1).empty());
  CHECK(std::vector<int>(a.row_columns(2).begin(), a.row_columns(2).end()) == std::vector<int>{1, 2});
  const SparseRowMatrix b(3, 2, {{0, 1, -1.0f}, {1, 0, 2.0f}, {2, 0, 4.0f}, {2, 1, 1.0f}});
  CHECK((a * b).to_dense() == std::vector<float>{8, 1, 0, 0, 9, 0.75f});  // dense product by hand
  CHECK(a * SparseRowMatrix::Identity(3) == a);
  CHECK(a * std::vector<Vec3>{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}} == std::vector<Vec3>{{1, 0, 2}, {0, 0, 0}, {0, 3, 0.75f}});
  CHECK(a * std::vector<float>{1, 2, 4} == std::vector<float>{9, 0, 9});
  CHECK_THROWS_AS(b * a, metro::ShapeError);
  CHECK_THROWS_AS(a * std::vector<float>(2), metro::ShapeError);
  CHECK_THROWS_AS(SparseRowMatrix(2, 2, {{2, 0, 1.0f}}), metro::ShapeError);
}

TEST_CASE("Vec3f and Mat3f agree with Eigen") {
  metro::Generator rng(5);
  const auto random_vec = [&] { return Vec3(rng.normal<float>(0, 1), rng.normal<float>(0, 1), rng.normal<float>(0, 1)); };
  for (int trial = 0; trial < 20; ++trial) {
    const Vec3 a = random_vec(), b = random_vec(), c = random_vec();
    const metro::Mat3f m = metro::Mat3f::FromColumns(a, b, c), n = metro::outer(b, c) + 0.5f * metro::Mat3f::Identity();
    Eigen::Matrix3f em, en;
    em << to_eigen(a), to_eigen(b), to_eigen(c);
    en = to_eigen(b) * to_eigen(c).transpose() + 0.5f * Eigen::Matrix3f::Identity();
    CHECK((to_eigen(m) - em).cwiseAbs().maxCoeff() == 0.0f);
    CHECK((to_eigen(n) - en).cwiseAbs().maxCoeff() < 1e-6f);
    CHECK((to_eigen(m * n) - em * en).cwiseAbs().maxCoeff() < 1e-5f);
    CHECK((to_eigen(m.transpose() * a) - em.transpose() * to_eigen(a)).norm() < 1e-5f);
    CHECK(m.determinant() == doctest::Approx(em.determinant()).epsilon(1e-5));
    CHECK((to_eigen(a.cross(b)) - to_eigen(a).cross(to_eigen(b))).norm() < 1e-6f);
    CHECK(a.dot(b) == doctest::Approx(to_eigen(a).dot(to_eigen(b))).epsilon(1e-6));
    CHECK((to_eigen(a.normalized()) - to_eigen(a).normalized()).norm() < 1e-6f);
    CHECK((to_eigen(a.cwiseMin(b).cwiseProduct(c)) - to_eigen(a).cwiseMin(to_eigen(b)).cwiseProduct(to_eigen(c))).norm() == 0.0f);
    CHECK(m.col(1) == b);
    CHECK(m.trace() == doctest::Approx(em.trace()));
  }
  CHECK(Vec3::Zero().normalized() == Vec3::Zero());
  CHECK((Vec3(1, 2, 3) - 2.0f * Vec3::Ones()) / 2.0f == Vec3(-0.5f, 0.0f, 0.5f));
  CHECK(Vec3(1.9f, -0.5f, 3.0f).cast<int>() == metro::Vec3i(1, 0, 3));
}

TEST_CASE("Rodrigues' formula, its inverse and bone transform composition") {
  metro::Generator rng(11);
  for (int trial = 0; trial < 50; ++trial) {
    const Vec3 axis_angle = Vec3(rng.normal<float>(0, 1), rng.normal<float>(0, 1), rng.normal<float>(0, 1)).normalized() *
                            rng.uniform<float>(0.01f, 3.1f);
    const metro::Mat3f r = rotation_from_axis_angle(axis_angle);
    const Eigen::Matrix3f expected = Eigen::AngleAxisf(axis_angle.norm(), to_eigen(axis_angle.normalized())).toRotationMatrix();
    CHECK((to_eigen(r) - expected).cwiseAbs().maxCoeff() < 2e-6f);
    CHECK((to_eigen(r * r.transpose()) - Eigen::Matrix3f::Identity()).cwiseAbs().maxCoeff() < 2e-6f);
    CHECK((axis_angle_from_rotation(r) - axis_angle).norm() < 1e-4f);
  }
  CHECK(rotation_from_axis_angle(Vec3::Zero()) == metro::Mat3f::Identity());
  CHECK(axis_angle_from_rotation(metro::Mat3f::Identity()) == Vec3::Zero());
  // The inverse at the ends of [0, pi]: tiny angles (float traces round to 3) and near pi.
  for (const float angle : {1e-5f, 1e-4f, 1e-3f, 3.0f, 3.1405926f, 3.1415f}) {
    const Vec3 axis_angle = angle * Vec3(0.48f, -0.6f, 0.64f);  // a unit axis
    CAPTURE(angle);
    CHECK((axis_angle_from_rotation(rotation_from_axis_angle(axis_angle)) - axis_angle).norm() < 2e-3f * angle + 1e-9f);
  }
  const Vec3 half_turn = axis_angle_from_rotation(metro::Mat3f::Diagonal({1.0f, -1.0f, -1.0f}));  // pi about x (or -x)
  CHECK(std::abs(half_turn.x()) == doctest::Approx(3.14159265f));
  CHECK(half_turn.y() == 0.0f);
  CHECK(half_turn.z() == 0.0f);
  // (outer after inner)(v) == outer(inner(v))
  const BoneTransform inner{rotation_from_axis_angle(Vec3(0.3f, -0.2f, 0.5f)), Vec3(0.1f, 0.2f, -0.3f)};
  const BoneTransform outer{2.0f * rotation_from_axis_angle(Vec3(-1.0f, 0.4f, 0.1f)), Vec3(-0.5f, 0.0f, 1.0f)};
  const Vec3 v(0.7f, -0.4f, 0.25f);
  CHECK((outer.after(inner)(v) - outer(inner(v))).norm() < 1e-6f);
}

TEST_CASE("closest_barycentric: inside the triangle, beyond an edge, beyond a corner, degenerate") {
  const Vec3 a(0, 0, 0), b(1, 0, 0), c(0, 1, 0);
  const auto closest = [&](const Vec3& p) { return detail::closest_barycentric(p, a, b, c); };
  CHECK((closest(Vec3(0.2f, 0.3f, 0.5f)) - Vec3(0.5f, 0.2f, 0.3f)).norm() < 1e-6f);  // projected inside
  CHECK((closest(Vec3(0.5f, -1.0f, 0.0f)) - Vec3(0.5f, 0.5f, 0.0f)).norm() < 1e-6f);  // below edge ab
  CHECK((closest(Vec3(2.0f, 2.0f, 0.0f)) - Vec3(0.0f, 0.5f, 0.5f)).norm() < 1e-6f);   // beyond edge bc
  CHECK((closest(Vec3(-1.0f, -1.0f, 0.0f)) - Vec3(1.0f, 0.0f, 0.0f)).norm() < 1e-6f);  // beyond corner a
  // A degenerate (collinear) triangle falls back to its edges.
  const Vec3 weights = detail::closest_barycentric(Vec3(0.5f, 1.0f, 0.0f), a, b, Vec3(2, 0, 0));
  CHECK(weights.minCoeff() >= 0.0f);
  CHECK(weights.sum() == doctest::Approx(1.0f));
  CHECK((weights.x() * a + weights.y() * b + weights.z() * Vec3(2, 0, 0) - Vec3(0.5f, 0, 0)).norm() < 1e-6f);
}

TEST_CASE("shape parameters change stature and girth as documented") {
  ShapeParams tall, heavy;
  tall.values[0] = 2.0f;
  heavy.values[1] = 2.0f;
  const auto average = model().pose(ShapeParams{}, model().rest_pose());
  const auto height = [](const PosedBody& b) { return b.joints[eval_head_top].y() - b.joints[eval_left_ankle].y(); };
  CHECK(height(model().pose(tall, model().rest_pose())) == doctest::Approx(height(average) * 1.10).epsilon(0.01));
  const auto width = [](const PosedBody& b) {
    float w = 0.0f;
    for (const auto& p : b.vertices)
      if (std::abs(p.y() - 0.2f) < 0.02f && std::abs(p.x()) < 0.25f) w = std::max(w, std::abs(p.x()));
    return w;
  };
  CHECK(width(model().pose(heavy, model().rest_pose())) > 1.1f * width(average));
  metro::Generator rng(5);
  for (int s = 0; s < 20; ++s)
    for (float value : model().sample_shape(rng).values) REQUIRE(std::abs(value) <= 1.8f);
}

TEST_CASE("sampled poses respect the hinges and mostly keep the arms out of the torso") {
  metro::Generator rng(11);
  const Vec3 arm_flexion = detail::left_arm_flexion_axis();
  int clear = 0, back_views = 0;
  const int samples = 300;
  for (int s = 0; s < samples; ++s) {
    const PoseParams pose = model().sample_pose(rng);
    REQUIRE(pose.axis_angle.size() == static_cast<std::size_t>(kNumSkeletonJoints));
    for (int knee : {left_knee, right_knee}) {
      const Vec3 r = pose.axis_angle[knee];
      REQUIRE(r.norm() <= detail::degrees_to_radians(150.0f) + 1e-4f);
      if (r.norm() > 1e-3f) REQUIRE(r.normalized().x() > 0.999f);  // flexes one way about +x only
    }
    const Vec3 elbow = pose.axis_angle[left_elbow];
    REQUIRE(elbow.norm() <= detail::degrees_to_radians(145.0f) + 1e-4f);
    if (elbow.norm() > 1e-3f) REQUIRE(elbow.normalized().dot(arm_flexion) > 0.999f);
    const auto body = model().pose(ShapeParams{}, pose);
    bool arms_clear = true;
    for (int j : {eval_left_wrist, eval_right_wrist, eval_left_elbow, eval_right_elbow})
      arms_clear = arms_clear && distance_to_segment(body.joints[j], Vec3::Zero(), body.joints[eval_neck]) > 0.11;
    clear += arms_clear;
    const Vec3 facing = rotation_from_axis_angle(pose.axis_angle[pelvis]) * Vec3::UnitZ();
    back_views += facing.z() < 0.0f;
  }
  MESSAGE(clear << " of " << samples << " poses keep wrists and elbows out of the torso; " << back_views << " back views");
  CHECK(clear > 0.9 * samples);
  CHECK(back_views > 0.05 * samples);
  CHECK(back_views < 0.4 * samples);
}

TEST_CASE("the model is deterministic") {
  const BodyModel second;
  CHECK(second.rest_vertices(0) == model().rest_vertices(0));
  CHECK(second.faces(2) == model().faces(2));
  CHECK(second.vertex_symmetry() == model().vertex_symmetry());
  CHECK(second.joint_regressor() == model().joint_regressor());
  metro::Generator a(3), b(3);
  CHECK(second.pose(second.sample_shape(a), second.sample_pose(a)).vertices ==
        model().pose(model().sample_shape(b), model().sample_pose(b)).vertices);
}

TEST_CASE("OBJ and PLY round trips keep vertices and faces") {
  const auto& v = model().rest_vertices(2);
  const auto& f = model().faces(2);
  write_obj(temp_path("coarse.obj"), v, f);
  const TriangleMesh obj = read_obj(temp_path("coarse.obj"));
  REQUIRE(obj.vertices.size() == v.size());
  CHECK(obj.faces == f);
  for (std::size_t i = 0; i < v.size(); ++i) REQUIRE((obj.vertices[i] - v[i]).norm() < 1e-7f);
  std::vector<std::array<std::uint8_t, 3>> colors(v.size(), {10, 20, 30});
  write_ply(temp_path("coarse.ply"), v, f, &colors);
  const TriangleMesh ply = read_ply(temp_path("coarse.ply"));
  CHECK(ply.faces == f);
  REQUIRE(ply.vertices.size() == v.size());
  for (std::size_t i = 0; i < v.size(); ++i) REQUIRE((ply.vertices[i] - v[i]).norm() < 1e-7f);
  std::remove(temp_path("coarse.obj").c_str());
  std::remove(temp_path("coarse.ply").c_str());
}

TEST_CASE("corrupt mesh files raise FormatError naming the file") {
  const auto write_text = [](const std::string& name, const std::string& text) {
    std::ofstream(temp_path(name)) << text;
    return temp_path(name);
  };
  const std::string bad_index = write_text("bad_index.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 4\n");
  CHECK_THROWS_AS(read_obj(bad_index), metro::FormatError);
  try {
    read_obj(bad_index);
  } catch (const metro::FormatError& e) {
    CHECK(e.path() == bad_index);
    CHECK(std::string(e.what()).find("out of range") != std::string::npos);
  }
  CHECK_THROWS_AS(read_obj(write_text("bad_number.obj", "v 0 zero 0\n")), metro::FormatError);
  CHECK_THROWS_AS(read_obj(write_text("short_face.obj", "v 0 0 0\nv 1 0 0\nf 1 2\n")), metro::FormatError);
  CHECK_THROWS_AS(read_obj(write_text("empty.obj", "# nothing\n")), metro::FormatError);
  const std::string header = "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
                             "element face 1\nproperty list uchar int vertex_indices\nend_header\n";
  CHECK_THROWS_AS(read_ply(write_text("truncated.ply", header + "0 0 0\n1 0 0\n")), metro::FormatError);
  CHECK_THROWS_AS(read_ply(write_text("bad_face.ply", header + "0 0 0\n1 0 0\n0 1 0\n3 0 1 7\n")), metro::FormatError);
  CHECK_THROWS_AS(read_ply(write_text("binary.ply", "ply\nformat binary_little_endian 1.0\nend_header\n")), metro::FormatError);
  CHECK_NOTHROW(read_ply(write_text("good.ply", header + "0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n")));
  CHECK_THROWS_AS(read_obj(temp_path("does_not_exist.obj")), metro::IOError);
  for (const char* name : {"bad_index.obj", "bad_number.obj", "short_face.obj", "empty.obj", "truncated.ply", "bad_face.ply", "binary.ply", "good.ply"})
    std::remove(temp_path(name).c_str());
}
