#pragma once
// Joining, splitting and indexing: cat, stack, split, index_select, gather, scatter_add.
#include <string>
#include <vector>

#include "metro/ops/matmul.hpp"

namespace metro {

// Concatenation along dim; all other dims must match.
template <class T, class D>
Tensor<T, D> cat(const std::vector<Tensor<T, D>>& parts, int dim) {
  if (parts.empty()) throw ShapeError("cat: no tensors given");
  dim = wrap_dim(dim, parts[0].dim(), "cat");
  Shape shape = parts[0].shape();
  shape[dim] = 0;
  for (const auto& p : parts) {
    Shape expected = parts[0].shape();
    expected[dim] = p.shape()[dim];
    if (!(p.shape() == expected))
      throw ShapeError("cat: shapes " + parts[0].shape().str() + " and " + p.shape().str() + " differ outside dim " +
                       std::to_string(dim));
    shape[dim] += p.shape()[dim];
  }
  Tensor<T, D> y = empty<T, D>(shape);
  std::int64_t start = 0;
  for (const auto& p : parts) {
    copy_(narrow(y, dim, start, p.shape()[dim]), p.detach());
    start += p.shape()[dim];
  }
  bool any = false;
  for (const auto& p : parts) any = any || autograd::needs_grad(p);
  if (any) {
    std::vector<autograd::GradTarget<T, D>> targets;  // the parts' values are not needed
    for (const auto& p : parts) targets.push_back(autograd::grad_target(p));
    autograd::record(y, [targets = std::move(targets), dim](const Tensor<T, D>& g) {
      std::int64_t begin = 0;
      for (const auto& p : targets) {
        autograd::accumulate_grad(p, narrow(g, dim, begin, p.shape[dim]));
        begin += p.shape[dim];
      }
    });
  }
  return y;
}

// Joins tensors of equal shape along a new dim.
template <class T, class D>
Tensor<T, D> stack(const std::vector<Tensor<T, D>>& parts, int dim) {
  if (parts.empty()) throw ShapeError("stack: no tensors given");
  std::vector<Tensor<T, D>> expanded;
  for (const auto& p : parts) {
    if (!(p.shape() == parts[0].shape()))
      throw ShapeError("stack: shapes " + parts[0].shape().str() + " and " + p.shape().str() + " differ");
    expanded.push_back(unsqueeze(p, wrap_dim(dim, p.dim() + 1, "stack")));
  }
  return cat(expanded, dim);
}

// Views of consecutive pieces of `size` along dim (the last may be shorter).
template <class T, class D>
std::vector<Tensor<T, D>> split(const Tensor<T, D>& x, std::int64_t size, int dim) {
  if (size <= 0) throw ValueError("split: piece size must be positive, got " + std::to_string(size));
  dim = wrap_dim(dim, x.dim(), "split");
  std::vector<Tensor<T, D>> pieces;
  for (std::int64_t start = 0; start < x.shape()[dim]; start += size)
    pieces.push_back(narrow(x, dim, start, std::min(size, x.shape()[dim] - start)));
  return pieces;
}

namespace detail {
template <class D>
void check_indices(const Tensor<std::int64_t, D>& index, std::int64_t size, const char* op) {
  for (std::int64_t i : contiguous(index).to_vector())
    if (i < 0 || i >= size)
      throw ShapeError(std::string(op) + ": index " + std::to_string(i) + " out of range [0, " + std::to_string(size) + ")");
}

// Sizes of x around dim: (outer, size, inner).
template <class T, class D>
std::array<std::int64_t, 3> around(const Tensor<T, D>& x, int dim) {
  std::array<std::int64_t, 3> s{1, x.shape()[dim], 1};
  for (int i = 0; i < x.dim(); ++i)
    if (i < dim) s[0] *= x.shape()[i]; else if (i > dim) s[2] *= x.shape()[i];
  return s;
}

template <class T, class D>
void check_index_shape(const Tensor<T, D>& x, const Tensor<std::int64_t, D>& index, int dim, const char* op) {
  bool ok = index.dim() == x.dim();
  for (int i = 0; ok && i < x.dim(); ++i) ok = i == dim || index.shape()[i] == x.shape()[i];
  if (!ok)
    throw ShapeError(std::string(op) + ": index " + index.shape().str() + " must match " + x.shape().str() +
                     " except along dim " + std::to_string(dim));
}
}  // namespace detail

template <class T, class D>
Tensor<T, D> gather(const Tensor<T, D>& x, int dim, const Tensor<std::int64_t, D>& index);

// y = x with y[.., index[j], ..] += src[.., j, ..] along dim (index has src's shape).
template <class T, class D>
Tensor<T, D> scatter_add(const Tensor<T, D>& x, int dim, const Tensor<std::int64_t, D>& index, const Tensor<T, D>& src) {
  dim = wrap_dim(dim, x.dim(), "scatter_add");
  detail::check_index_shape(x, index, dim, "scatter_add");
  if (!(index.shape() == src.shape()))
    throw ShapeError("scatter_add: index " + index.shape().str() + " and source " + src.shape().str() + " differ");
  detail::check_indices(index, x.shape()[dim], "scatter_add");
  Tensor<T, D> y = clone(x.detach());
  const Tensor<T, D> s = contiguous(src.detach());
  const Tensor<std::int64_t, D> idx = contiguous(index);
  const auto [outer, size, inner] = detail::around(x, dim);
  backend::Kernels<D>::scatter_add(y.data(), idx.data(), s.data(), outer, size, index.shape()[dim], inner);
  if (autograd::needs_grad(x, src))
    autograd::record(y, [x, src, dim, idx](const Tensor<T, D>& g) {
      autograd::accumulate_grad(x, g);
      if (src.requires_grad()) autograd::accumulate_grad(src, gather(g, dim, idx));
    });
  return y;
}

// y[.., j, ..] = x[.., index[.., j, ..], ..] along dim (PyTorch's gather; y has index's shape).
template <class T, class D>
Tensor<T, D> gather(const Tensor<T, D>& x, int dim, const Tensor<std::int64_t, D>& index) {
  dim = wrap_dim(dim, x.dim(), "gather");
  detail::check_index_shape(x, index, dim, "gather");
  detail::check_indices(index, x.shape()[dim], "gather");
  const Tensor<T, D> input = contiguous(x.detach());
  const Tensor<std::int64_t, D> idx = contiguous(index);
  Tensor<T, D> y = empty<T, D>(index.shape());
  const auto [outer, size, inner] = detail::around(x, dim);
  backend::Kernels<D>::gather(input.data(), idx.data(), y.data(), outer, size, index.shape()[dim], inner);
  if (autograd::needs_grad(x))
    autograd::record(y, [x, dim, idx](const Tensor<T, D>& g) {
      autograd::accumulate_grad(x, scatter_add(zeros_like(x), dim, idx, g));
    });
  return y;
}

// Rows (or slices along dim) of x picked by a 1-D index.
template <class T, class D>
Tensor<T, D> index_select(const Tensor<T, D>& x, int dim, const Tensor<std::int64_t, D>& index) {
  dim = wrap_dim(dim, x.dim(), "index_select");
  if (index.dim() != 1) throw ShapeError("index_select: index must be 1-D, got " + index.shape().str());
  Shape shape = x.shape(), view_shape;
  shape[dim] = index.numel();
  for (int i = 0; i < x.dim(); ++i) view_shape.push_back(i == dim ? index.numel() : 1);
  // Broadcast the 1-D index to the output's shape and gather.
  const Tensor<std::int64_t, D> full = contiguous(expand(reshape(index, view_shape), shape));
  return gather(x, dim, full);
}

}  // namespace metro
