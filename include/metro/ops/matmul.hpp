#pragma once
// Matrix products. matmul follows NumPy/PyTorch: 1-D operands are promoted to a
// row or column, leading (batch) dims broadcast. Each 2-D product runs Eigen's
// GEMM directly on the tensors' buffers: a row-major or column-major view (for
// example a transpose) is mapped without a copy.
#include <string>

#include "metro/ops/reduce.hpp"

namespace metro {

namespace detail {

template <class T, class D>
bool eigen_mappable(const Tensor<T, D>& m) {
  const std::int64_t rows = m.shape()[m.dim() - 2], cols = m.shape().back();
  const std::int64_t rs = m.strides()[static_cast<std::size_t>(m.dim() - 2)], cs = m.strides()[static_cast<std::size_t>(m.dim() - 1)];
  return (cs == 1 && rs >= cols) || (rs == 1 && cs >= rows);
}

template <class T, class D>
typename backend::Kernels<D>::template MatrixView<T> matrix_view(const Tensor<T, D>& m, std::int64_t offset) {
  const int r = m.dim();
  return {m.data() + offset, m.shape()[r - 2], m.shape()[r - 1], m.strides()[static_cast<std::size_t>(r - 2)],
          m.strides()[static_cast<std::size_t>(r - 1)]};
}

// Offset of batch element `index` of a tensor broadcast to `batch` (all dims but the last two).
inline std::int64_t batch_offset(std::int64_t index, const Shape& batch, const Strides& strides) {
  std::int64_t offset = 0;
  for (int d = batch.size() - 1; d >= 0; --d) {
    offset += index % batch[d] * strides[static_cast<std::size_t>(d)];
    index /= batch[d];
  }
  return offset;
}

// The product of two tensors of rank >= 2 (no autograd).
template <class T, class D>
Tensor<T, D> matmul_forward(Tensor<T, D> a, Tensor<T, D> b) {
  const std::int64_t n = a.shape()[a.dim() - 2], k = a.shape().back(), m = b.shape().back();
  Shape batch_a, batch_b;
  for (int i = 0; i + 2 < a.dim(); ++i) batch_a.push_back(a.shape()[i]);
  for (int i = 0; i + 2 < b.dim(); ++i) batch_b.push_back(b.shape()[i]);
  const Shape batch = broadcast_shapes(batch_a, batch_b, "matmul");
  if (!eigen_mappable(a)) a = contiguous(a);
  if (!eigen_mappable(b)) b = contiguous(b);
  Shape out_shape = batch;
  out_shape.push_back(n);
  out_shape.push_back(m);
  Tensor<T, D> y = empty<T, D>(out_shape);
  Shape full_a = batch, full_b = batch;
  full_a.push_back(n), full_a.push_back(k), full_b.push_back(k), full_b.push_back(m);
  const Strides sa = broadcast_strides(a, full_a), sb = broadcast_strides(b, full_b);
  backend::Kernels<D>::template batched<T>(batch.numel(), 2 * n * k * m, [&](std::int64_t i) {
    backend::Kernels<D>::gemm(matrix_view(a, batch_offset(i, batch, sa)), matrix_view(b, batch_offset(i, batch, sb)),
                              y.data() + i * n * m, m, false);
  });
  return y;
}

}  // namespace detail

template <class T, class D>
Tensor<T, D> matmul(const Tensor<T, D>& a, const Tensor<T, D>& b) {
  if (a.dim() == 0 || b.dim() == 0) throw ShapeError("matmul: scalar operand " + a.shape().str() + " @ " + b.shape().str());
  if (a.dim() == 1 && b.dim() == 1) return reshape(matmul(unsqueeze(a, 0), unsqueeze(b, 1)), Shape{});
  if (a.dim() == 1) return squeeze(matmul(unsqueeze(a, 0), b), -2);
  if (b.dim() == 1) return squeeze(matmul(a, unsqueeze(b, 1)), -1);
  const std::int64_t k = a.shape().back(), kb = b.shape()[b.dim() - 2];
  if (k != kb)
    throw ShapeError("matmul: " + a.shape().str() + " @ " + b.shape().str() + ": inner dims " + std::to_string(k) +
                     " != " + std::to_string(kb));
  // (..., n, k) @ (k, m): one GEMM with the leading dims folded into rows.
  if (b.dim() == 2 && a.dim() > 2) {
    Shape out = a.shape();
    out[out.size() - 1] = b.shape().back();
    return reshape(matmul(reshape(a, {-1, k}), b), out);
  }
  Tensor<T, D> y = detail::matmul_forward(a.detach(), b.detach());
  if (autograd::needs_grad(a, b))
    autograd::record(y, [a, b](const Tensor<T, D>& g) {
      if (a.requires_grad()) autograd::accumulate_grad(a, detail::matmul_forward(g, transpose(b.detach(), -1, -2)));
      if (b.requires_grad()) autograd::accumulate_grad(b, detail::matmul_forward(transpose(a.detach(), -1, -2), g));
    });
  return y;
}

// x @ weight^T + bias, as nn.Linear: x (..., in), weight (out, in), bias (out) or undefined.
// With a bias it is one op: the output rows start as the bias and the GEMM
// accumulates into them (no separate broadcast-add pass and temporary).
template <class T, class D>
Tensor<T, D> linear(const Tensor<T, D>& x, const Tensor<T, D>& weight, const Tensor<T, D>& bias = {}) {
  if (weight.dim() != 2 || x.dim() == 0 || x.shape().back() != weight.shape()[1])
    throw ShapeError("linear: input " + x.shape().str() + " does not match weight " + weight.shape().str());
  if (!bias.defined()) return matmul(x, transpose(weight, 0, 1));
  const std::int64_t in = weight.shape()[1], out = weight.shape()[0];
  if (!(bias.shape() == Shape{out})) throw ShapeError("linear: bias " + bias.shape().str() + " does not match weight " + weight.shape().str());
  Tensor<T, D> rows = reshape(x.detach(), {-1, in});  // (R, in)
  if (!detail::eigen_mappable(rows)) rows = contiguous(rows);
  const Tensor<T, D> w = contiguous(weight.detach()), b = contiguous(bias.detach());
  Shape out_shape = x.shape();
  out_shape[out_shape.size() - 1] = out;
  Tensor<T, D> y = empty<T, D>(out_shape);  // (..., out), filled as (R, out)
  const std::int64_t count = rows.shape()[0];
  copy_(reshape(y, {count, out}), b);
  backend::Kernels<D>::gemm(detail::matrix_view(rows, 0), {w.data(), in, out, 1, in}, y.data(), out, true);
  if (autograd::needs_grad(x, weight, bias))
    autograd::record(y, [x, weight, bias, rows, w, count, in, out](const Tensor<T, D>& g) {
      const Tensor<T, D> g2 = reshape(contiguous(g), {count, out});  // (R, out)
      if (x.requires_grad()) autograd::accumulate_grad(x, reshape(detail::matmul_forward(g2, w), x.shape()));
      if (weight.requires_grad()) autograd::accumulate_grad(weight, detail::matmul_forward(transpose(g2, 0, 1), rows));
      if (bias.requires_grad()) {
        Tensor<T, D> gb = empty<T, D>({out});
        backend::Kernels<D>::sum_middle(g2.data(), gb.data(), 1, count, out);
        autograd::accumulate_grad(bias, gb);
      }
    });
  return y;
}

}  // namespace metro
