#pragma once
// Parameter-free layers: ReLU, GELU (erf form, as BERT/METRO), Softmax and Dropout.
#include <atomic>
#include <cstdint>
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
// Element i is kept when uniform_at(first + i) < 1 - p, `first` being the
// generator offset the call reserves (the masks bernoulli(shape, 1 - p) would
// draw). The mask is never stored: the backward regenerates it from the seed and
// that offset, so the tape holds neither the mask nor x. The numbers are
// counter-based (core/random.hpp), so Kernels<cuda> evaluates the same mask on
// the device, thread by thread, that the CPU evaluates: no mask is drawn on the
// host and copied.
namespace fn {
// out[i] = in[i] * scale where uniform_at(first + i) of the stream `seed` is below
// the keep probability (`keep` = unit_threshold(1 - p)), else 0 (in integers: vectorizes).
template <class T>
struct DropoutMask {
  const T* in;
  T* out;
  std::uint64_t seed, first, keep;
  T scale;
  METRO_HD void operator()(std::int64_t i) const {
    const T kept = in[i] * scale;  // read unconditionally, so the loop vectorizes
    out[i] = bits_below(random_bits(seed, first + static_cast<std::uint64_t>(i)), keep) ? kept : T(0);
  }
};
}  // namespace fn

namespace detail {
// out[i] = in[i] / (1 - p) where uniform_at(first + i) of a generator seeded `seed` is < 1 - p, else 0.
template <class T, class D>
void apply_dropout_mask(const T* in, T* out, std::int64_t n, std::uint64_t seed, std::uint64_t first, double p) {
  backend::Kernels<D>::for_each_simd(n, backend::kParallelGrain,
                                     fn::DropoutMask<T>{in, out, seed, first, unit_threshold(1 - p), static_cast<T>(1 / (1 - p))});
}
}  // namespace detail

template <class T, class D>
Tensor<T, D> dropout(const Tensor<T, D>& x, double p, bool training, Generator& gen) {
  if (p < 0 || p >= 1) throw ValueError("dropout: probability must be in [0, 1), got " + std::to_string(p));
  if (!training || p == 0) return x;
  const Tensor<T, D> input = contiguous(x.detach());
  const std::int64_t n = x.numel();
  const std::uint64_t seed = gen.seed(), first = gen.reserve(static_cast<std::uint64_t>(n));
  Tensor<T, D> y = empty<T, D>(x.shape());
  detail::apply_dropout_mask<T, D>(input.data(), y.data(), n, seed, first, p);
  if (autograd::needs_grad(x))
    autograd::record(y, [x = autograd::grad_target(x), n, seed, first, p](const Tensor<T, D>& g) {
      const Tensor<T, D> gy = contiguous(g);
      Tensor<T, D> gx = empty<T, D>(x.shape);
      detail::apply_dropout_mask<T, D>(gy.data(), gx.data(), n, seed, first, p);
      autograd::accumulate_grad(x, gx);
    });
  return y;
}

// A seed for a layer's own generator, drawn from `gen` (distinct layers get distinct masks).
inline std::uint64_t fresh_seed(Generator& gen) { return random_bits(gen.seed(), gen.reserve(1)); }

// Seeds for Dropout layers built without one: 1, 2, 3... in construction order,
// so that no two such layers draw the same masks.
inline std::uint64_t next_dropout_seed() {
  static std::atomic<std::uint64_t> count{0};
  return ++count;
}

template <class T, class D = cpu>
class Dropout : public Layer<T, D> {
 public:
  // The generator is seeded here and owned by the layer: masks are reproducible.
  explicit Dropout(double p = 0.1, std::uint64_t seed = next_dropout_seed()) : p_(p), gen_(seed) {
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
