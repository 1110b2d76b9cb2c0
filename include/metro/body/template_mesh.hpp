#pragma once
// The mannequin's rest mesh: its SDF sampled on a grid that is symmetric about
// x = 0, meshed with surface nets, triangulated mirror-consistently; then its
// per-vertex skinning weights and color regions.
#include "metro/core/vec.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "metro/body/mannequin.hpp"
#include "metro/body/surface_nets.hpp"

namespace metro::body {

struct SymmetricMesh {
  TriangleMesh mesh;
  std::vector<int> mirror;  // (V) index of the mirror vertex (itself on the midline); an involution
};

namespace detail {

// An even number of x points, so one column of cells straddles x = 0.
inline Grid mannequin_grid(float spacing) {
  // The z offset keeps grid planes off the arms' backs, where saddle cells would pinch the surface.
  const Vec3f low(-0.82f, -0.93f, -0.197f), high(0.82f, 0.88f, 0.24f);
  Grid grid;
  grid.spacing = spacing;
  grid.size[0] = 2 * static_cast<int>(std::ceil(high.x() / spacing)) + 2;
  grid.size[1] = static_cast<int>(std::ceil((high.y() - low.y()) / spacing)) + 1;
  grid.size[2] = static_cast<int>(std::ceil((high.z() - low.z()) / spacing)) + 1;
  grid.origin = Vec3f(-0.5f * spacing * float(grid.size[0] - 1), low.y(), low.z());
  return grid;
}

// SDF on the grid; the right half copies the left so the signs are exactly symmetric.
inline std::vector<float> sample_mannequin(const Grid& grid) {
  const auto primitives = mannequin::half_body_primitives();
  std::vector<float> sdf(grid.count());
  const int nx = grid.size[0];
  for (int k = 0; k < grid.size[2]; ++k)
    for (int j = 0; j < grid.size[1]; ++j)
      for (int i = nx / 2; i < nx; ++i) {
        const float value = mannequin::body_signed_distance(primitives, grid.point(i, j, k));
        sdf[grid.index(i, j, k)] = value;
        sdf[grid.index(nx - 1 - i, j, k)] = value;
      }
  return sdf;
}

// Cell i mirrors to cell nx - 2 - i; positions are then made exact mirrors.
inline std::vector<int> mirror_vertices(const Grid& grid, SurfaceNet& net) {
  std::vector<int> cell_to_vertex(grid.count(), -1);
  for (int v = 0; v < static_cast<int>(net.vertex_cells.size()); ++v) {
    const auto& c = net.vertex_cells[v];
    cell_to_vertex[grid.index(c[0], c[1], c[2])] = v;
  }
  auto& vertices = net.mesh.vertices;
  std::vector<int> mirror(vertices.size());
  for (int v = 0; v < static_cast<int>(vertices.size()); ++v) {
    const auto& c = net.vertex_cells[v];
    mirror[v] = cell_to_vertex[grid.index(grid.size[0] - 2 - c[0], c[1], c[2])];
  }
  for (int v = 0; v < static_cast<int>(vertices.size()); ++v) {
    const int m = mirror[v];
    if (m == v) vertices[v].x() = 0.0f;
    if (m <= v) continue;
    const Vec3f mean(0.5f * (vertices[v].x() - vertices[m].x()), 0.5f * (vertices[v].y() + vertices[m].y()),
                     0.5f * (vertices[v].z() + vertices[m].z()));
    vertices[v] = mean;
    vertices[m] = mannequin::mirror(mean);
  }
  return mirror;
}

// Each quad is split along its shorter diagonal; ties go to the diagonal with
// the smaller mirror-invariant vertex id, so mirror quads split alike.
inline void triangulate_quads(SymmetricMesh& out, const std::vector<std::array<int, 4>>& quads) {
  const auto& p = out.mesh.vertices;
  const auto canonical = [&](int v) { return std::min(v, out.mirror[v]); };
  for (const auto& q : quads) {
    const float diagonal_02 = (p[q[0]] - p[q[2]]).squaredNorm(), diagonal_13 = (p[q[1]] - p[q[3]]).squaredNorm();
    const bool split_02 = diagonal_02 != diagonal_13 ? diagonal_02 < diagonal_13
                                                     : std::min(canonical(q[0]), canonical(q[2])) < std::min(canonical(q[1]), canonical(q[3]));
    if (split_02) {
      out.mesh.faces.emplace_back(q[0], q[1], q[2]);
      out.mesh.faces.emplace_back(q[0], q[2], q[3]);
    } else {
      out.mesh.faces.emplace_back(q[0], q[1], q[3]);
      out.mesh.faces.emplace_back(q[1], q[2], q[3]);
    }
  }
}

}  // namespace detail

// The dense rest mesh (before simplification); about 1.9 m^2 / spacing^2 vertices.
inline SymmetricMesh mannequin_surface(float spacing) {
  const Grid grid = detail::mannequin_grid(spacing);
  SurfaceNet net = surface_net(grid, detail::sample_mannequin(grid));
  SymmetricMesh out;
  out.mirror = detail::mirror_vertices(grid, net);
  out.mesh.vertices = std::move(net.mesh.vertices);
  detail::triangulate_quads(out, net.quads);
  return out;
}

namespace detail {

struct PrimitiveDistances {
  std::array<float, kNumSkeletonJoints> per_bone;  // min SDF of each bone's primitives
  int closest = 0;                                 // index of the primitive with the smallest SDF
};

inline PrimitiveDistances primitive_distances(const std::vector<mannequin::Primitive>& primitives, const Vec3f& x) {
  PrimitiveDistances out;
  out.per_bone.fill(1e9f);
  float best = 1e9f;
  for (int i = 0; i < static_cast<int>(primitives.size()); ++i) {
    const float d = mannequin::signed_distance(primitives[i], x);
    out.per_bone[primitives[i].bone] = std::min(out.per_bone[primitives[i].bone], d);
    if (d < best) best = d, out.closest = i;
  }
  return out;
}

// Bones allowed to move a vertex: the closest bone, its parent and its children
// (so an inner thigh never follows the other leg).
inline bool bones_are_adjacent(const Skeleton& skeleton, int a, int b) {
  return a == b || skeleton.parents[a] == b || skeleton.parents[b] == a;
}

}  // namespace detail

// Smooth weights from the SDF: w_b ~ exp(-(d_b - d_min) / falloff) over the
// closest bone and its neighbours, top 4, normalized. Computed on the mirror-
// folded point and mirrored back, so the weights are exactly symmetric.
inline SkinWeights mannequin_skin_weights(const std::vector<Vec3f>& vertices, const Skeleton& skeleton, float falloff = 0.012f) {
  const auto primitives = mannequin::whole_body_primitives();
  SkinWeights skin;
  for (const auto& v : vertices) {
    const Vec3f folded(std::abs(v.x()), v.y(), v.z());
    const auto distances = detail::primitive_distances(primitives, folded);
    const int closest_bone = primitives[distances.closest].bone;
    std::vector<std::pair<float, int>> ranked;
    for (int b = 0; b < kNumSkeletonJoints; ++b)
      if (detail::bones_are_adjacent(skeleton, closest_bone, b))
        ranked.emplace_back(-std::exp(-(distances.per_bone[b] - distances.per_bone[closest_bone]) / falloff), b);
    std::sort(ranked.begin(), ranked.end());
    std::array<int, kMaxInfluences> bones{};
    std::array<float, kMaxInfluences> weights{};
    float total = 0.0f;
    for (int k = 0; k < kMaxInfluences && k < static_cast<int>(ranked.size()); ++k)
      if (-ranked[k].first > 0.01f) bones[k] = ranked[k].second, weights[k] = -ranked[k].first, total += weights[k];
    for (int k = 0; k < kMaxInfluences; ++k) {
      weights[k] /= total;
      if (v.x() < 0.0f) bones[k] = mannequin::mirror_joint(bones[k]);
    }
    skin.bones.push_back(bones);
    skin.weights.push_back(weights);
  }
  return skin;
}

namespace detail {

// Face features on the head, in rest coordinates (folded to x >= 0).
inline Region head_region(const Vec3f& p) {
  const Vec3f eye_center(0.031f, 0.757f, 0.097f);
  if (p.z() > 0.07f && (p - eye_center).norm() < 0.021f) return Region::eye;
  if (p.z() > 0.07f && p.x() < 0.026f && std::abs(p.y() - 0.688f) < 0.009f) return Region::mouth;
  const bool crown = p.y() > 0.80f;
  const bool sides_and_back = p.y() > 0.765f && p.z() < 0.06f;
  const bool nape = p.y() > 0.665f && p.z() < -0.01f && p.x() < 0.07f;
  if (crown || sides_and_back || nape) return Region::hair;
  return Region::skin;
}

// A shirt with short sleeves and a collar, trousers, shoes.
inline Region body_region(Part part, const Vec3f& p) {
  const bool front = p.z() > -0.02f;
  switch (part) {
    case Part::head: return head_region(p);
    case Part::nose: return Region::nose;
    case Part::neck: return p.y() < 0.52f ? Region::collar : Region::skin;
    case Part::hand: return Region::hand;
    case Part::forearm: return Region::skin;
    case Part::thigh: case Part::shin: return Region::trousers;
    case Part::foot: return Region::shoe;
    default: break;
  }
  if (p.y() < 0.07f) return Region::trousers;
  if (p.y() > 0.43f && Vec2f(p.x(), p.z() + 0.03f).norm() < 0.085f) return Region::collar;
  return front ? Region::shirt_front : Region::shirt_back;
}

}  // namespace detail

inline std::vector<Region> mannequin_regions(const std::vector<Vec3f>& vertices) {
  const auto primitives = mannequin::half_body_primitives();
  std::vector<Region> regions;
  for (const auto& v : vertices) {
    const Vec3f folded(std::abs(v.x()), v.y(), v.z());
    regions.push_back(detail::body_region(primitives[detail::primitive_distances(primitives, folded).closest].part, folded));
  }
  return regions;
}

}  // namespace metro::body
