#pragma once
// Mesh hierarchy for the coarse-to-fine decoder (METRO Sec. 3.5: 6890 ->
// 1723 -> 431 vertices), built like Ranjan et al. 2018 ("Generating 3D faces
// using convolutional mesh autoencoders", Sec. 3.2): quadric-error edge
// collapses (Garland & Heckbert 1997) that keep a subset of the vertices;
// downsampling selects that subset, upsampling writes every removed vertex as
// barycentric coordinates in its closest coarse triangle.
// Collapses are made in mirror pairs, so a left/right symmetric mesh stays symmetric.
#include "metro/core/vec.hpp"

#include <algorithm>
#include <array>
#include <iterator>
#include <limits>
#include <queue>
#include <tuple>
#include <vector>

#include "metro/body/sparse_rows.hpp"
#include "metro/core/error.hpp"

namespace metro::body {

struct SimplifiedMesh {
  std::vector<int> kept;         // (V_coarse) fine index of each coarse vertex, ascending
  std::vector<Vec3i> faces;      // (F_coarse) indices into `kept`
  std::vector<int> merged_into;  // (V_fine) coarse vertex each fine vertex was collapsed into
};

namespace detail {

// Greedy quadric-error edge collapse, lowest cost first; a vertex `from` is
// merged into its neighbour `to`, whose position is kept.
class SymmetricEdgeCollapser {
 public:
  SymmetricEdgeCollapser(const std::vector<Vec3f>& vertices, const std::vector<Vec3i>& faces, const std::vector<int>& mirror)
      : faces_(faces), face_alive_(faces.size(), 1), vertex_faces_(vertices.size()), vertex_alive_(vertices.size(), 1),
        collapsed_to_(vertices.size(), -1), mirror_(mirror), quadrics_(vertices.size(), Mat4d::Zero()),
        alive_count_(static_cast<int>(vertices.size())) {
    for (const auto& v : vertices) positions_.push_back(v.cast<double>());
    for (int f = 0; f < static_cast<int>(faces.size()); ++f)
      for (int k = 0; k < 3; ++k) vertex_faces_[faces[f][k]].push_back(f);
    for (int f = 0; f < static_cast<int>(faces.size()); ++f) add_face_quadric(f);
    for (int v = 0; v < alive_count_; ++v) push_candidates_around(v);
  }

  SimplifiedMesh run(int target_vertices) {
    while (alive_count_ > target_vertices && !queue_.empty()) {
      const Candidate candidate = queue_.top();
      queue_.pop();
      if (!vertex_alive_[candidate.from] || !vertex_alive_[candidate.to]) continue;
      const double current = cost(candidate.from, candidate.to);
      if (current != candidate.cost) {
        queue_.push({current, candidate.from, candidate.to});
        continue;
      }
      const int removed = mirror_[candidate.from] == candidate.from ? 1 : 2;
      if (alive_count_ - removed < target_vertices) continue;
      if (!try_collapse_pair(candidate.from, candidate.to)) continue;
      push_candidates_around(candidate.to);
      push_candidates_around(mirror_[candidate.to]);
    }
    return result();
  }

 private:
  struct Candidate {
    double cost;
    int from, to;
    bool operator>(const Candidate& other) const { return std::tie(cost, from, to) > std::tie(other.cost, other.from, other.to); }
  };
  struct FaceChange {
    int face;
    Vec3i before;
    char alive_before;
  };

  bool face_has(int f, int v) const { return faces_[f][0] == v || faces_[f][1] == v || faces_[f][2] == v; }

  // The adjacency lists are lazy (never pruned), so filter and deduplicate.
  std::vector<int> live_faces(int v) const {
    std::vector<int> out;
    for (int f : vertex_faces_[v])
      if (face_alive_[f] && face_has(f, v)) out.push_back(f);
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  }

  std::vector<int> neighbours(int v) const {
    std::vector<int> out;
    for (int f : live_faces(v))
      for (int k = 0; k < 3; ++k)
        if (faces_[f][k] != v) out.push_back(faces_[f][k]);
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  }

  Vec3d face_normal(const Vec3i& face) const {
    return (positions_[face[1]] - positions_[face[0]]).cross(positions_[face[2]] - positions_[face[0]]);
  }

  // Area-weighted plane quadric of face f, added to its three corners.
  void add_face_quadric(int f) {
    const Vec3d normal = face_normal(faces_[f]);
    const double twice_area = normal.norm();
    if (twice_area <= 0.0) return;
    const Vec3d unit = normal / twice_area;
    const Vec4d plane(unit.x(), unit.y(), unit.z(), -unit.dot(positions_[faces_[f][0]]));
    for (int k = 0; k < 3; ++k) quadrics_[faces_[f][k]] += 0.5 * twice_area * outer(plane, plane);
  }

  double cost(int from, int to) const {
    const Vec4d p(positions_[to].x(), positions_[to].y(), positions_[to].z(), 1.0);
    return p.dot((quadrics_[from] + quadrics_[to]) * p);
  }

  void push_candidates_around(int v) {
    for (int w : neighbours(v)) {
      queue_.push({cost(v, w), v, w});
      queue_.push({cost(w, v), w, v});
    }
  }

  // Manifold-preserving (link condition), no face flips, no vertex left with < 3 faces,
  // and midline vertices stay on the midline.
  bool collapse_is_valid(int from, int to) const {
    if (!vertex_alive_[from] || !vertex_alive_[to] || from == to || mirror_[from] == to) return false;
    if (mirror_[from] == from && mirror_[to] != to) return false;
    const auto from_faces = live_faces(from);
    std::vector<int> shared;
    for (int f : from_faces)
      if (face_has(f, to)) shared.push_back(f);
    if (shared.size() != 2) return false;
    const auto from_neighbours = neighbours(from), to_neighbours = neighbours(to);
    std::vector<int> common;
    std::set_intersection(from_neighbours.begin(), from_neighbours.end(), to_neighbours.begin(), to_neighbours.end(), std::back_inserter(common));
    if (common.size() != 2 || live_faces(to).size() + from_faces.size() < 3 + 4) return false;
    for (int w : common)
      if (live_faces(w).size() <= 3) return false;
    for (int f : from_faces) {
      if (face_has(f, to)) continue;
      Vec3i moved = faces_[f];
      for (int k = 0; k < 3; ++k)
        if (moved[k] == from) moved[k] = to;
      const Vec3d before = face_normal(faces_[f]), after = face_normal(moved);
      if (after.norm() < 1e-14 || before.normalized().dot(after.normalized()) < 0.2) return false;
    }
    return true;
  }

  void apply_collapse(int from, int to, std::vector<FaceChange>& journal) {
    for (int f : live_faces(from)) {
      journal.push_back({f, faces_[f], face_alive_[f]});
      if (face_has(f, to)) {
        face_alive_[f] = 0;
        continue;
      }
      for (int k = 0; k < 3; ++k)
        if (faces_[f][k] == from) faces_[f][k] = to;
      vertex_faces_[to].push_back(f);
    }
    vertex_alive_[from] = 0;
    collapsed_to_[from] = to;
    --alive_count_;
  }

  void undo(const std::vector<FaceChange>& journal, int from, int to, std::size_t to_list_size) {
    for (auto change = journal.rbegin(); change != journal.rend(); ++change) {
      faces_[change->face] = change->before;
      face_alive_[change->face] = change->alive_before;
    }
    vertex_faces_[to].resize(to_list_size);
    vertex_alive_[from] = 1;
    collapsed_to_[from] = -1;
    ++alive_count_;
  }

  // Collapses from -> to and its mirror image; all or nothing.
  bool try_collapse_pair(int from, int to) {
    if (!collapse_is_valid(from, to)) return false;
    const int mirror_from = mirror_[from], mirror_to = mirror_[to];
    std::vector<FaceChange> journal;
    const std::size_t to_list_size = vertex_faces_[to].size();
    apply_collapse(from, to, journal);
    if (mirror_from != from) {
      if (!collapse_is_valid(mirror_from, mirror_to)) {
        undo(journal, from, to, to_list_size);
        return false;
      }
      apply_collapse(mirror_from, mirror_to, journal);
      quadrics_[mirror_to] += quadrics_[mirror_from];
    }
    quadrics_[to] += quadrics_[from];
    return true;
  }

  SimplifiedMesh result() const {
    SimplifiedMesh out;
    std::vector<int> coarse_index(vertex_alive_.size(), -1);
    for (int v = 0; v < static_cast<int>(vertex_alive_.size()); ++v)
      if (vertex_alive_[v]) coarse_index[v] = static_cast<int>(out.kept.size()), out.kept.push_back(v);
    for (int f = 0; f < static_cast<int>(faces_.size()); ++f)
      if (face_alive_[f]) out.faces.emplace_back(coarse_index[faces_[f][0]], coarse_index[faces_[f][1]], coarse_index[faces_[f][2]]);
    out.merged_into.resize(vertex_alive_.size());
    for (int v = 0; v < static_cast<int>(vertex_alive_.size()); ++v) {
      int root = v;
      while (collapsed_to_[root] >= 0) root = collapsed_to_[root];
      out.merged_into[v] = coarse_index[root];
    }
    return out;
  }

  std::vector<Vec3d> positions_;
  std::vector<Vec3i> faces_;
  std::vector<char> face_alive_;
  std::vector<std::vector<int>> vertex_faces_;
  std::vector<char> vertex_alive_;
  std::vector<int> collapsed_to_;
  std::vector<int> mirror_;
  std::vector<Mat4d> quadrics_;
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue_;
  int alive_count_;
};

// Closest point of triangle (a, b, c) to p, as barycentric weights (>= 0, sum 1).
inline Vec3f closest_barycentric(const Vec3f& p, const Vec3f& a, const Vec3f& b, const Vec3f& c) {
  // The plane's closest point a + s ab + t ac solves the 2x2 normal equations
  // [ab.ab ab.ac; ab.ac ac.ac] (s, t) = (ab.ap, ac.ap), here by Cramer's rule.
  const Vec3f ab = b - a, ac = c - a, ap = p - a;
  const float g00 = ab.dot(ab), g01 = ab.dot(ac), g11 = ac.dot(ac), r0 = ab.dot(ap), r1 = ac.dot(ap);
  const float det = g00 * g11 - g01 * g01;  // > 0 unless the triangle is degenerate
  if (det > 0.0f) {
    const float s = (g11 * r0 - g01 * r1) / det, t = (g00 * r1 - g01 * r0) / det;
    if (s >= 0.0f && t >= 0.0f && s + t <= 1.0f) return {1.0f - s - t, s, t};
  }
  // Outside (or degenerate): the best of the three edges.
  Vec3f best = Vec3f(1, 0, 0);
  float best_distance = (p - a).squaredNorm();
  const std::array<Vec3f, 3> corner{a, b, c};
  for (int e = 0; e < 3; ++e) {
    const Vec3f& u = corner[e];
    const Vec3f& v = corner[(e + 1) % 3];
    const float t = std::clamp((p - u).dot(v - u) / std::max((v - u).squaredNorm(), 1e-20f), 0.0f, 1.0f);
    const float distance = (p - (u + t * (v - u))).squaredNorm();
    if (distance < best_distance) {
      best_distance = distance;
      best = Vec3f::Zero();
      best[e] = 1.0f - t, best[(e + 1) % 3] = t;
    }
  }
  return best;
}

}  // namespace detail

// Simplifies to `target_vertices` (or one more when only a pair collapse is left).
// `mirror` (V) maps each vertex to its left/right mirror (itself on the midline).
inline SimplifiedMesh simplify_mesh(const std::vector<Vec3f>& vertices, const std::vector<Vec3i>& faces,
                                    const std::vector<int>& mirror, int target_vertices) {
  if (mirror.size() != vertices.size()) throw ShapeError("simplify_mesh: mirror map size differs from the vertex count");
  return detail::SymmetricEdgeCollapser(vertices, faces, mirror).run(target_vertices);
}

// (V_coarse, V_fine): row c selects fine vertex kept[c].
inline SparseRowMatrix downsampling_matrix(const SimplifiedMesh& coarse, int fine_count) {
  std::vector<SparseEntry> entries;
  for (int c = 0; c < static_cast<int>(coarse.kept.size()); ++c) entries.push_back({c, coarse.kept[c], 1.0f});
  return {static_cast<int>(coarse.kept.size()), fine_count, std::move(entries)};
}

// (V_fine, V_coarse): kept vertices copy their coarse vertex; removed ones take
// barycentric weights in the closest coarse triangle around the vertex they
// were merged into or around their 4 nearest coarse vertices.
inline SparseRowMatrix upsampling_matrix(const std::vector<Vec3f>& fine_vertices, const SimplifiedMesh& coarse) {
  const int coarse_count = static_cast<int>(coarse.kept.size());
  std::vector<std::vector<int>> coarse_vertex_faces(coarse_count);
  for (int f = 0; f < static_cast<int>(coarse.faces.size()); ++f)
    for (int k = 0; k < 3; ++k) coarse_vertex_faces[coarse.faces[f][k]].push_back(f);
  std::vector<int> fine_to_coarse(fine_vertices.size(), -1);
  for (int c = 0; c < coarse_count; ++c) fine_to_coarse[coarse.kept[c]] = c;

  std::vector<SparseEntry> entries;
  for (int v = 0; v < static_cast<int>(fine_vertices.size()); ++v) {
    if (fine_to_coarse[v] >= 0) {
      entries.push_back({v, fine_to_coarse[v], 1.0f});
      continue;
    }
    std::vector<std::pair<float, int>> nearest;
    for (int c = 0; c < coarse_count; ++c) nearest.emplace_back((fine_vertices[coarse.kept[c]] - fine_vertices[v]).squaredNorm(), c);
    std::partial_sort(nearest.begin(), nearest.begin() + std::min(4, coarse_count), nearest.end());
    std::vector<int> seeds{coarse.merged_into[v]};
    for (int n = 0; n < std::min(4, coarse_count); ++n) seeds.push_back(nearest[n].second);
    float best_distance = std::numeric_limits<float>::max();
    Vec3f best_weights = Vec3f::Zero();
    Vec3i best_face = Vec3i::Zero();
    for (int seed : seeds)
      for (int f : coarse_vertex_faces[seed]) {
        const Vec3i& face = coarse.faces[f];
        const Vec3f a = fine_vertices[coarse.kept[face[0]]], b = fine_vertices[coarse.kept[face[1]]], c = fine_vertices[coarse.kept[face[2]]];
        const Vec3f weights = detail::closest_barycentric(fine_vertices[v], a, b, c);
        const float distance = (weights[0] * a + weights[1] * b + weights[2] * c - fine_vertices[v]).squaredNorm();
        if (distance < best_distance) best_distance = distance, best_weights = weights, best_face = face;
      }
    for (int k = 0; k < 3; ++k)
      if (best_weights[k] > 0.0f) entries.push_back({v, best_face[k], best_weights[k]});
  }
  return {static_cast<int>(fine_vertices.size()), coarse_count, std::move(entries)};
}

}  // namespace metro::body
