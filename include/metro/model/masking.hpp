#pragma once
// Masked vertex modeling (paper Sec. 3.3). In training, for each sample,
// floor(U(0,1) * ratio * J) of the J joint tokens and, drawn separately,
// floor(U(0,1) * ratio * V) of the V vertex tokens are masked: their whole
// input vector (template xyz and image feature) is replaced by a constant
// (0.01 in the official code). The transformer must then infer them from the
// other tokens, which teaches it the interactions between joints and vertices.
#include <numeric>
#include <vector>

#include "metro/tensor.hpp"

namespace metro::model {

// Indices of `count` distinct positions among `n`, by a partial Fisher-Yates shuffle.
inline std::vector<std::int64_t> sample_without_replacement(std::int64_t n, std::int64_t count, Generator& gen) {
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  for (std::int64_t i = 0; i < count; ++i) std::swap(order[static_cast<std::size_t>(i)], order[static_cast<std::size_t>(gen.randint(i, n))]);
  order.resize(static_cast<std::size_t>(count));
  return order;
}

// (B, J + V, 1): 1 keeps a token, 0 masks it.
template <class T, class D = cpu>
Tensor<T, D> sample_token_keep_mask(std::int64_t batch, std::int64_t num_joints, std::int64_t num_vertices, double ratio, Generator& gen) {
  const std::int64_t tokens = num_joints + num_vertices;
  std::vector<T> keep(static_cast<std::size_t>(batch * tokens), T(1));
  const auto mask_some = [&](std::int64_t sample, std::int64_t first, std::int64_t count) {
    const auto masked = static_cast<std::int64_t>(gen.uniform<double>() * ratio * static_cast<double>(count));
    for (std::int64_t i : sample_without_replacement(count, masked, gen))
      keep[static_cast<std::size_t>(sample * tokens + first + i)] = T(0);
  };
  for (std::int64_t b = 0; b < batch; ++b) {
    mask_some(b, 0, num_joints);
    mask_some(b, num_joints, num_vertices);
  }
  return from_vector<T, D>(keep, {batch, tokens, 1});
}

// tokens (B, N, C) with masked rows replaced by `mask_value`: tokens * keep + value * (1 - keep).
template <class T, class D>
Tensor<T, D> apply_token_mask(const Tensor<T, D>& tokens, const Tensor<T, D>& keep, T mask_value) {
  return tokens * keep + (T(1) - keep) * mask_value;
}

}  // namespace metro::model
