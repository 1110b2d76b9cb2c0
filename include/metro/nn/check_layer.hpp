#pragma once
// check_layer: the test every layer must pass (in double precision, on a small instance).
//   1. input and parameter gradients of L = sum(f(x) * W) (W fixed random) agree
//      with central finite differences;
//   2. backward accumulates: a second forward + backward doubles every gradient;
//   3. train and eval modes differ exactly when expected (Dropout, BatchNorm).
// The module's mode, buffers and gradients are restored afterwards.
#include <cmath>
#include <concepts>
#include <sstream>
#include <string>
#include <vector>

#include "metro/nn/module.hpp"

namespace metro::nn {

struct CheckLayerOptions {
  bool check_in_training = false;          // run the gradient checks in train mode (BatchNorm); else eval
  bool expect_train_eval_differ = false;   // Dropout, BatchNorm: outputs differ between modes
  double eps = 1e-6, atol = 1e-6, rtol = 1e-5;
  std::int64_t max_checked_per_tensor = 48;  // finite differences on at most this many elements, evenly spread
};

struct CheckLayerResult {
  bool passed = true;
  double max_input_error = 0, max_param_error = 0, max_accumulate_error = 0;
  bool train_eval_differ = false;
  std::string report;  // the first failures, one per line
  explicit operator bool() const { return passed; }
};

namespace detail {

// |finite difference - analytic| per checked element of `target` (perturbed in place).
template <class Objective>
double finite_difference_error(const TensorD& target, const TensorD& analytic, Objective objective, const CheckLayerOptions& o,
                               const std::string& name, CheckLayerResult& result, std::ostringstream& report) {
  NoGradGuard no_grad;
  const TensorD exact = contiguous(analytic);
  double worst = 0;
  const std::int64_t n = target.numel(), step = std::max<std::int64_t>(1, n / o.max_checked_per_tensor);
  for (std::int64_t i = 0; i < n; i += step) {
    double& value = target.data()[i];
    const double saved = value;
    value = saved + o.eps;
    const double plus = objective();
    value = saved - o.eps;
    const double minus = objective();
    value = saved;
    const double numeric = (plus - minus) / (2 * o.eps), error = std::abs(numeric - exact.data()[i]);
    worst = std::max(worst, error);
    if (error > o.atol + o.rtol * std::abs(numeric)) {
      if (result.passed) report << name << " [" << i << "]: analytic " << exact.data()[i] << ", numeric " << numeric << "\n";
      result.passed = false;
    }
  }
  return worst;
}

inline TensorD gradient_or_zeros(const TensorD& t) { return t.grad().defined() ? clone(t.grad()) : zeros_like(t); }

}  // namespace detail

// `forward(x)` runs `net` on x (a lambda, so any module signature fits);
// `input` must be contiguous. Parameters must be contiguous too.
template <class Forward>
CheckLayerResult check_layer(Module<double>& net, Forward forward, const TensorD& input, const CheckLayerOptions& o = {}) {
  CheckLayerResult result;
  std::ostringstream report;
  const bool was_training = net.is_training();
  Module<double>::StateDict saved;
  for (const auto& [name, t] : net.named_buffers()) saved.emplace(name, clone(t.detach()));
  const auto params = net.named_parameters();

  net.train(o.check_in_training);
  const TensorD x = clone(input.detach()).requires_grad_();
  Generator gen(0x5eed);
  const TensorD weight = randn<double>(forward(x).shape(), gen);
  const auto loss = [&] { return sum(forward(x) * weight); };
  clear_tape();
  net.zero_grad();
  loss().backward();
  const TensorD input_grad = detail::gradient_or_zeros(x);
  std::vector<TensorD> param_grads;
  for (const auto& [name, p] : params) param_grads.push_back(detail::gradient_or_zeros(p));

  // 2. A second backward adds into the gradients: they double.
  loss().backward();
  const auto doubled_error = [](const TensorD& grad, const TensorD& once) {
    return grad.defined() ? max(abs(grad - once * 2.0)).item() : (max(abs(once)).item() > 0 ? INFINITY : 0.0);
  };
  result.max_accumulate_error = doubled_error(x.grad(), input_grad);
  for (std::size_t k = 0; k < params.size(); ++k)
    result.max_accumulate_error = std::max(result.max_accumulate_error, doubled_error(params[k].second.grad(), param_grads[k]));
  if (result.max_accumulate_error > o.atol) result.passed = false, report << "backward overwrites instead of accumulating\n";

  // 1. Finite differences.
  const auto objective = [&] { return loss().item(); };
  result.max_input_error = detail::finite_difference_error(x.detach(), input_grad, objective, o, "input", result, report);
  for (std::size_t k = 0; k < params.size(); ++k)
    result.max_param_error = std::max(result.max_param_error, detail::finite_difference_error(params[k].second.detach(), param_grads[k],
                                                                                              objective, o, params[k].first, result, report));

  // 3. Train vs eval.
  {
    NoGradGuard no_grad;
    net.train(true);
    const TensorD train_out = forward(x.detach());
    net.eval();
    const TensorD eval_out = forward(x.detach());
    result.train_eval_differ = max(abs(train_out - eval_out)).item() > 0;
  }
  if (result.train_eval_differ != o.expect_train_eval_differ)
    result.passed = false, report << "train and eval outputs " << (result.train_eval_differ ? "differ" : "agree") << ", expected otherwise\n";

  net.load_state_dict(saved, false);
  net.train(was_training);
  net.zero_grad();
  clear_tape();
  result.report = report.str();
  return result;
}

// For single-input layers. A template, so that a translation unit that never calls
// it does not instantiate the float64 checker (compile time).
template <std::derived_from<Layer<double>> L>
CheckLayerResult check_layer(L& layer, const TensorD& input, const CheckLayerOptions& o = {}) {
  return check_layer(layer, [&](const TensorD& x) { return layer.forward(x); }, input, o);
}

}  // namespace metro::nn
