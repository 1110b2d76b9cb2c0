#pragma once
// Optimizers with PyTorch's semantics (torch.optim 1.13, single-tensor path):
// SGD (momentum, dampening, weight decay, Nesterov), Adam (L2 weight decay) and
// AdamW (decoupled weight decay). METRO trains with Adam, lr 1e-4, betas
// (0.9, 0.999), no weight decay (the official code's settings).
//
// Each step is one fused pass over a parameter's memory (parameter, gradient and
// state read and written once): a METRO_HD functor (fn::AdamUpdate, fn::SgdUpdate)
// that Kernels<cpu>::for_each_simd splits across OpenMP threads for large tensors
// and vectorizes within a thread, and Kernels<cuda> runs one thread per element. Parameters whose gradient is undefined are
// skipped, with their state untouched, as in PyTorch.
//
// Also here: grad_norm, clip_grad_norm (torch.nn.utils.clip_grad_norm_) and all_finite.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "metro/tensor.hpp"

namespace metro::nn {

// A snapshot of an optimizer's state, for checkpoints.
template <class T, class D = cpu>
struct OptimizerState {
  std::int64_t step = 0;                        // step() calls so far
  std::vector<std::int64_t> parameter_steps;    // per parameter: the steps in which it had a gradient (Adam's t)
  std::map<std::string, Tensor<T, D>> tensors;  // "exp_avg.<i>", "exp_avg_sq.<i>", "momentum.<i>" (i = parameter index)
};

namespace detail {

// Sum of x^2 over n contiguous values, in double (Kernels<D>::sum_of_squares):
// the result does not depend on the thread count. A NaN or infinity among the
// values makes it non-finite.
template <class T, class D>
double sum_of_squares(const T* x, std::int64_t n) {
  return backend::Kernels<D>::sum_of_squares(x, n);
}

inline void check_hyperparameter(bool ok, const std::string& message) {
  if (!ok) throw ValueError(message);
}

}  // namespace detail

// The parameter list, learning rate, step counts and per-parameter state
// buffers shared by every optimizer; a subclass supplies update().
template <class T, class D = cpu>
class Optimizer {
 public:
  using TensorType = Tensor<T, D>;

  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient.
  void step() {
    NoGradGuard no_grad;
    for (std::size_t i = 0; i < params_.size(); ++i) {
      const TensorType& param = params_[i];
      TensorType grad = param.grad();
      if (!grad.defined()) continue;
      if (!(grad.shape() == param.shape()))
        throw ShapeError("optimizer: gradient " + grad.shape().str() + " does not match parameter " +
                         std::to_string(i) + " of shape " + param.shape().str());
      ++parameter_steps_[i];
      update(i, param, contiguous(grad));
    }
    ++step_;
  }

  // Clears every parameter's gradient (PyTorch's set_to_none).
  void zero_grad() {
    for (const TensorType& p : params_) p.zero_grad();
  }

  double lr() const noexcept { return lr_; }
  void set_lr(double lr) {
    detail::check_hyperparameter(lr >= 0 && std::isfinite(lr), "optimizer: invalid learning rate " + std::to_string(lr));
    lr_ = lr;
  }
  std::int64_t step_count() const noexcept { return step_; }
  const std::vector<TensorType>& parameters() const noexcept { return params_; }

  // A deep copy of the state (later steps do not change it).
  OptimizerState<T, D> state() const {
    OptimizerState<T, D> out{step_, parameter_steps_, {}};
    for (std::size_t kind = 0; kind < buffer_names_.size(); ++kind)
      for (std::size_t i = 0; i < params_.size(); ++i)
        if (buffers_[kind][i].defined()) out.tensors.emplace(buffer_key(kind, i), clone(buffers_[kind][i]));
    return out;
  }

  // Restores a state saved by state() of an optimizer of the same kind over
  // parameters of the same shapes; ValueError/ShapeError on anything else.
  void load_state(const OptimizerState<T, D>& state) {
    if (state.parameter_steps.size() != params_.size())
      throw ValueError("optimizer: state has " + std::to_string(state.parameter_steps.size()) + " parameter steps for " +
                       std::to_string(params_.size()) + " parameters");
    std::vector<std::vector<TensorType>> loaded(buffer_names_.size(), std::vector<TensorType>(params_.size()));
    for (const auto& [key, tensor] : state.tensors) {
      const auto [kind, i] = parse_buffer_key(key);
      if (!(tensor.shape() == params_[i].shape()))
        throw ShapeError("optimizer: state tensor \"" + key + "\" has shape " + tensor.shape().str() + ", parameter " +
                         std::to_string(i) + " has " + params_[i].shape().str());
      loaded[kind][i] = clone(tensor.detach());
    }
    buffers_ = std::move(loaded);
    parameter_steps_ = state.parameter_steps;
    step_ = state.step;
  }

 protected:
  Optimizer(std::vector<TensorType> params, double lr, std::vector<std::string> buffer_names)
      : params_(std::move(params)),
        parameter_steps_(params_.size(), 0),
        buffer_names_(std::move(buffer_names)),
        buffers_(buffer_names_.size(), std::vector<TensorType>(params_.size())) {
    set_lr(lr);
    std::set<const T*> seen;
    for (std::size_t i = 0; i < params_.size(); ++i) {
      if (!params_[i].defined() || !params_[i].is_contiguous())
        throw ValueError("optimizer: parameter " + std::to_string(i) + " is undefined or not contiguous");
      if (params_[i].numel() > 0 && !seen.insert(params_[i].data()).second)
        throw ValueError("optimizer: parameter " + std::to_string(i) + " is listed twice (or shares memory with an earlier one): it would be updated twice per step");
    }
  }

  // Updates parameter i in place from its (contiguous) gradient.
  virtual void update(std::size_t i, const TensorType& param, const TensorType& grad) = 0;

  bool has_buffer(std::size_t kind, std::size_t i) const { return buffers_[kind][i].defined(); }
  // State buffer `kind` of parameter i, created zero-filled on first use.
  T* buffer(std::size_t kind, std::size_t i) {
    TensorType& b = buffers_[kind][i];
    if (!b.defined()) b = zeros<T, D>(params_[i].shape());
    return b.data();
  }
  std::int64_t parameter_step(std::size_t i) const { return parameter_steps_[i]; }

 private:
  std::string buffer_key(std::size_t kind, std::size_t i) const { return buffer_names_[kind] + "." + std::to_string(i); }

  std::pair<std::size_t, std::size_t> parse_buffer_key(const std::string& key) const {
    const std::size_t dot = key.rfind('.');
    if (dot != std::string::npos && dot + 1 < key.size() && key.find_first_not_of("0123456789", dot + 1) == std::string::npos)
      for (std::size_t kind = 0; kind < buffer_names_.size(); ++kind)
        if (key.compare(0, dot, buffer_names_[kind]) == 0 && dot == buffer_names_[kind].size()) {
          const std::size_t i = std::stoul(key.substr(dot + 1));
          if (i < params_.size()) return {kind, i};
        }
    throw ValueError("optimizer: unexpected state tensor \"" + key + "\"");
  }

  std::vector<TensorType> params_;
  double lr_ = 0;
  std::int64_t step_ = 0;
  std::vector<std::int64_t> parameter_steps_;
  std::vector<std::string> buffer_names_;
  std::vector<std::vector<TensorType>> buffers_;  // [kind][parameter], undefined until first used
};

namespace fn {
// One SGD step of element k without momentum, and with it (the updates of SGD below).
template <class T>
struct SgdUpdate {
  T* p;
  const T* g;
  T lr, wd;
  METRO_HD void operator()(std::int64_t k) const { p[k] -= lr * (g[k] + wd * p[k]); }
};
template <class T>
struct SgdMomentumUpdate {
  T* p;
  const T* g;
  T* buf;
  T lr, wd, momentum, keep;
  bool first, nesterov;
  METRO_HD void operator()(std::int64_t k) const {
    const T d = g[k] + wd * p[k];
    buf[k] = first ? d : momentum * buf[k] + keep * d;
    p[k] -= lr * (nesterov ? d + momentum * buf[k] : buf[k]);
  }
};

// One Adam / AdamW step of element k (the update of Adam below).
template <class T>
struct AdamUpdate {
  T *p;
  const T* g;
  T *m, *v;
  T decay, l2, b1, b2, rest1, rest2, step_size, correction2_sqrt, eps;
  METRO_HD void operator()(std::int64_t k) const {
    const T pk = p[k] * decay;
    const T gk = g[k] + l2 * pk;
    m[k] = b1 * m[k] + rest1 * gk;
    v[k] = b2 * v[k] + rest2 * gk * gk;
    p[k] = pk - step_size * (m[k] / (std::sqrt(v[k]) / correction2_sqrt + eps));
  }
};
}  // namespace fn

struct SGDOptions {
  double lr = 1e-2;
  double momentum = 0;
  double dampening = 0;
  double weight_decay = 0;
  bool nesterov = false;
};

// torch.optim.SGD:  d = g + wd p;  buf = d (first step) or momentum buf + (1 - dampening) d;
//                   d = nesterov ? d + momentum buf : buf;  p -= lr d.
template <class T, class D = cpu>
class SGD final : public Optimizer<T, D> {
 public:
  SGD(std::vector<Tensor<T, D>> params, SGDOptions options)
      : Optimizer<T, D>(std::move(params), options.lr, {"momentum"}), options_(options) {
    detail::check_hyperparameter(options.momentum >= 0, "SGD: momentum must be >= 0");
    detail::check_hyperparameter(options.weight_decay >= 0, "SGD: weight_decay must be >= 0");
    detail::check_hyperparameter(!options.nesterov || (options.momentum > 0 && options.dampening == 0),
                                 "SGD: Nesterov momentum needs momentum > 0 and dampening 0");
  }

 private:
  static constexpr std::size_t kMomentum = 0;

  void update(std::size_t i, const Tensor<T, D>& param, const Tensor<T, D>& grad) override {
    const T lr = static_cast<T>(this->lr()), wd = static_cast<T>(options_.weight_decay);
    if (options_.momentum == 0) {
      backend::Kernels<D>::for_each_simd(param.numel(), backend::kParallelGrain, fn::SgdUpdate<T>{param.data(), grad.data(), lr, wd});
      return;
    }
    const bool first = !this->has_buffer(kMomentum, i);
    T* buf = this->buffer(kMomentum, i);
    backend::Kernels<D>::for_each_simd(param.numel(), backend::kParallelGrain,
                                       fn::SgdMomentumUpdate<T>{param.data(), grad.data(), buf, lr, wd, static_cast<T>(options_.momentum),
                                                                static_cast<T>(1 - options_.dampening), first, options_.nesterov});
  }

  SGDOptions options_;
};

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0;  // Adam: L2 added to the gradient; AdamW: decoupled (PyTorch's AdamW default is 1e-2)
};

// torch.optim.Adam / AdamW, step t of a parameter:
//   AdamW only: p *= 1 - lr wd;   Adam only: g += wd p
//   m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2
//   p -= (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)     (eps after the bias correction)
template <class T, class D = cpu>
class Adam : public Optimizer<T, D> {
 public:
  Adam(std::vector<Tensor<T, D>> params, AdamOptions options) : Adam(std::move(params), options, false) {}

 protected:
  Adam(std::vector<Tensor<T, D>> params, AdamOptions options, bool decoupled)
      : Optimizer<T, D>(std::move(params), options.lr, {"exp_avg", "exp_avg_sq"}), options_(options), decoupled_(decoupled) {
    detail::check_hyperparameter(options.beta1 >= 0 && options.beta1 < 1, "Adam: beta1 must be in [0, 1)");
    detail::check_hyperparameter(options.beta2 >= 0 && options.beta2 < 1, "Adam: beta2 must be in [0, 1)");
    detail::check_hyperparameter(options.eps >= 0, "Adam: eps must be >= 0");
    detail::check_hyperparameter(options.weight_decay >= 0, "Adam: weight_decay must be >= 0");
  }

 private:
  static constexpr std::size_t kExpAvg = 0, kExpAvgSq = 1;

  void update(std::size_t i, const Tensor<T, D>& param, const Tensor<T, D>& grad) override {
    // Scalars in double, as PyTorch computes them in Python floats.
    const auto t = static_cast<double>(this->parameter_step(i));
    const T step_size = static_cast<T>(this->lr() / (1 - std::pow(options_.beta1, t)));
    const T correction2_sqrt = static_cast<T>(std::sqrt(1 - std::pow(options_.beta2, t)));
    const T decay = static_cast<T>(decoupled_ ? 1 - this->lr() * options_.weight_decay : 1);
    const T l2 = static_cast<T>(decoupled_ ? 0 : options_.weight_decay);
    const T b1 = static_cast<T>(options_.beta1), b2 = static_cast<T>(options_.beta2), eps = static_cast<T>(options_.eps);
    // 1 - beta in double first: in float, 1 - 0.999f is off by 5e-5 relative.
    const T rest1 = static_cast<T>(1 - options_.beta1), rest2 = static_cast<T>(1 - options_.beta2);
    backend::Kernels<D>::for_each_simd(param.numel(), backend::kParallelGrain,
                                       fn::AdamUpdate<T>{param.data(), grad.data(), this->buffer(kExpAvg, i), this->buffer(kExpAvgSq, i),
                                                         decay, l2, b1, b2, rest1, rest2, step_size, correction2_sqrt, eps});
  }

  AdamOptions options_;
  bool decoupled_;
};

template <class T, class D = cpu>
class AdamW final : public Adam<T, D> {
 public:
  AdamW(std::vector<Tensor<T, D>> params, AdamOptions options) : Adam<T, D>(std::move(params), options, true) {}
};

// The 2-norm of all defined gradients taken together; not finite exactly when
// some gradient holds a NaN or an infinity.
template <class T, class D = cpu>
double grad_norm(const std::vector<Tensor<T, D>>& params) {
  NoGradGuard no_grad;
  double squares = 0;
  for (const auto& p : params)
    if (p.grad().defined()) {
      const Tensor<T, D> g = contiguous(p.grad());
      squares += detail::sum_of_squares<T, D>(g.data(), g.numel());
    }
  return std::sqrt(squares);
}

// torch.nn.utils.clip_grad_norm_ (2-norm): scales every defined gradient by
// min(1, max_norm / (total + 1e-6)) and returns the total norm of all
// gradients taken together. A non-finite total leaves the gradients untouched
// (skip the step); PyTorch would scale them by NaN.
template <class T, class D = cpu>
double clip_grad_norm(const std::vector<Tensor<T, D>>& params, double max_norm) {
  detail::check_hyperparameter(max_norm > 0, "clip_grad_norm: max_norm must be > 0");
  NoGradGuard no_grad;
  const double total = grad_norm(params);
  const double coefficient = max_norm / (total + 1e-6);
  if (!std::isfinite(total) || coefficient >= 1) return total;
  for (const auto& p : params)
    if (p.grad().defined()) p.set_grad(mul(p.grad(), static_cast<T>(coefficient)));
  return total;
}

// True when every defined gradient is free of NaN and infinity.
template <class T, class D = cpu>
bool all_finite(const std::vector<Tensor<T, D>>& params) {
  return std::isfinite(grad_norm(params));
}

}  // namespace metro::nn
