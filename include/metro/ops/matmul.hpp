#pragma once
// Matrix products. matmul follows NumPy/PyTorch: 1-D operands are promoted to a
// row or column, leading (batch) dims broadcast. Each 2-D product runs Eigen's
// GEMM directly on the tensors' buffers: a row-major or column-major view (for
// example a transpose) is mapped without a copy.
#include <string>
#include <utility>

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
  Shape batch;
  try {
    batch = broadcast_shapes(batch_a, batch_b, "matmul");
  } catch (const ShapeError&) {
    throw ShapeError("matmul: the batch dimensions of " + a.shape().str() + " and " + b.shape().str() + " do not broadcast");
  }
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

namespace detail {

template <class T, class D>
void check_linear(const char* op, const Tensor<T, D>& x, const Tensor<T, D>& weight, const Tensor<T, D>& bias) {
  if (weight.dim() != 2 || x.dim() == 0 || x.shape().back() != weight.shape()[1])
    throw ShapeError(std::string(op) + ": input " + x.shape().str() + " does not match weight " + weight.shape().str());
  if (bias.defined() && !(bias.shape() == Shape{weight.shape()[0]}))
    throw ShapeError(std::string(op) + ": bias " + bias.shape().str() + " does not match weight " + weight.shape().str());
}

// x (..., in) as the (R, in) rows of a GEMM operand, without a copy where the
// strides allow one (detached: the values, for forward and backward products).
template <class T, class D>
Tensor<T, D> gemm_rows(const Tensor<T, D>& x, std::int64_t in) {
  const Tensor<T, D> rows = reshape(x.detach(), {-1, in});
  return eigen_mappable(rows) ? rows : contiguous(rows);
}

// y = rows w^T + b (no autograd) for rows (R, in) laid out for the GEMM, w (out, in)
// and b (out) contiguous, returned with `shape`'s last dim set to out: one GEMM
// that adds the bias to every row (Kernels::gemm_bias).
template <class T, class D>
Tensor<T, D> affine_forward(const Tensor<T, D>& rows, const Tensor<T, D>& w, const Tensor<T, D>& b, Shape shape) {
  const std::int64_t in = w.shape()[1], out = w.shape()[0];
  shape[shape.size() - 1] = out;
  Tensor<T, D> y = empty<T, D>(shape);  // (..., out), filled as (R, out)
  backend::Kernels<D>::gemm_bias(matrix_view(rows, 0), {w.data(), in, out, 1, in}, b.data(), y.data(), out);
  return y;
}

// The weight's and the bias's gradients of y = rows w^T + b from g2 = dL/dy as (R, out);
// rows() gives the rows, called only when the weight needs its gradient.
template <class T, class D, class Rows>
void affine_parameter_grads(const Tensor<T, D>& weight, const Tensor<T, D>& bias, const Tensor<T, D>& g2, Rows rows) {
  if (weight.requires_grad()) autograd::accumulate_grad(weight, matmul_forward(transpose(g2, 0, 1), rows()));
  if (bias.requires_grad()) {
    const std::int64_t count = g2.shape()[0], out = g2.shape()[1];
    Tensor<T, D> gb = empty<T, D>({out});
    backend::Kernels<D>::sum_middle(g2.data(), gb.data(), 1, count, out);
    autograd::accumulate_grad(bias, gb);
  }
}

}  // namespace detail

// x @ weight^T + bias, as nn.Linear: x (..., in), weight (out, in), bias (out) or undefined.
// With a bias it is one op: the output rows start as the bias and the GEMM
// accumulates into them (no separate broadcast-add pass and temporary).
template <class T, class D>
Tensor<T, D> linear(const Tensor<T, D>& x, const Tensor<T, D>& weight, const Tensor<T, D>& bias = {}) {
  detail::check_linear("linear", x, weight, bias);
  if (!bias.defined()) return matmul(x, transpose(weight, 0, 1));
  const Tensor<T, D> rows = detail::gemm_rows(x, weight.shape()[1]);  // (R, in)
  const Tensor<T, D> w = contiguous(weight.detach());
  Tensor<T, D> y = detail::affine_forward(rows, w, contiguous(bias.detach()), x.shape());
  if (autograd::needs_grad(x, weight, bias))
    autograd::record(y, [x, weight, bias, rows, w](const Tensor<T, D>& g) {
      const Tensor<T, D> g2 = reshape(contiguous(g), {rows.shape()[0], w.shape()[0]});  // (R, out)
      if (x.requires_grad()) autograd::accumulate_grad(x, reshape(detail::matmul_forward(g2, w), x.shape()));
      detail::affine_parameter_grads(weight, bias, g2, [&] { return rows; });
    });
  return y;
}

// linear(gelu(linear(x, w1, b1)), w2, b2), BERT's feed-forward (the Intermediate
// dense, the erf GELU, the Output dense) as one op that keeps only x on the tape:
// the backward recomputes the (R, I) pre-activation and its GELU from x with one
// more GEMM. Composed of three ops, the tape would keep both (R, I) tensors:
// 2 x 44 MB per layer at batch 8 with 445 tokens and I = 3072. The forward needs
// one (R, I) buffer, the backward two.
template <class T, class D>
Tensor<T, D> feed_forward(const Tensor<T, D>& x, const Tensor<T, D>& w1, const Tensor<T, D>& b1, const Tensor<T, D>& w2,
                          const Tensor<T, D>& b2) {
  detail::check_linear("feed_forward", x, w1, b1);
  if (!b1.defined() || !b2.defined()) throw ValueError("feed_forward: needs both biases");
  if (w2.dim() != 2 || w2.shape()[1] != w1.shape()[0] || !(b2.shape() == Shape{w2.shape()[0]}))
    throw ShapeError("feed_forward: second weight " + w2.shape().str() + " and bias " + b2.shape().str() +
                     " do not follow first weight " + w1.shape().str());
  const std::int64_t inner = w1.shape()[0], out = w2.shape()[0];
  const Tensor<T, D> rows = detail::gemm_rows(x, w1.shape()[1]);  // (R, in)
  const Tensor<T, D> v1 = contiguous(w1.detach()), c1 = contiguous(b1.detach());
  const Tensor<T, D> v2 = contiguous(w2.detach()), c2 = contiguous(b2.detach());
  const auto pre_activation = [rows, v1, c1] { return detail::affine_forward(rows, v1, c1, rows.shape()); };  // (R, I)
  const auto gelu_into = [](const Tensor<T, D>& from, Tensor<T, D>& to) { backend::Kernels<D>::gelu(from.data(), to.data(), from.numel()); };
  Tensor<T, D> act = pre_activation();
  gelu_into(act, act);
  Tensor<T, D> y = detail::affine_forward(act, v2, c2, x.shape());  // (..., out)
  if (autograd::needs_grad(x, w1, b1, w2, b2))
    autograd::record(y, [x = autograd::grad_target(x), w1, b1, w2, b2, rows, v1, v2, pre_activation, gelu_into, inner,
                         out](const Tensor<T, D>& g) {
      const Tensor<T, D> pre = pre_activation();
      Tensor<T, D> act = empty<T, D>(pre.shape());
      gelu_into(pre, act);
      const Tensor<T, D> g2 = reshape(contiguous(g), {rows.shape()[0], out});  // (R, out)
      detail::affine_parameter_grads(w2, b2, g2, [&] { return act; });
      if (!x.requires_grad() && !w1.requires_grad() && !b1.requires_grad()) return;
      Tensor<T, D> g_pre = std::move(act);  // (R, I): dL/dgelu, then dL/dpre in place
      backend::Kernels<D>::gemm(detail::matrix_view(g2, 0), {v2.data(), out, inner, inner, 1}, g_pre.data(), inner, false);
      backend::Kernels<D>::gelu_backward(pre.data(), g_pre.data(), g_pre.data(), pre.numel());
      detail::affine_parameter_grads(w1, b1, g_pre, [&] { return rows; });
      if (x.requires_grad()) autograd::accumulate_grad(x, reshape(detail::matmul_forward(g_pre, v1), x.shape));
    });
  return y;
}

}  // namespace metro
