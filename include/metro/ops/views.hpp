#pragma once
// Views share storage with their input and only change shape, strides and
// offset. Each is differentiable: its backward maps the view's gradient back to
// the input's geometry (reshape back, inverse permutation, write into a zero
// tensor at the sliced positions, sum over expanded dimensions).
#include <numeric>
#include <string>
#include <vector>

#include "metro/ops/elementwise.hpp"

namespace metro {

namespace detail {
// A view of x with the given geometry; `backward(g)` receives the view's gradient.
template <class T, class D, class Backward>
Tensor<T, D> make_view(const Tensor<T, D>& x, const Shape& shape, const Strides& strides, std::int64_t offset, Backward backward) {
  Tensor<T, D> y = Tensor<T, D>::view_of(x, shape, strides, offset);
  if (autograd::needs_grad(x)) autograd::record(y, std::move(backward));
  return y;
}
}  // namespace detail

// A contiguous copy (a new tensor even when x is contiguous).
template <class T, class D>
Tensor<T, D> clone(const Tensor<T, D>& x) {
  Tensor<T, D> y = empty<T, D>(x.shape());
  copy_(y, x.detach());
  if (autograd::needs_grad(x))
    autograd::record(y, [x = autograd::grad_target(x)](const Tensor<T, D>& g) { autograd::accumulate_grad(x, g); });
  return y;
}

// x itself when already contiguous, else a contiguous copy.
template <class T, class D>
Tensor<T, D> contiguous(const Tensor<T, D>& x) {
  return x.is_contiguous() ? x : clone(x);
}

// Same elements in a new shape; one dimension may be -1 (inferred). A view when x is contiguous.
template <class T, class D>
Tensor<T, D> reshape(const Tensor<T, D>& x, const Shape& requested) {
  Shape shape = requested;
  int infer = -1;
  for (int i = 0; i < shape.size() && infer < 0; ++i)
    if (shape[i] == -1) infer = i, shape[i] = 1;
  const std::int64_t known = checked_numel(shape, "reshape");  // the inferred dimension counted as 1; a second -1 is an error
  if (infer >= 0 && known != 0) shape[infer] = x.numel() / known;
  if (shape.numel() != x.numel())
    throw ShapeError("reshape: cannot view " + x.shape().str() + " (" + std::to_string(x.numel()) + " elements) as " +
                     requested.str());
  const Tensor<T, D> source = contiguous(x);
  return detail::make_view(source, shape, contiguous_strides(shape), source.offset(),
                           [source](const Tensor<T, D>& g) { autograd::accumulate_grad(source, reshape(g, source.shape())); });
}

template <class T, class D>
Tensor<T, D> flatten(const Tensor<T, D>& x, int start = 0, int end = -1) {
  if (x.dim() == 0) return reshape(x, {1});
  start = wrap_dim(start, x.dim(), "flatten"), end = wrap_dim(end, x.dim(), "flatten");
  Shape shape;
  for (int i = 0; i < start; ++i) shape.push_back(x.shape()[i]);
  std::int64_t merged = 1;
  for (int i = start; i <= end; ++i) merged *= x.shape()[i];
  shape.push_back(merged);
  for (int i = end + 1; i < x.dim(); ++i) shape.push_back(x.shape()[i]);
  return reshape(x, shape);
}

// Reorders the dimensions: result dim i is x's dim order[i].
template <class T, class D>
Tensor<T, D> permute(const Tensor<T, D>& x, const std::vector<int>& order) {
  if (static_cast<int>(order.size()) != x.dim())
    throw ShapeError("permute: " + std::to_string(order.size()) + " dims given for a tensor of shape " + x.shape().str());
  Shape shape;
  Strides strides{};
  std::vector<int> inverse(order.size(), -1);
  for (std::size_t i = 0; i < order.size(); ++i) {
    const int d = wrap_dim(order[i], x.dim(), "permute");
    if (inverse[static_cast<std::size_t>(d)] != -1) throw ShapeError("permute: dim " + std::to_string(d) + " repeated");
    inverse[static_cast<std::size_t>(d)] = static_cast<int>(i);
    shape.push_back(x.shape()[d]);
    strides[i] = x.strides()[static_cast<std::size_t>(d)];
  }
  return detail::make_view(x, shape, strides, x.offset(),
                           [x = autograd::grad_target(x), inverse](const Tensor<T, D>& g) { autograd::accumulate_grad(x, permute(g, inverse)); });
}

template <class T, class D>
Tensor<T, D> transpose(const Tensor<T, D>& x, int d0, int d1) {
  std::vector<int> order(static_cast<std::size_t>(x.dim()));
  std::iota(order.begin(), order.end(), 0);
  std::swap(order[static_cast<std::size_t>(wrap_dim(d0, x.dim(), "transpose"))],
            order[static_cast<std::size_t>(wrap_dim(d1, x.dim(), "transpose"))]);
  return permute(x, order);
}

// Elements start, start+step, ... (< end) along dim.
template <class T, class D>
Tensor<T, D> slice(const Tensor<T, D>& x, int dim, std::int64_t start, std::int64_t end, std::int64_t step = 1) {
  dim = wrap_dim(dim, x.dim(), "slice");
  const std::int64_t size = x.shape()[dim];
  if (start < 0) start += size;
  if (end < 0) end += size;
  end = std::min(end, size);
  if (step < 1 || start < 0 || start > end)
    throw ShapeError("slice: range [" + std::to_string(start) + ", " + std::to_string(end) + ") step " + std::to_string(step) +
                     " invalid for dim " + std::to_string(dim) + " of shape " + x.shape().str());
  Shape shape = x.shape();
  Strides strides = x.strides();
  const auto sd = static_cast<std::size_t>(dim);
  shape[dim] = (end - start + step - 1) / step;
  const std::int64_t offset = x.offset() + start * strides[sd];
  strides[sd] *= step;
  return detail::make_view(x, shape, strides, offset, [x = autograd::grad_target(x), dim, start, end, step](const Tensor<T, D>& g) {
    Tensor<T, D> gx = zeros<T, D>(x.shape);
    copy_(slice(gx, dim, start, end, step), g);
    autograd::accumulate_grad(x, gx);
  });
}

// Elements [start, start + length) along dim, all inside it (unlike slice, which clips).
template <class T, class D>
Tensor<T, D> narrow(const Tensor<T, D>& x, int dim, std::int64_t start, std::int64_t length) {
  dim = wrap_dim(dim, x.dim(), "narrow");
  if (start < 0 || length < 0 || start > x.shape()[dim] - length)
    throw ShapeError("narrow: [" + std::to_string(start) + ", " + std::to_string(start) + " + " + std::to_string(length) + ") outside dim " +
                     std::to_string(dim) + " of shape " + x.shape().str());
  return slice(x, dim, start, start + length);
}

template <class T, class D>
Tensor<T, D> squeeze(const Tensor<T, D>& x, int dim) {
  dim = wrap_dim(dim, x.dim(), "squeeze");
  if (x.shape()[dim] != 1) return x;
  Shape shape = x.shape();
  Strides strides = x.strides();
  shape.erase(dim);
  for (int i = dim; i + 1 < x.dim(); ++i) strides[static_cast<std::size_t>(i)] = strides[static_cast<std::size_t>(i + 1)];
  return detail::make_view(x, shape, strides, x.offset(),
                           [x](const Tensor<T, D>& g) { autograd::accumulate_grad(x, reshape(g, x.shape())); });
}

template <class T, class D>
Tensor<T, D> unsqueeze(const Tensor<T, D>& x, int dim) {
  dim = wrap_dim(dim, x.dim() + 1, "unsqueeze");
  Shape shape = x.shape();
  Strides strides{};
  for (int i = 0, j = 0; i <= x.dim(); ++i)
    strides[static_cast<std::size_t>(i)] = i == dim ? 1 : x.strides()[static_cast<std::size_t>(j++)];
  shape.insert(dim, 1);
  return detail::make_view(x, shape, strides, x.offset(),
                           [x](const Tensor<T, D>& g) { autograd::accumulate_grad(x, reshape(g, x.shape())); });
}

// The sub-tensor at `index` along dim (that dim removed).
template <class T, class D>
Tensor<T, D> select(const Tensor<T, D>& x, int dim, std::int64_t index) {
  dim = wrap_dim(dim, x.dim(), "select");
  if (index < 0) index += x.shape()[dim];
  if (index < 0 || index >= x.shape()[dim])
    throw ShapeError("select: index " + std::to_string(index) + " out of range for dim " + std::to_string(dim) + " of shape " +
                     x.shape().str());
  return squeeze(narrow(x, dim, index, 1), dim);
}

// Broadcasts size-1 dims (and new leading dims) to `shape` without copying; -1 keeps a size.
template <class T, class D>
Tensor<T, D> expand(const Tensor<T, D>& x, const Shape& shape) {
  if (shape.size() < x.dim())
    throw ShapeError("expand: cannot expand " + x.shape().str() + " to fewer dims " + shape.str());
  Shape out;
  Strides strides{};
  const int lead = shape.size() - x.dim();
  for (int i = 0; i < shape.size(); ++i) {
    const std::int64_t have = i >= lead ? x.shape()[i - lead] : 1;
    const std::int64_t want = shape[i] == -1 ? have : shape[i];
    if (have != want && have != 1)
      throw ShapeError("expand: cannot expand " + x.shape().str() + " to " + shape.str() + " (dim " + std::to_string(i) + ")");
    out.push_back(want);
    strides[static_cast<std::size_t>(i)] = (i < lead || have != want) ? 0 : x.strides()[static_cast<std::size_t>(i - lead)];
  }
  return detail::make_view(x, out, strides, x.offset(), [x](const Tensor<T, D>& g) { autograd::accumulate_grad(x, g); });
}

template <class T, class D>
Tensor<T, D> broadcast_to(const Tensor<T, D>& x, const Shape& shape) {
  return expand(x, shape);
}

}  // namespace metro
