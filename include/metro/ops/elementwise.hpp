#pragma once
// Elementwise ops with NumPy broadcasting. Each op's forward and backward sit
// together: the forward maps a functor over the (broadcast) elements, and the
// lambda passed to record() computes the input gradients from the output
// gradient `g`. Gradients of broadcast inputs are summed back to the input's
// shape by accumulate_grad. The element functions are METRO_HD functors in
// metro::fn (next to their op), so the same ops run on every backend; map()
// and update_() below take any such functor.
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

// What an in-place write needs of its destination: no element reached twice (a
// broadcast view: the writes would race), and not a tensor that requires grad
// while recording (its value may be saved for a backward, which would then be
// wrong silently; optimizers and initializers write under NoGradGuard).
template <class T, class D>
void check_writable(const Tensor<T, D>& dst, const char* op) {
  for (int d = 0; d < dst.dim(); ++d)
    if (dst.strides()[static_cast<std::size_t>(d)] == 0 && dst.shape()[d] > 1)
      throw ShapeError(std::string(op) + ": the destination " + dst.shape().str() + " is a broadcast view (dimension " + std::to_string(d) +
                       " has stride 0)");
  if (autograd::grad_enabled() && dst.requires_grad())
    throw AutogradError(std::string(op) + ": in-place write into a tensor " + dst.shape().str() +
                        " that requires grad while recording (use NoGradGuard)");
}

// dst[i] = f(dst[i], src[i]) in place; src broadcasts to dst's shape. Not recorded.
template <class T, class D, class F>
void update_(const Tensor<T, D>& dst, const Tensor<T, D>& src, F f, const char* op = "update_") {
  check_writable(dst, op);
  if (!(broadcast_shapes(dst.shape(), src.shape(), op) == dst.shape()))
    throw ShapeError(std::string(op) + ": cannot write shape " + src.shape().str() + " into " + dst.shape().str());
  const Strides ss = broadcast_strides(src, dst.shape());
  backend::Kernels<D>::template map<T, T, 2>(dst.shape(), dst.data(), dst.strides(), {dst.data(), src.data()},
                                             {&dst.strides(), &ss}, f);
}

namespace fn {
// (d, s) -> s: copy_ as an update.
template <class T>
struct Second {
  METRO_HD T operator()(T, T s) const { return s; }
};
// (d, s) -> d + s: add_ as an update (by value, as the lambda it replaced).
template <class T>
struct Accumulate {
  METRO_HD T operator()(T d, T s) const { return d + s; }
};
}  // namespace fn

// In-place copy and accumulation into (possibly strided) views; not recorded.
template <class T, class D>
void copy_(const Tensor<T, D>& dst, const Tensor<T, D>& src) {
  update_(dst, src, fn::Second<T>{}, "copy_");
}
template <class T, class D>
void add_(Tensor<T, D>& dst, const Tensor<T, D>& src) {
  update_(dst, src, fn::Accumulate<T>{}, "add_");
}
template <class T, class D>
void fill_(const Tensor<T, D>& dst, T value) {
  check_writable(dst, "fill_");
  backend::Kernels<D>::template map<T, T, 0>(dst.shape(), dst.data(), dst.strides(), {}, {}, fn::Fill<T>{value});
}

// ---- unary ops --------------------------------------------------------------

namespace fn {
template <class T>
struct Neg {
  METRO_HD T operator()(T v) const { return -v; }
};
}  // namespace fn

template <class T, class D>
Tensor<T, D> neg(const Tensor<T, D>& x) {
  Tensor<T, D> y = map(x, fn::Neg<T>{});
  if (autograd::needs_grad(x))
    autograd::record(y, [x = autograd::grad_target(x)](const Tensor<T, D>& g) { autograd::accumulate_grad(x, neg(g)); });
  return y;
}

namespace fn {
template <class T>
struct Exp {
  METRO_HD T operator()(T v) const { return std::exp(v); }
};
}  // namespace fn

template <class T, class D>
Tensor<T, D> exp(const Tensor<T, D>& x) {
  Tensor<T, D> y = map(x, fn::Exp<T>{});
  if (autograd::needs_grad(x))
    autograd::record(y, [x = autograd::grad_target(x), y = y.detach()](const Tensor<T, D>& g) { autograd::accumulate_grad(x, map(g, y, std::multiplies<T>{})); });
  return y;
}

namespace fn {
template <class T>
struct Log {
  METRO_HD T operator()(T v) const { return std::log(v); }
};
}  // namespace fn

template <class T, class D>
Tensor<T, D> log(const Tensor<T, D>& x) {
  Tensor<T, D> y = map(x, fn::Log<T>{});
  if (autograd::needs_grad(x))
    autograd::record(y, [x](const Tensor<T, D>& g) { autograd::accumulate_grad(x, map(g, x, std::divides<T>{})); });
  return y;
}

namespace fn {
template <class T>
struct Sqrt {
  METRO_HD T operator()(T v) const { return std::sqrt(v); }
};
// (g, y) -> g / (2 y)
template <class T>
struct SqrtBackward {
  METRO_HD T operator()(T gv, T yv) const { return gv / (T(2) * yv); }
};
}  // namespace fn

template <class T, class D>
Tensor<T, D> sqrt(const Tensor<T, D>& x) {
  Tensor<T, D> y = map(x, fn::Sqrt<T>{});
  if (autograd::needs_grad(x))
    autograd::record(y, [x = autograd::grad_target(x), y = y.detach()](const Tensor<T, D>& g) {
      autograd::accumulate_grad(x, map(g, y, fn::SqrtBackward<T>{}));
    });
  return y;
}

namespace fn {
template <class T>
struct Abs {
  METRO_HD T operator()(T v) const { return std::abs(v); }
};
// (g, x) -> g sign(x)
template <class T>
struct AbsBackward {
  METRO_HD T operator()(T gv, T xv) const { return xv > 0 ? gv : (xv < 0 ? -gv : T(0)); }
};
}  // namespace fn

template <class T, class D>
Tensor<T, D> abs(const Tensor<T, D>& x) {
  Tensor<T, D> y = map(x, fn::Abs<T>{});
  if (autograd::needs_grad(x))
    autograd::record(y, [x](const Tensor<T, D>& g) {
      autograd::accumulate_grad(x, map(g, x, fn::AbsBackward<T>{}));
    });
  return y;
}

namespace fn {
template <class T>
struct Relu {
  METRO_HD T operator()(T v) const { return v > 0 ? v : T(0); }
};
// (g, y) -> y > 0 ? g : 0
template <class T>
struct ReluBackward {
  METRO_HD T operator()(T gv, T yv) const { return yv > 0 ? gv : T(0); }
};
}  // namespace fn

template <class T, class D>
Tensor<T, D> relu(const Tensor<T, D>& x) {
  Tensor<T, D> y = map(x, fn::Relu<T>{});
  // y > 0 exactly where x > 0: the backward reads the output, so the input (often
  // a BatchNorm output nothing else needs) can be freed.
  if (autograd::needs_grad(x))
    autograd::record(y, [x = autograd::grad_target(x), y = y.detach()](const Tensor<T, D>& g) {
      autograd::accumulate_grad(x, map(g, y, fn::ReluBackward<T>{}));
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

namespace fn {
template <class T>
struct Tanh {
  METRO_HD T operator()(T v) const { return std::tanh(v); }
};
// (g, y) -> g (1 - y^2)
template <class T>
struct TanhBackward {
  METRO_HD T operator()(T gv, T yv) const { return gv * (T(1) - yv * yv); }
};
}  // namespace fn

template <class T, class D>
Tensor<T, D> tanh(const Tensor<T, D>& x) {
  Tensor<T, D> y = map(x, fn::Tanh<T>{});
  if (autograd::needs_grad(x))
    autograd::record(y, [x = autograd::grad_target(x), y = y.detach()](const Tensor<T, D>& g) {
      autograd::accumulate_grad(x, map(g, y, fn::TanhBackward<T>{}));
    });
  return y;
}

namespace fn {
template <class T>
struct Sigmoid {
  METRO_HD T operator()(T v) const { return T(1) / (T(1) + std::exp(-v)); }
};
// (g, y) -> g y (1 - y)
template <class T>
struct SigmoidBackward {
  METRO_HD T operator()(T gv, T yv) const { return gv * yv * (T(1) - yv); }
};
}  // namespace fn

template <class T, class D>
Tensor<T, D> sigmoid(const Tensor<T, D>& x) {
  Tensor<T, D> y = map(x, fn::Sigmoid<T>{});
  if (autograd::needs_grad(x))
    autograd::record(y, [x = autograd::grad_target(x), y = y.detach()](const Tensor<T, D>& g) {
      autograd::accumulate_grad(x, map(g, y, fn::SigmoidBackward<T>{}));
    });
  return y;
}

// Clamps to [low, high]; the gradient passes where low <= x <= high (as PyTorch).
namespace fn {
template <class T>
struct Clamp {
  T low, high;
  METRO_HD T operator()(T v) const { return v < low ? low : (v > high ? high : v); }
};
// (g, x) -> g where low <= x <= high, else 0
template <class T>
struct ClampBackward {
  T low, high;
  METRO_HD T operator()(T gv, T xv) const { return xv >= low && xv <= high ? gv : T(0); }
};
}  // namespace fn

template <class T, class D>
Tensor<T, D> clamp(const Tensor<T, D>& x, T low, T high) {
  Tensor<T, D> y = map(x, fn::Clamp<T>{low, high});
  if (autograd::needs_grad(x))
    autograd::record(y, [x, low, high](const Tensor<T, D>& g) {
      autograd::accumulate_grad(x, map(g, x, fn::ClampBackward<T>{low, high}));
    });
  return y;
}

// x^p for a scalar exponent.
namespace fn {
template <class T>
struct PowScalar {
  T p;
  METRO_HD T operator()(T v) const { return std::pow(v, p); }
};
// (g, x) -> g p x^(p-1)
template <class T>
struct PowScalarBackward {
  T p;
  METRO_HD T operator()(T gv, T xv) const { return gv * p * std::pow(xv, p - T(1)); }
};
}  // namespace fn

template <class T, class D>
Tensor<T, D> pow(const Tensor<T, D>& x, T p) {
  Tensor<T, D> y = map(x, fn::PowScalar<T>{p});
  if (autograd::needs_grad(x))
    autograd::record(y, [x, p](const Tensor<T, D>& g) {
      autograd::accumulate_grad(x, map(g, x, fn::PowScalarBackward<T>{p}));
    });
  return y;
}

// ---- tensor (op) scalar -----------------------------------------------------

namespace fn {
template <class T>
struct AddScalar {
  T s;
  METRO_HD T operator()(T v) const { return v + s; }
};
template <class T>
struct MulScalar {
  T s;
  METRO_HD T operator()(T v) const { return v * s; }
};
// x -> s / x
template <class T>
struct RDiv {
  T s;
  METRO_HD T operator()(T v) const { return s / v; }
};
// (g y, x) -> -g y / x
template <class T>
struct RDivBackward {
  METRO_HD T operator()(T gy, T xv) const { return -gy / xv; }
};
}  // namespace fn

template <class T, class D>
Tensor<T, D> add(const Tensor<T, D>& x, T s) {
  Tensor<T, D> y = map(x, fn::AddScalar<T>{s});
  if (autograd::needs_grad(x))
    autograd::record(y, [x = autograd::grad_target(x)](const Tensor<T, D>& g) { autograd::accumulate_grad(x, g); });
  return y;
}

template <class T, class D>
Tensor<T, D> mul(const Tensor<T, D>& x, T s) {
  Tensor<T, D> y = map(x, fn::MulScalar<T>{s});
  if (autograd::needs_grad(x))
    autograd::record(y, [x = autograd::grad_target(x), s](const Tensor<T, D>& g) { autograd::accumulate_grad(x, mul(g, s)); });
  return y;
}

// s / x
template <class T, class D>
Tensor<T, D> rdiv(T s, const Tensor<T, D>& x) {
  Tensor<T, D> y = map(x, fn::RDiv<T>{s});
  if (autograd::needs_grad(x))
    autograd::record(y, [x, y = y.detach()](const Tensor<T, D>& g) {
      autograd::accumulate_grad(x, map(map(g, y, std::multiplies<T>{}), x, fn::RDivBackward<T>{}));
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

namespace fn {
// (g, y, b) -> -g y / b
template <class T>
struct DivBackward {
  METRO_HD T operator()(T gv, T yv, T bv) const { return -gv * yv / bv; }
};
}  // namespace fn

template <class T, class D>
Tensor<T, D> div(const Tensor<T, D>& a, const Tensor<T, D>& b) {
  Tensor<T, D> y = map(a, b, std::divides<T>{}, "div");
  if (autograd::needs_grad(a, b))
    autograd::record(y, [a, b, y = y.detach()](const Tensor<T, D>& g) {
      if (a.requires_grad()) autograd::accumulate_grad(a, map(g, b.detach(), std::divides<T>{}));
      if (b.requires_grad())
        autograd::accumulate_grad(b, map(g, y, b.detach(), fn::DivBackward<T>{}));
    });
  return y;
}

// a^b elementwise; the gradient for b uses log(a) (a > 0 where it matters).
namespace fn {
template <class T>
struct Pow {
  METRO_HD T operator()(T av, T bv) const { return std::pow(av, bv); }
};
// (g, a, b) -> g b a^(b-1)
template <class T>
struct PowBackwardBase {
  METRO_HD T operator()(T gv, T av, T bv) const { return gv * bv * std::pow(av, bv - T(1)); }
};
// (g, y, a) -> g y log(a)
template <class T>
struct PowBackwardExponent {
  METRO_HD T operator()(T gv, T yv, T av) const { return gv * yv * std::log(av); }
};
}  // namespace fn

template <class T, class D>
Tensor<T, D> pow(const Tensor<T, D>& a, const Tensor<T, D>& b) {
  Tensor<T, D> y = map(a, b, fn::Pow<T>{}, "pow");
  if (autograd::needs_grad(a, b))
    autograd::record(y, [a, b, y = y.detach()](const Tensor<T, D>& g) {
      if (a.requires_grad())
        autograd::accumulate_grad(a, map(g, a.detach(), b.detach(), fn::PowBackwardBase<T>{}));
      if (b.requires_grad())
        autograd::accumulate_grad(b, map(g, y, a.detach(), fn::PowBackwardExponent<T>{}));
    });
  return y;
}

// cond ? a : b elementwise (cond is nonzero for true); no gradient flows to cond.
namespace fn {
template <class T>
struct Where {
  METRO_HD T operator()(T c, T av, T bv) const { return c != T(0) ? av : bv; }
};
// (c, g) -> g where c, else 0; and the reverse
template <class T>
struct WhereTrue {
  METRO_HD T operator()(T c, T gv) const { return c != T(0) ? gv : T(0); }
};
template <class T>
struct WhereFalse {
  METRO_HD T operator()(T c, T gv) const { return c != T(0) ? T(0) : gv; }
};
}  // namespace fn

template <class T, class D>
Tensor<T, D> where(const Tensor<T, D>& cond, const Tensor<T, D>& a, const Tensor<T, D>& b) {
  Tensor<T, D> y = map(cond, a, b, fn::Where<T>{}, "where");
  if (autograd::needs_grad(a, b))
    autograd::record(y, [cond, a, b](const Tensor<T, D>& g) {
      if (a.requires_grad()) autograd::accumulate_grad(a, map(cond, g, fn::WhereTrue<T>{}, "where"));
      if (b.requires_grad()) autograd::accumulate_grad(b, map(cond, g, fn::WhereFalse<T>{}, "where"));
    });
  return y;
}

// ---- comparisons: 1 where true, 0 where false (not differentiable) ----------
#define METRO_COMPARISON(name, Functor, op)                                         \
  namespace fn {                                                                    \
  template <class T>                                                                \
  struct Functor {                                                                  \
    METRO_HD T operator()(T x, T y) const { return x op y ? T(1) : T(0); }          \
  };                                                                                \
  template <class T>                                                                \
  struct Functor##Scalar {                                                          \
    T s;                                                                            \
    METRO_HD T operator()(T x) const { return x op s ? T(1) : T(0); }               \
  };                                                                                \
  }                                                                                 \
  template <class T, class D>                                                       \
  Tensor<T, D> name(const Tensor<T, D>& a, const Tensor<T, D>& b) {                 \
    return map(a, b, fn::Functor<T>{}, #name);                                      \
  }                                                                                 \
  template <class T, class D>                                                       \
  Tensor<T, D> name(const Tensor<T, D>& a, T s) {                                   \
    return map(a, fn::Functor##Scalar<T>{s});                                       \
  }
METRO_COMPARISON(eq, Eq, ==)
METRO_COMPARISON(ne, Ne, !=)
METRO_COMPARISON(lt, Lt, <)
METRO_COMPARISON(le, Le, <=)
METRO_COMPARISON(gt, Gt, >)
METRO_COMPARISON(ge, Ge, >=)
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
