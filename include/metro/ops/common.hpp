#pragma once
// What every op needs: creation of outputs, broadcasting geometry, host copies,
// and the two autograd hooks, record() (called by an op's forward) and
// accumulate_grad() (called by an op's backward).
//
// Functors, not lambdas: every function an op maps over elements
// (Kernels<D>::map) is a named functor in metro::fn whose operator() is
// METRO_HD, so the same code runs in Kernels<cpu>'s OpenMP loops (METRO_HD is
// empty for g++: the same code as a lambda) and in Kernels<cuda>'s kernels.
// Device code avoids `if constexpr` and structured bindings.
#include <algorithm>
#include <memory>
#include <type_traits>
#include <utility>

#include "metro/autograd/tape.hpp"
#include "metro/backend/cpu.hpp"
#include "metro/core/tensor.hpp"

namespace metro {

namespace fn {
// () -> value
template <class T>
struct Fill {
  T value;
  METRO_HD T operator()() const { return value; }
};
}  // namespace fn

namespace backend {
// n elements from D's memory to host memory and back: plain copies on the CPU,
// Kernels<D>::copy_to_host / copy_from_host elsewhere (host code only).
template <class D, class T>
void copy_to_host(T* host, const T* src, std::int64_t n) {
  if constexpr (std::is_same_v<D, cpu>)
    std::copy(src, src + n, host);
  else
    Kernels<D>::copy_to_host(host, src, n);
}
template <class D, class T>
void copy_from_host(T* dst, const T* host, std::int64_t n) {
  if constexpr (std::is_same_v<D, cpu>)
    std::copy(host, host + n, dst);
  else
    Kernels<D>::copy_from_host(dst, host, n);
}
}  // namespace backend

template <class T, class D = cpu>
Tensor<T, D> empty(const Shape& shape) {
  return Tensor<T, D>::empty(shape);
}

template <class T, class D = cpu>
Tensor<T, D> full(const Shape& shape, T value) {
  Tensor<T, D> t = Tensor<T, D>::empty(shape);
  backend::Kernels<D>::template map<T, T, 0>(shape, t.data(), t.strides(), {}, {}, fn::Fill<T>{value});
  return t;
}

template <class T, class D = cpu>
Tensor<T, D> zeros(const Shape& shape) {
  return full<T, D>(shape, T(0));
}

template <class T, class D = cpu>
Tensor<T, D> ones(const Shape& shape) {
  return full<T, D>(shape, T(1));
}

template <class T, class D>
Tensor<T, D> zeros_like(const Tensor<T, D>& t) {
  return zeros<T, D>(t.shape());
}

template <class T, class D>
Tensor<T, D> ones_like(const Tensor<T, D>& t) {
  return ones<T, D>(t.shape());
}

// Strides that read `t` as if it had been expanded to `shape` (0 on broadcast dims).
template <class T, class D>
Strides broadcast_strides(const Tensor<T, D>& t, const Shape& shape) {
  Strides s{};
  const int lead = shape.size() - t.dim();
  for (int i = 0; i < t.dim(); ++i)
    s[static_cast<std::size_t>(i + lead)] = t.shape()[i] == 1 ? 0 : t.strides()[static_cast<std::size_t>(i)];
  return s;
}

namespace autograd {

template <class... Ts>
bool needs_grad(const Ts&... inputs) {
  return grad_enabled() && (inputs.requires_grad() || ...);
}

// Marks `out` as produced by an op and appends its backward to the tape.
// `backward(grad_out)` must call accumulate_grad for each input; it runs with
// recording off. Closures capture inputs as tensors (to reach their gradients)
// and outputs only through detach() (an output must not keep itself alive).
template <class T, class D, class Backward>
void record(Tensor<T, D>& out, Backward backward) {
  auto meta = std::make_shared<detail::AutogradMeta<T, D>>();
  meta->is_leaf = false;
  out.impl().autograd = meta;
  detail::AutogradMeta<T, D>* m = meta.get();  // owned by the entry for as long as the closure lives
  tape().record({std::move(meta), &m->on_tape, [m, backward = std::move(backward)]() mutable {
                   if (!m->grad.defined()) return false;
                   Tensor<T, D> grad = m->grad;
                   if (!m->retain_grad) m->grad = Tensor<T, D>();
                   backward(grad);
                   return true;
                 }});
}

}  // namespace autograd

template <class T, class D>
Tensor<T, D> sum_to(const Tensor<T, D>& t, const Shape& shape);
template <class T, class D>
Tensor<T, D> add(const Tensor<T, D>& a, const Tensor<T, D>& b);
template <class T, class D>
void add_(Tensor<T, D>& dst, const Tensor<T, D>& src);

namespace autograd {

// meta.grad += grad (grad already of the tensor's shape); the first gradient is kept
// as is. A non-leaf must still have its backward on the tape (tape.hpp).
template <class T, class D>
void add_grad(detail::AutogradMeta<T, D>& meta, const Shape& shape, Tensor<T, D> grad) {
  if (!meta.is_leaf && !meta.on_tape)
    throw AutogradError("backward: reached a tensor " + shape.str() +
                        " whose backward already ran or was cleared (a second backward through the same graph, or one after "
                        "clear_tape(); recompute the forward)");
  Tensor<T, D>& current = meta.grad;
  if (!current.defined())
    current = grad.is_contiguous() ? std::move(grad) : grad.contiguous();
  else if (current.uniquely_owned())
    add_(current, grad);
  else
    current = add(current, grad);
}

// Adds `grad` (of the op's output shape, possibly broadcast) into input's gradient.
template <class T, class D>
void accumulate_grad(const Tensor<T, D>& input, Tensor<T, D> grad) {
  if (!input.requires_grad()) return;
  if (!(grad.shape() == input.shape())) grad = sum_to(grad, input.shape());
  add_grad(input.meta("accumulate_grad"), input.shape(), std::move(grad));
}

// What a backward needs to send a gradient to an input, without keeping the
// input's data alive: ops whose backward does not read an input's values (add,
// sub, scaling) capture this instead of the tensor, so the tape does not hold
// activations nobody will read.
template <class T, class D>
struct GradTarget {
  std::shared_ptr<detail::AutogradMeta<T, D>> meta;  // null when the input does not require grad
  Shape shape;
  bool requires_grad() const noexcept { return meta != nullptr; }
};

template <class T, class D>
GradTarget<T, D> grad_target(const Tensor<T, D>& t) {
  return {t.meta_ptr(), t.shape()};
}

template <class T, class D>
void accumulate_grad(const GradTarget<T, D>& target, Tensor<T, D> grad) {
  if (!target.requires_grad()) return;
  if (!(grad.shape() == target.shape)) grad = sum_to(grad, target.shape);
  add_grad(*target.meta, target.shape, std::move(grad));
}

}  // namespace autograd
}  // namespace metro
