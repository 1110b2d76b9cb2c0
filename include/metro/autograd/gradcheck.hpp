#pragma once
// Finite-difference gradient check, public so that anyone adding an op can use it.
//
// For f: inputs -> output, it compares the gradients that backward() computes
// for L = sum(f(x) * W) (W fixed random, so every output element matters)
// with central differences (L(x + eps) - L(x - eps)) / 2 eps, element by element.
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "metro/ops/methods.hpp"

namespace metro {

struct GradcheckResult {
  bool passed = true;
  double max_abs_error = 0;
  std::string report;  // the first mismatches, "input 1 [4]: analytic 0.5 numeric 0.25"
  explicit operator bool() const { return passed; }
};

template <class F>
GradcheckResult gradcheck(F f, const std::vector<TensorD>& inputs, double eps = 1e-6, double atol = 1e-5, double rtol = 1e-4) {
  std::vector<TensorD> x;
  for (const auto& in : inputs) x.push_back(clone(in.detach()).requires_grad_());
  const TensorD first = f(x);
  Generator gen(0x9e3779b9);
  const TensorD weight = randn<double>(first.shape(), gen);
  const auto objective = [&](const std::vector<TensorD>& args) { return sum(f(args) * weight); };

  objective(x).backward();
  GradcheckResult result;
  std::ostringstream report;
  int shown = 0;
  NoGradGuard no_grad;
  for (std::size_t k = 0; k < x.size(); ++k) {
    const TensorD analytic = x[k].grad().defined() ? contiguous(x[k].grad()) : zeros_like(x[k]);
    double* values = x[k].data();
    for (std::int64_t i = 0; i < x[k].numel(); ++i) {
      const double saved = values[i];
      values[i] = saved + eps;
      const double plus = objective(x).item();
      values[i] = saved - eps;
      const double minus = objective(x).item();
      values[i] = saved;
      const double numeric = (plus - minus) / (2 * eps), exact = analytic.data()[i];
      const double error = std::abs(numeric - exact);
      result.max_abs_error = std::max(result.max_abs_error, error);
      if (error > atol + rtol * std::abs(numeric)) {
        result.passed = false;
        if (shown++ < 5) report << "input " << k << " [" << i << "]: analytic " << exact << " numeric " << numeric << "\n";
      }
    }
  }
  result.report = report.str();
  return result;
}

}  // namespace metro
