#pragma once
// Parameter-free layers: ReLU, GELU (erf form, as BERT/METRO), Softmax and Dropout.
#include <string>

#include "metro/nn/module.hpp"

namespace metro::nn {

template <class T, class D = cpu>
class ReLU : public Layer<T, D> {
 public:
  Tensor<T, D> forward(const Tensor<T, D>& x) override { return relu(x); }
};

template <class T, class D = cpu>
class GELU : public Layer<T, D> {
 public:
  Tensor<T, D> forward(const Tensor<T, D>& x) override { return gelu(x); }
};

template <class T, class D = cpu>
class Softmax : public Layer<T, D> {
 public:
  explicit Softmax(int dim = -1) : dim_(dim) {}
  Tensor<T, D> forward(const Tensor<T, D>& x) override { return softmax(x, dim_); }

 private:
  int dim_;
};

// Inverted dropout: in training, zeroes each element with probability p and scales
// the kept ones by 1 / (1 - p); the identity in eval mode or when p = 0.
template <class T, class D>
Tensor<T, D> dropout(const Tensor<T, D>& x, double p, bool training, Generator& gen) {
  if (p < 0 || p >= 1) throw ValueError("dropout: probability must be in [0, 1), got " + std::to_string(p));
  if (!training || p == 0) return x;
  const Tensor<T, D> keep = bernoulli<T, D>(x.shape(), 1 - p, gen);
  return x * (keep * static_cast<T>(1 / (1 - p)));
}

// A seed for a layer's own generator, drawn from `gen` (distinct layers get distinct masks).
inline std::uint64_t fresh_seed(Generator& gen) { return random_bits(gen.seed(), gen.reserve(1)); }

template <class T, class D = cpu>
class Dropout : public Layer<T, D> {
 public:
  // The generator is seeded here and owned by the layer: masks are reproducible.
  explicit Dropout(double p = 0.1, std::uint64_t seed = 0) : p_(p), gen_(seed) {
    if (p < 0 || p >= 1) throw ValueError("Dropout: probability must be in [0, 1), got " + std::to_string(p));
  }
  Tensor<T, D> forward(const Tensor<T, D>& x) override { return dropout(x, p_, this->is_training(), gen_); }
  double p() const noexcept { return p_; }
  // The layer's own mask generator: training code saves and restores its state
  // (or reseeds it per step) so that a resumed run draws the same masks.
  Generator& generator() noexcept { return gen_; }

 private:
  double p_;
  Generator gen_;
};

}  // namespace metro::nn
