#pragma once
// Surface nets (Gibson 1998): one vertex per grid cell that the surface
// crosses (the mean of the crossings on the cell's edges), one quad per grid
// edge with a sign change, joining the four cells around that edge. No lookup
// tables, and a sign pattern that is mirror-symmetric gives a mirror-symmetric
// mesh.
#include "metro/core/vec.hpp"

#include <array>
#include <utility>
#include <vector>

#include "metro/body/mesh_io.hpp"

namespace metro::body {

// Sample grid: point (i, j, k) sits at origin + spacing * (i, j, k).
struct Grid {
  std::array<int, 3> size{};  // points per axis
  Vec3f origin = Vec3f::Zero();
  float spacing = 0.01f;
  Vec3f point(int i, int j, int k) const { return origin + spacing * Vec3f(float(i), float(j), float(k)); }
  std::size_t index(int i, int j, int k) const { return (std::size_t(k) * size[1] + j) * size[0] + i; }
  std::size_t count() const { return std::size_t(size[0]) * size[1] * size[2]; }
};

struct SurfaceNet {
  TriangleMesh mesh;
  std::vector<std::array<int, 3>> vertex_cells;  // (V) cell (i, j, k) of each vertex; cell i spans points i..i+1
  std::vector<std::array<int, 4>> quads;         // (Q) counter-clockwise from outside; each is split into 2 faces
};

namespace detail {

inline constexpr std::array<std::array<int, 3>, 8> kCellCorners{
    {{0, 0, 0}, {1, 0, 0}, {0, 1, 0}, {1, 1, 0}, {0, 0, 1}, {1, 0, 1}, {0, 1, 1}, {1, 1, 1}}};

// Corner c of the unit cell as a point.
inline Vec3f corner_position(int c) {
  const auto& corner = kCellCorners[static_cast<std::size_t>(c)];
  return {static_cast<float>(corner[0]), static_cast<float>(corner[1]), static_cast<float>(corner[2])};
}

// Mean of the surface crossings on the 12 edges of cell (i, j, k); false if none.
inline bool cell_vertex(const Grid& grid, const std::vector<float>& sdf, int i, int j, int k, Vec3f& vertex) {
  std::array<float, 8> value{};
  for (int c = 0; c < 8; ++c) value[c] = sdf[grid.index(i + kCellCorners[c][0], j + kCellCorners[c][1], k + kCellCorners[c][2])];
  Vec3f sum = Vec3f::Zero();
  int crossings = 0;
  for (int a = 0; a < 8; ++a)
    for (int bit = 1; bit < 8; bit <<= 1) {
      const int b = a | bit;
      if (b == a || (value[a] < 0.0f) == (value[b] < 0.0f)) continue;
      const float t = value[a] / (value[a] - value[b]);
      const Vec3f pa = corner_position(a);
      const Vec3f pb = corner_position(b);
      sum += pa + t * (pb - pa);
      ++crossings;
    }
  if (crossings == 0) return false;
  vertex = grid.point(i, j, k) + grid.spacing * sum / float(crossings);
  return true;
}

}  // namespace detail

// Meshes the zero level set of `sdf` (negative inside, sampled on `grid`).
inline SurfaceNet surface_net(const Grid& grid, const std::vector<float>& sdf) {
  SurfaceNet net;
  const auto [nx, ny, nz] = grid.size;
  std::vector<int> cell_to_vertex(grid.count(), -1);  // indexed like the points (cell = its lowest corner)
  for (int k = 0; k + 1 < nz; ++k)
    for (int j = 0; j + 1 < ny; ++j)
      for (int i = 0; i + 1 < nx; ++i) {
        Vec3f vertex;
        if (!detail::cell_vertex(grid, sdf, i, j, k, vertex)) continue;
        cell_to_vertex[grid.index(i, j, k)] = static_cast<int>(net.mesh.vertices.size());
        net.mesh.vertices.push_back(vertex);
        net.vertex_cells.push_back({i, j, k});
      }
  // Edge from point p along axis a; the cells around it are p - e_b - e_c, p - e_c, p, p - e_b
  // with (a, b, c) right-handed, which runs counter-clockwise seen from +a.
  for (int k = 1; k + 1 < nz; ++k)
    for (int j = 1; j + 1 < ny; ++j)
      for (int i = 1; i + 1 < nx; ++i)
        for (int a = 0; a < 3; ++a) {
          std::array<int, 3> p{i, j, k}, q{i, j, k};
          ++q[a];
          const bool inside_p = sdf[grid.index(p[0], p[1], p[2])] < 0.0f, inside_q = sdf[grid.index(q[0], q[1], q[2])] < 0.0f;
          if (inside_p == inside_q) continue;
          const int b = (a + 1) % 3, c = (a + 2) % 3;
          std::array<int, 4> quad{};
          const std::array<std::array<int, 2>, 4> offsets{{{1, 1}, {0, 1}, {0, 0}, {1, 0}}};
          for (int n = 0; n < 4; ++n) {
            std::array<int, 3> cell = p;
            cell[b] -= offsets[n][0], cell[c] -= offsets[n][1];
            quad[n] = cell_to_vertex[grid.index(cell[0], cell[1], cell[2])];
          }
          if (!inside_p) std::swap(quad[1], quad[3]);  // outside at -a: flip to face -a
          net.quads.push_back(quad);
        }
  return net;
}

}  // namespace metro::body
