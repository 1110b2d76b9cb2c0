#pragma once
// Reductions (sum, mean, var, norm, max/min with indices, argmax) and softmax.
// A reduction over a set of dims is laid out as a contiguous block
// (outer, reduced, inner) -- without a copy when the dims are adjacent in a
// contiguous tensor, after a permute + copy otherwise -- and summed by the
// backend in an order that does not depend on the thread count.
#include <algorithm>
#include <vector>

#include "metro/ops/views.hpp"

namespace metro {

namespace detail {

// Sorted, de-duplicated, wrapped dims; empty means all dims.
inline std::vector<int> reduction_dims(const std::vector<int>& dims, int rank, const char* op) {
  std::vector<int> out;
  if (dims.empty()) {
    for (int i = 0; i < rank; ++i) out.push_back(i);
    return out;
  }
  for (int d : dims) out.push_back(wrap_dim(d, rank, op));
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

inline Shape reduced_shape(const Shape& shape, const std::vector<int>& dims, bool keepdim) {
  Shape out;
  for (int i = 0; i < shape.size(); ++i) {
    const bool reduced = std::find(dims.begin(), dims.end(), i) != dims.end();
    if (!reduced) out.push_back(shape[i]);
    else if (keepdim) out.push_back(1);
  }
  return out;
}

struct ReductionLayout {
  std::int64_t outer = 1, reduced = 1, inner = 1;
};

// Returns a contiguous tensor whose elements form (outer, reduced, inner) for `dims`.
template <class T, class D>
Tensor<T, D> reduction_input(const Tensor<T, D>& x, const std::vector<int>& dims, ReductionLayout& layout) {
  const bool adjacent = dims.empty() || dims.back() - dims.front() + 1 == static_cast<int>(dims.size());
  if (x.is_contiguous() && adjacent) {
    for (int i = 0; i < x.dim(); ++i) {
      if (!dims.empty() && i < dims.front()) layout.outer *= x.shape()[i];
      else if (!dims.empty() && i <= dims.back()) layout.reduced *= x.shape()[i];
      else layout.inner *= x.shape()[i];
    }
    return x;
  }
  std::vector<int> order;
  for (int i = 0; i < x.dim(); ++i)
    if (std::find(dims.begin(), dims.end(), i) == dims.end()) order.push_back(i), layout.outer *= x.shape()[i];
  for (int d : dims) order.push_back(d), layout.reduced *= x.shape()[d];
  NoGradGuard no_grad;
  return contiguous(permute(x.detach(), order));
}

}  // namespace detail

// Sum over `dims` (all when empty).
template <class T, class D>
Tensor<T, D> sum(const Tensor<T, D>& x, const std::vector<int>& dims = {}, bool keepdim = false) {
  const std::vector<int> reduce = detail::reduction_dims(dims, x.dim(), "sum");
  detail::ReductionLayout layout;
  const Tensor<T, D> input = detail::reduction_input(x.detach(), reduce, layout);
  Tensor<T, D> y = empty<T, D>(detail::reduced_shape(x.shape(), reduce, keepdim));
  backend::Kernels<D>::sum_middle(input.data(), y.data(), layout.outer, layout.reduced, layout.inner);
  if (autograd::needs_grad(x))
    autograd::record(y, [x = autograd::grad_target(x), reduce](const Tensor<T, D>& g) {
      autograd::accumulate_grad(x, expand(reshape(g, detail::reduced_shape(x.shape, reduce, true)), x.shape));
    });
  return y;
}

// Sums a gradient of a broadcast result back to `shape` (the input's shape).
template <class T, class D>
Tensor<T, D> sum_to(const Tensor<T, D>& t, const Shape& shape) {
  if (t.shape() == shape) return t;
  std::vector<int> dims;
  const int lead = t.dim() - shape.size();
  for (int i = 0; i < t.dim(); ++i)
    if (i < lead || (shape[i - lead] == 1 && t.shape()[i] != 1)) dims.push_back(i);
  if (dims.empty()) return reshape(t, shape);
  return reshape(sum(t, dims, true), shape);
}

template <class T, class D>
Tensor<T, D> mean(const Tensor<T, D>& x, const std::vector<int>& dims = {}, bool keepdim = false) {
  const std::vector<int> reduce = detail::reduction_dims(dims, x.dim(), "mean");
  std::int64_t count = 1;
  for (int d : reduce) count *= x.shape()[d];
  return sum(x, reduce, keepdim) * (T(1) / static_cast<T>(count));
}

// Variance over dims; unbiased divides by n - 1 (PyTorch's default), else by n.
template <class T, class D>
Tensor<T, D> var(const Tensor<T, D>& x, const std::vector<int>& dims = {}, bool unbiased = true, bool keepdim = false) {
  const std::vector<int> reduce = detail::reduction_dims(dims, x.dim(), "var");
  std::int64_t count = 1;
  for (int d : reduce) count *= x.shape()[d];
  const Tensor<T, D> centered = x - mean(x, reduce, true);
  return sum(centered * centered, reduce, keepdim) * (T(1) / static_cast<T>(unbiased ? count - 1 : count));
}

// Euclidean (Frobenius) norm over dims.
template <class T, class D>
Tensor<T, D> norm(const Tensor<T, D>& x, const std::vector<int>& dims = {}, bool keepdim = false) {
  return sqrt(sum(x * x, dims, keepdim));
}

template <class T, class D>
struct ValuesIndices {
  Tensor<T, D> values;
  Tensor<std::int64_t, D> indices;
};

template <class T, class D>
Tensor<T, D> scatter_add(const Tensor<T, D>& x, int dim, const Tensor<std::int64_t, D>& index, const Tensor<T, D>& src);

namespace detail {
template <class T, class D>
ValuesIndices<T, D> extremum(const Tensor<T, D>& x, int dim, bool keepdim, bool largest, const char* op) {
  dim = wrap_dim(dim, x.dim(), op);
  if (x.dim() > 0 && x.shape()[dim] == 0) throw ShapeError(std::string(op) + ": reduction over an empty dim of " + x.shape().str());
  const std::vector<int> reduce = x.dim() == 0 ? std::vector<int>{} : std::vector<int>{dim};
  ReductionLayout layout;
  const Tensor<T, D> input = reduction_input(x.detach(), reduce, layout);
  const Shape kept = reduced_shape(x.shape(), reduce, true);
  ValuesIndices<T, D> out{empty<T, D>(kept), Tensor<std::int64_t, D>::empty(kept)};
  backend::Kernels<D>::extremum_middle(input.data(), out.values.data(), out.indices.data(), layout.outer, layout.reduced,
                                       layout.inner, largest);
  if (autograd::needs_grad(x))
    autograd::record(out.values, [x, dim, index = out.indices](const Tensor<T, D>& g) {
      autograd::accumulate_grad(x, x.dim() == 0 ? g : scatter_add(zeros_like(x), dim, index, g));
    });
  if (!keepdim && x.dim() > 0) out.values = squeeze(out.values, dim), out.indices = squeeze(out.indices, dim);
  return out;
}
}  // namespace detail

// Largest value along dim and its (first) index.
template <class T, class D>
ValuesIndices<T, D> max(const Tensor<T, D>& x, int dim, bool keepdim = false) {
  return detail::extremum(x, dim, keepdim, true, "max");
}
template <class T, class D>
ValuesIndices<T, D> min(const Tensor<T, D>& x, int dim, bool keepdim = false) {
  return detail::extremum(x, dim, keepdim, false, "min");
}
// Over all elements.
template <class T, class D>
Tensor<T, D> max(const Tensor<T, D>& x) {
  return max(flatten(x), 0).values;
}
template <class T, class D>
Tensor<T, D> min(const Tensor<T, D>& x) {
  return min(flatten(x), 0).values;
}
template <class T, class D>
Tensor<std::int64_t, D> argmax(const Tensor<T, D>& x, int dim, bool keepdim = false) {
  NoGradGuard no_grad;
  return max(x, dim, keepdim).indices;
}
template <class T, class D>
Tensor<std::int64_t, D> argmin(const Tensor<T, D>& x, int dim, bool keepdim = false) {
  NoGradGuard no_grad;
  return min(x, dim, keepdim).indices;
}

namespace detail {
// (log-)softmax of scale * x over the last dim of a tensor.
template <class T, class D>
Tensor<T, D> softmax_last(const Tensor<T, D>& x, T scale, bool log) {
  const Tensor<T, D> input = contiguous(x.detach());
  const std::int64_t n = x.dim() == 0 ? 1 : x.shape().back();
  const std::int64_t rows = n == 0 ? 0 : x.numel() / n;
  Tensor<T, D> y = empty<T, D>(x.shape());
  backend::Kernels<D>::softmax_rows(input.data(), y.data(), rows, n, scale, log);
  if (autograd::needs_grad(x))
    autograd::record(y, [x = autograd::grad_target(x), y = y.detach(), rows, n, scale, log](const Tensor<T, D>& g) {
      const Tensor<T, D> gy = contiguous(g);
      Tensor<T, D> gx = empty<T, D>(x.shape);
      backend::Kernels<D>::softmax_rows_backward(y.data(), gy.data(), gx.data(), rows, n, scale, log);
      autograd::accumulate_grad(x, gx);
    });
  return y;
}

template <class T, class D>
Tensor<T, D> softmax_along(const Tensor<T, D>& x, int dim, T scale, bool log) {
  dim = wrap_dim(dim, x.dim(), log ? "log_softmax" : "softmax");
  if (x.dim() == 0 || dim == x.dim() - 1) return softmax_last(x, scale, log);
  return transpose(softmax_last(transpose(x, dim, -1), scale, log), dim, -1);
}
}  // namespace detail

// softmax(scale * x) along dim; the scale folds attention's 1/sqrt(d) into one pass.
template <class T, class D>
Tensor<T, D> softmax(const Tensor<T, D>& x, int dim, std::type_identity_t<T> scale = T(1)) {
  return detail::softmax_along(x, dim, scale, false);
}
template <class T, class D>
Tensor<T, D> log_softmax(const Tensor<T, D>& x, int dim, std::type_identity_t<T> scale = T(1)) {
  return detail::softmax_along(x, dim, scale, true);
}

}  // namespace metro
