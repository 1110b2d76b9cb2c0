#pragma once
// The joint regressor G (METRO Sec. 3.4, eq. (3): J_3D = G V_3D): a sparse matrix whose
// rows are convex combinations of a few mesh vertices near each joint, fitted
// by non-negative least squares over many posed and shaped bodies.
#include "metro/core/vec.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "metro/body/simplify.hpp"

namespace metro::body {

namespace detail {

using DenseMatrix = std::vector<std::vector<double>>;

// Solves M s = r for a symmetric positive definite M (Cholesky, small ridge).
inline std::vector<double> solve_symmetric(DenseMatrix m, std::vector<double> r) {
  const std::size_t n = r.size();
  for (std::size_t i = 0; i < n; ++i) m[i][i] += 1e-12 * (1.0 + m[i][i]);
  for (std::size_t j = 0; j < n; ++j) {
    for (std::size_t k = 0; k < j; ++k) m[j][j] -= m[j][k] * m[j][k];
    m[j][j] = std::sqrt(std::max(m[j][j], 1e-300));
    for (std::size_t i = j + 1; i < n; ++i) {
      for (std::size_t k = 0; k < j; ++k) m[i][j] -= m[i][k] * m[j][k];
      m[i][j] /= m[j][j];
    }
  }
  for (std::size_t i = 0; i < n; ++i) {  // L y = r
    for (std::size_t k = 0; k < i; ++k) r[i] -= m[i][k] * r[k];
    r[i] /= m[i][i];
  }
  for (std::size_t i = n; i-- > 0;) {  // L^T s = y
    for (std::size_t k = i + 1; k < n; ++k) r[i] -= m[k][i] * r[k];
    r[i] /= m[i][i];
  }
  return r;
}

}  // namespace detail

// Lawson & Hanson (1974) active-set NNLS, argmin |A x - b| subject to x >= 0,
// on the normal equations: gram = A^T A (n, n), moment = A^T b (n); n is small (~50).
inline std::vector<double> nonnegative_least_squares(const detail::DenseMatrix& gram, const std::vector<double>& moment) {
  const std::size_t n = moment.size();
  std::vector<double> x(n, 0.0);
  std::vector<char> passive(n, 0);  // variables free to be > 0
  const auto gradient = [&](std::size_t i) {
    double g = moment[i];
    for (std::size_t k = 0; k < n; ++k) g -= gram[i][k] * x[k];
    return g;
  };
  for (std::size_t outer = 0; outer < 3 * n; ++outer) {
    std::size_t best = n;
    double best_gradient = 1e-14;
    for (std::size_t i = 0; i < n; ++i)
      if (!passive[i] && gradient(i) > best_gradient) best = i, best_gradient = gradient(i);
    if (best == n) break;
    passive[best] = 1;
    for (std::size_t inner = 0; inner < 3 * n; ++inner) {
      std::vector<std::size_t> free;
      for (std::size_t i = 0; i < n; ++i)
        if (passive[i]) free.push_back(i);
      detail::DenseMatrix sub(free.size(), std::vector<double>(free.size()));
      std::vector<double> rhs(free.size());
      for (std::size_t a = 0; a < free.size(); ++a) {
        rhs[a] = moment[free[a]];
        for (std::size_t b = 0; b < free.size(); ++b) sub[a][b] = gram[free[a]][free[b]];
      }
      const auto solution = detail::solve_symmetric(sub, rhs);
      double step = 1.0;
      for (std::size_t a = 0; a < free.size(); ++a)
        if (solution[a] <= 0.0) step = std::min(step, x[free[a]] / std::max(x[free[a]] - solution[a], 1e-300));
      for (std::size_t a = 0; a < free.size(); ++a) x[free[a]] += step * (solution[a] - x[free[a]]);
      if (step >= 1.0) break;
      for (std::size_t i : free)
        if (x[i] <= 1e-12) passive[i] = 0, x[i] = 0.0;
    }
  }
  return x;
}

namespace detail {

// Vertices around `joint`: the `per_octant` nearest in each of the 8 octants
// of (v - joint), so the joint lies inside their convex hull.
inline std::vector<int> surrounding_vertices(const std::vector<Vec3f>& vertices, const Vec3f& joint, int per_octant) {
  std::array<std::vector<std::pair<float, int>>, 8> octants;
  for (int v = 0; v < static_cast<int>(vertices.size()); ++v) {
    const Vec3f d = vertices[v] - joint;
    octants[(d.x() > 0) + 2 * (d.y() > 0) + 4 * (d.z() > 0)].emplace_back(d.squaredNorm(), v);
  }
  std::vector<int> out;
  for (auto& octant : octants) {
    const auto count = std::min<std::size_t>(per_octant, octant.size());
    std::partial_sort(octant.begin(), octant.begin() + static_cast<long>(count), octant.end());
    for (std::size_t k = 0; k < count; ++k) out.push_back(octant[k].second);
  }
  return out;
}

}  // namespace detail

// Fits one row per joint over the vertices surrounding it at rest.
// vertex_samples: (S) bodies of (V, 3), [0] the rest body; joint_samples: (S) sets of (J, 3).
inline SparseRowMatrix fit_joint_regressor(const std::vector<std::vector<Vec3f>>& vertex_samples,
                                           const std::vector<std::vector<Vec3f>>& joint_samples, int per_octant) {
  const auto& rest = vertex_samples.front();
  const int joint_count = static_cast<int>(joint_samples.front().size()), samples = static_cast<int>(vertex_samples.size());
  const double sum_weight = 10.0;  // soft constraint sum(g) = 1, made exact afterwards
  std::vector<SparseEntry> entries;
  for (int j = 0; j < joint_count; ++j) {
    const auto candidate_ids = detail::surrounding_vertices(rest, joint_samples.front()[j], per_octant);
    const int candidates = static_cast<int>(candidate_ids.size());
    // Normal equations of the rows (sample s, coordinate c) plus the row sum_weight * sum(g) = sum_weight.
    detail::DenseMatrix gram(candidates, std::vector<double>(candidates, sum_weight * sum_weight));
    std::vector<double> moment(candidates, sum_weight * sum_weight);
    for (int s = 0; s < samples; ++s)
      for (int c = 0; c < 3; ++c)
        for (int k = 0; k < candidates; ++k) {
          const double vk = vertex_samples[s][candidate_ids[k]][c];
          moment[k] += vk * joint_samples[s][j][c];
          for (int l = 0; l < candidates; ++l) gram[k][l] += vk * vertex_samples[s][candidate_ids[l]][c];
        }
    const auto g = nonnegative_least_squares(gram, moment);
    double kept_sum = 0.0;
    for (int k = 0; k < candidates; ++k) kept_sum += g[k] > 1e-6 ? g[k] : 0.0;
    for (int k = 0; k < candidates; ++k)
      if (g[k] > 1e-6) entries.push_back({j, candidate_ids[k], static_cast<float>(g[k] / kept_sum)});
  }
  return {joint_count, static_cast<int>(rest.size()), std::move(entries)};
}

}  // namespace metro::body
