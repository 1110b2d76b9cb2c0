#pragma once
// Elementwise ops with NumPy broadcasting. Each op's forward and backward sit
// together: the forward maps a functor over the (broadcast) elements, and the
// lambda passed to record() computes the input gradients from the output
// gradient `g`. Gradients of broadcast inputs are summed back to the input's
// shape by accumulate_grad.
#include <cmath>
#include <functional>
#include <numbers>
#include <string>
#include <type_traits>

#include "metro/ops/common.hpp"

namespace metro {

// ---- building blocks ------------------------------------------------------

// y[i] = f(x[i]); not recorded on the tape.
template <class T, class D, class F>
Tensor<T, D> map(const Tensor<T, D>& x, F f) {
  Tensor<T, D> y = empty<T, D>(x.shape());
  backend::Kernels<D>::template map<T, T, 1>(x.shape(), y.data(), y.strides(), {x.data()}, {&x.strides()}, f);
  return y;
}

// y[i] = f(a[i], b[i]) with broadcasting; not recorded on the tape.
template <class T, class D, class F>
Tensor<T, D> map(const Tensor<T, D>& a, const Tensor<T, D>& b, F f, const char* op = "map") {
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), op);
  const Strides sa = broadcast_strides(a, shape), sb = broadcast_strides(b, shape);
  Tensor<T, D> y = empty<T, D>(shape);
  backend::Kernels<D>::template map<T, T, 2>(shape, y.data(), y.strides(), {a.data(), b.data()}, {&sa, &sb}, f);
  return y;
}

// y[i] = f(a[i], b[i], c[i]) with broadcasting; not recorded on the tape.
template <class T, class D, class F>
Tensor<T, D> map(const Tensor<T, D>& a, const Tensor<T, D>& b, const Tensor<T, D>& c, F f, const char* op = "map") {
  const Shape shape = broadcast_shapes(broadcast_shapes(a.shape(), b.shape(), op), c.shape(), op);
  const Strides sa = broadcast_strides(a, shape), sb = broadcast_strides(b, shape), sc = broadcast_strides(c, shape);
  Tensor<T, D> y = empty<T, D>(shape);
  backend::Kernels<D>::template map<T, T, 3>(shape, y.data(), y.strides(), {a.data(), b.data(), c.data()},
                                             {&sa, &sb, &sc}, f);
  return y;
}

// dst[i] = f(dst[i], src[i]) in place; src broadcasts to dst's shape. Not recorded.
template <class T, class D, class F>
void update_(const Tensor<T, D>& dst, const Tensor<T, D>& src, F f, const char* op = "update_") {
  if (!(broadcast_shapes(dst.shape(), src.shape(), op) == dst.shape()))
    throw ShapeError(std::string(op) + ": cannot write shape " + src.shape().str() + " into " + dst.shape().str());
  const Strides ss = broadcast_strides(src, dst.shape());
  backend::Kernels<D>::template map<T, T, 2>(dst.shape(), dst.data(), dst.strides(), {dst.data(), src.data()},
                                             {&dst.strides(), &ss}, f);
}

// In-place copy and accumulation into (possibly strided) views; not recorded.
template <class T, class D>
void copy_(const Tensor<T, D>& dst, const Tensor<T, D>& src) {
  update_(dst, src, [](T, T s) { return s; }, "copy_");
}
template <class T, class D>
void add_(Tensor<T, D>& dst, const Tensor<T, D>& src) {
  update_(dst, src, [](T d, T s) { return d + s; }, "add_");
}
template <class T, class D>
void fill_(const Tensor<T, D>& dst, T value) {
  backend::Kernels<D>::template map<T, T, 0>(dst.shape(), dst.data(), dst.strides(), {}, {}, [value]() { return value; });
}

// ---- unary ops --------------------------------------------------------------

template <class T, class D>
Tensor<T, D> neg(const Tensor<T, D>& x) {
  Tensor<T, D> y = map(x, [](T v) { return -v; });
  if (autograd::needs_grad(x))
    autograd::record(y, [x = autograd::grad_target(x)](const Tensor<T, D>& g) { autograd::accumulate_grad(x, neg(g)); });
  return y;
}

template <class T, class D>
Tensor<T, D> exp(const Tensor<T, D>& x) {
  Tensor<T, D> y = map(x, [](T v) { return std::exp(v); });
  if (autograd::needs_grad(x))
    autograd::record(y, [x, y = y.detach()](const Tensor<T, D>& g) { autograd::accumulate_grad(x, map(g, y, std::multiplies<T>{})); });
  return y;
}

template <class T, class D>
Tensor<T, D> log(const Tensor<T, D>& x) {
  Tensor<T, D> y = map(x, [](T v) { return std::log(v); });
  if (autograd::needs_grad(x))
    autograd::record(y, [x](const Tensor<T, D>& g) { autograd::accumulate_grad(x, map(g, x, std::divides<T>{})); });
  return y;
}

template <class T, class D>
Tensor<T, D> sqrt(const Tensor<T, D>& x) {
  Tensor<T, D> y = map(x, [](T v) { return std::sqrt(v); });
  if (autograd::needs_grad(x))
    autograd::record(y, [x, y = y.detach()](const Tensor<T, D>& g) {
      autograd::accumulate_grad(x, map(g, y, [](T gv, T yv) { return gv / (T(2) * yv); }));
    });
  return y;
}

template <class T, class D>
Tensor<T, D> abs(const Tensor<T, D>& x) {
  Tensor<T, D> y = map(x, [](T v) { return std::abs(v); });
  if (autograd::needs_grad(x))
    autograd::record(y, [x](const Tensor<T, D>& g) {
      autograd::accumulate_grad(x, map(g, x, [](T gv, T xv) { return xv > 0 ? gv : (xv < 0 ? -gv : T(0)); }));
    });
  return y;
}

template <class T, class D>
Tensor<T, D> relu(const Tensor<T, D>& x) {
  Tensor<T, D> y = map(x, [](T v) { return v > 0 ? v : T(0); });
  // y > 0 exactly where x > 0: the backward reads the output, so the input (often
  // a BatchNorm output nothing else needs) can be freed.
  if (autograd::needs_grad(x))
    autograd::record(y, [x = autograd::grad_target(x), y = y.detach()](const Tensor<T, D>& g) {
      autograd::accumulate_grad(x, map(g, y, [](T gv, T yv) { return yv > 0 ? gv : T(0); }));
    });
  return y;
}

// GELU, exact erf form as in BERT/METRO: x * Phi(x). One vectorized pass each
// way; the backward recomputes Phi and phi from x rather than keeping them.
template <class T, class D>
Tensor<T, D> gelu(const Tensor<T, D>& x) {
  const Tensor<T, D> input = contiguous(x.detach());
  Tensor<T, D> y = empty<T, D>(x.shape());
  backend::Kernels<D>::gelu(input.data(), y.data(), x.numel());
  if (autograd::needs_grad(x))
    autograd::record(y, [x, input](const Tensor<T, D>& g) {
      const Tensor<T, D> gy = contiguous(g);
      Tensor<T, D> gx = empty<T, D>(x.shape());
      backend::Kernels<D>::gelu_backward(input.data(), gy.data(), gx.data(), x.numel());
      autograd::accumulate_grad(x, gx);
    });
  return y;
}

template <class T, class D>
Tensor<T, D> tanh(const Tensor<T, D>& x) {
  Tensor<T, D> y = map(x, [](T v) { return std::tanh(v); });
  if (autograd::needs_grad(x))
    autograd::record(y, [x, y = y.detach()](const Tensor<T, D>& g) {
      autograd::accumulate_grad(x, map(g, y, [](T gv, T yv) { return gv * (T(1) - yv * yv); }));
    });
  return y;
}

template <class T, class D>
Tensor<T, D> sigmoid(const Tensor<T, D>& x) {
  Tensor<T, D> y = map(x, [](T v) { return T(1) / (T(1) + std::exp(-v)); });
  if (autograd::needs_grad(x))
    autograd::record(y, [x, y = y.detach()](const Tensor<T, D>& g) {
      autograd::accumulate_grad(x, map(g, y, [](T gv, T yv) { return gv * yv * (T(1) - yv); }));
    });
  return y;
}

// Clamps to [low, high]; the gradient passes where low <= x <= high (as PyTorch).
template <class T, class D>
Tensor<T, D> clamp(const Tensor<T, D>& x, T low, T high) {
  Tensor<T, D> y = map(x, [low, high](T v) { return v < low ? low : (v > high ? high : v); });
  if (autograd::needs_grad(x))
    autograd::record(y, [x, low, high](const Tensor<T, D>& g) {
      autograd::accumulate_grad(x, map(g, x, [low, high](T gv, T xv) { return xv >= low && xv <= high ? gv : T(0); }));
    });
  return y;
}

// x^p for a scalar exponent.
template <class T, class D>
Tensor<T, D> pow(const Tensor<T, D>& x, T p) {
  Tensor<T, D> y = map(x, [p](T v) { return std::pow(v, p); });
  if (autograd::needs_grad(x))
    autograd::record(y, [x, p](const Tensor<T, D>& g) {
      autograd::accumulate_grad(x, map(g, x, [p](T gv, T xv) { return gv * p * std::pow(xv, p - T(1)); }));
    });
  return y;
}

// ---- tensor (op) scalar -----------------------------------------------------

template <class T, class D>
Tensor<T, D> add(const Tensor<T, D>& x, T s) {
  Tensor<T, D> y = map(x, [s](T v) { return v + s; });
  if (autograd::needs_grad(x))
    autograd::record(y, [x = autograd::grad_target(x)](const Tensor<T, D>& g) { autograd::accumulate_grad(x, g); });
  return y;
}

template <class T, class D>
Tensor<T, D> mul(const Tensor<T, D>& x, T s) {
  Tensor<T, D> y = map(x, [s](T v) { return v * s; });
  if (autograd::needs_grad(x))
    autograd::record(y, [x = autograd::grad_target(x), s](const Tensor<T, D>& g) { autograd::accumulate_grad(x, mul(g, s)); });
  return y;
}

// s / x
template <class T, class D>
Tensor<T, D> rdiv(T s, const Tensor<T, D>& x) {
  Tensor<T, D> y = map(x, [s](T v) { return s / v; });
  if (autograd::needs_grad(x))
    autograd::record(y, [x, y = y.detach()](const Tensor<T, D>& g) {
      autograd::accumulate_grad(x, map(map(g, y, std::multiplies<T>{}), x, [](T gy, T xv) { return -gy / xv; }));
    });
  return y;
}

// ---- binary ops ---------------------------------------------------------------

template <class T, class D>
Tensor<T, D> add(const Tensor<T, D>& a, const Tensor<T, D>& b) {
  Tensor<T, D> y = map(a, b, std::plus<T>{}, "add");
  if (autograd::needs_grad(a, b))
    autograd::record(y, [a = autograd::grad_target(a), b = autograd::grad_target(b)](const Tensor<T, D>& g) {
      autograd::accumulate_grad(a, g);
      autograd::accumulate_grad(b, g);
    });
  return y;
}

template <class T, class D>
Tensor<T, D> sub(const Tensor<T, D>& a, const Tensor<T, D>& b) {
  Tensor<T, D> y = map(a, b, std::minus<T>{}, "sub");
  if (autograd::needs_grad(a, b))
    autograd::record(y, [a = autograd::grad_target(a), b = autograd::grad_target(b)](const Tensor<T, D>& g) {
      autograd::accumulate_grad(a, g);
      if (b.requires_grad()) autograd::accumulate_grad(b, neg(g));
    });
  return y;
}

template <class T, class D>
Tensor<T, D> mul(const Tensor<T, D>& a, const Tensor<T, D>& b) {
  Tensor<T, D> y = map(a, b, std::multiplies<T>{}, "mul");
  // Each input's values are kept only when the other input needs them (dropout's
  // x * mask keeps the mask, not x).
  if (autograd::needs_grad(a, b))
    autograd::record(y, [ta = autograd::grad_target(a), tb = autograd::grad_target(b),
                         a_values = b.requires_grad() ? a.detach() : Tensor<T, D>(),
                         b_values = a.requires_grad() ? b.detach() : Tensor<T, D>()](const Tensor<T, D>& g) {
      if (ta.requires_grad()) autograd::accumulate_grad(ta, map(g, b_values, std::multiplies<T>{}));
      if (tb.requires_grad()) autograd::accumulate_grad(tb, map(g, a_values, std::multiplies<T>{}));
    });
  return y;
}

template <class T, class D>
Tensor<T, D> div(const Tensor<T, D>& a, const Tensor<T, D>& b) {
  Tensor<T, D> y = map(a, b, std::divides<T>{}, "div");
  if (autograd::needs_grad(a, b))
    autograd::record(y, [a, b, y = y.detach()](const Tensor<T, D>& g) {
      if (a.requires_grad()) autograd::accumulate_grad(a, map(g, b.detach(), std::divides<T>{}));
      if (b.requires_grad())
        autograd::accumulate_grad(b, map(g, y, b.detach(), [](T gv, T yv, T bv) { return -gv * yv / bv; }));
    });
  return y;
}

// a^b elementwise; the gradient for b uses log(a) (a > 0 where it matters).
template <class T, class D>
Tensor<T, D> pow(const Tensor<T, D>& a, const Tensor<T, D>& b) {
  Tensor<T, D> y = map(a, b, [](T av, T bv) { return std::pow(av, bv); }, "pow");
  if (autograd::needs_grad(a, b))
    autograd::record(y, [a, b, y = y.detach()](const Tensor<T, D>& g) {
      if (a.requires_grad())
        autograd::accumulate_grad(a, map(g, a.detach(), b.detach(), [](T gv, T av, T bv) { return gv * bv * std::pow(av, bv - T(1)); }));
      if (b.requires_grad())
        autograd::accumulate_grad(b, map(g, y, a.detach(), [](T gv, T yv, T av) { return gv * yv * std::log(av); }));
    });
  return y;
}

// cond ? a : b elementwise (cond is nonzero for true); no gradient flows to cond.
template <class T, class D>
Tensor<T, D> where(const Tensor<T, D>& cond, const Tensor<T, D>& a, const Tensor<T, D>& b) {
  Tensor<T, D> y = map(cond, a, b, [](T c, T av, T bv) { return c != T(0) ? av : bv; }, "where");
  if (autograd::needs_grad(a, b))
    autograd::record(y, [cond, a, b](const Tensor<T, D>& g) {
      if (a.requires_grad()) autograd::accumulate_grad(a, map(cond, g, [](T c, T gv) { return c != T(0) ? gv : T(0); }, "where"));
      if (b.requires_grad()) autograd::accumulate_grad(b, map(cond, g, [](T c, T gv) { return c != T(0) ? T(0) : gv; }, "where"));
    });
  return y;
}

// ---- comparisons: 1 where true, 0 where false (not differentiable) ----------
#define METRO_COMPARISON(name, op)                                                               \
  template <class T, class D>                                                                    \
  Tensor<T, D> name(const Tensor<T, D>& a, const Tensor<T, D>& b) {                              \
    return map(a, b, [](T x, T y) { return x op y ? T(1) : T(0); }, #name);                      \
  }                                                                                              \
  template <class T, class D>                                                                    \
  Tensor<T, D> name(const Tensor<T, D>& a, T s) {                                                \
    return map(a, [s](T x) { return x op s ? T(1) : T(0); });                                   \
  }
METRO_COMPARISON(eq, ==)
METRO_COMPARISON(ne, !=)
METRO_COMPARISON(lt, <)
METRO_COMPARISON(le, <=)
METRO_COMPARISON(gt, >)
METRO_COMPARISON(ge, >=)
#undef METRO_COMPARISON

// ---- operators -----------------------------------------------------------------

template <class T, class D> Tensor<T, D> operator+(const Tensor<T, D>& a, const Tensor<T, D>& b) { return add(a, b); }
template <class T, class D> Tensor<T, D> operator-(const Tensor<T, D>& a, const Tensor<T, D>& b) { return sub(a, b); }
template <class T, class D> Tensor<T, D> operator*(const Tensor<T, D>& a, const Tensor<T, D>& b) { return mul(a, b); }
template <class T, class D> Tensor<T, D> operator/(const Tensor<T, D>& a, const Tensor<T, D>& b) { return div(a, b); }
template <class T, class D> Tensor<T, D> operator-(const Tensor<T, D>& x) { return neg(x); }
template <class T, class D> Tensor<T, D> operator+(const Tensor<T, D>& x, std::type_identity_t<T> s) { return add(x, s); }
template <class T, class D> Tensor<T, D> operator+(std::type_identity_t<T> s, const Tensor<T, D>& x) { return add(x, s); }
template <class T, class D> Tensor<T, D> operator-(const Tensor<T, D>& x, std::type_identity_t<T> s) { return add(x, -s); }
template <class T, class D> Tensor<T, D> operator-(std::type_identity_t<T> s, const Tensor<T, D>& x) { return add(neg(x), s); }
template <class T, class D> Tensor<T, D> operator*(const Tensor<T, D>& x, std::type_identity_t<T> s) { return mul(x, s); }
template <class T, class D> Tensor<T, D> operator*(std::type_identity_t<T> s, const Tensor<T, D>& x) { return mul(x, s); }
template <class T, class D> Tensor<T, D> operator/(const Tensor<T, D>& x, std::type_identity_t<T> s) { return mul(x, T(1) / s); }
template <class T, class D> Tensor<T, D> operator/(std::type_identity_t<T> s, const Tensor<T, D>& x) { return rdiv(s, x); }

}  // namespace metro
