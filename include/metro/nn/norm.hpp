#pragma once
// LayerNorm and BatchNorm2d, each one fused autograd op (forward and backward
// written out per row / per channel, as METRO_HD functors that Kernels<D>::for_each
// runs on either backend) instead of a chain of elementwise ops.
#include <cmath>
#include <vector>

#include "metro/nn/module.hpp"

namespace metro::nn {

namespace detail {
// Column sums of a contiguous (rows, n) block: out[j] = sum_i m[i, j] (deterministic).
template <class T, class D>
Tensor<T, D> column_sums(const T* m, std::int64_t rows, std::int64_t n) {
  Tensor<T, D> out = empty<T, D>({n});
  backend::Kernels<D>::sum_middle(m, out.data(), 1, rows, n);
  return out;
}
}  // namespace detail

namespace fn {
// LayerNorm forward of row r of a contiguous (rows, n) block: its mean and
// 1 / std go to mean[r], rstd[r], and y = (x - mean) rstd w + b.
template <class T>
struct LayerNormRow {
  const T *x, *w, *b;
  T *y, *mean, *rstd;
  std::int64_t n;
  T eps;
  METRO_HD void operator()(std::int64_t r) const {
    const T* row = x + r * n;
    T total = 0, squares = 0;
    METRO_SIMD(reduction(+ : total))
    for (std::int64_t i = 0; i < n; ++i) total += row[i];
    const T mu = total / static_cast<T>(n);
    METRO_SIMD(reduction(+ : squares))
    for (std::int64_t i = 0; i < n; ++i) squares += (row[i] - mu) * (row[i] - mu);
    const T inv = T(1) / std::sqrt(squares / static_cast<T>(n) + eps);
    mean[r] = mu, rstd[r] = inv;
    T* out = y + r * n;
    METRO_SIMD()
    for (std::int64_t i = 0; i < n; ++i) out[i] = (row[i] - mu) * inv * w[i] + b[i];
  }
};
// Its backward for row r: xhat = (x - mean) rstd;
// gx = rstd (g w - mean(g w) - xhat mean(g w xhat)); gy_xhat = g xhat (summed over rows for gweight).
template <class T>
struct LayerNormRowBackward {
  const T *x, *w, *gy, *mean, *rstd;
  T *gx, *gy_xhat;
  std::int64_t n;
  METRO_HD void operator()(std::int64_t r) const {
    const T *row = x + r * n, *grow = gy + r * n;
    const T mu = mean[r], inv = rstd[r];
    T sum_g = 0, sum_g_xhat = 0;
    METRO_SIMD(reduction(+ : sum_g, sum_g_xhat))
    for (std::int64_t i = 0; i < n; ++i) {
      const T gw = grow[i] * w[i], xhat = (row[i] - mu) * inv;
      sum_g += gw, sum_g_xhat += gw * xhat;
    }
    const T mean_g = sum_g / static_cast<T>(n), mean_g_xhat = sum_g_xhat / static_cast<T>(n);
    METRO_SIMD()
    for (std::int64_t i = 0; i < n; ++i) {
      const T xhat = (row[i] - mu) * inv;
      gx[r * n + i] = inv * (grow[i] * w[i] - mean_g - xhat * mean_g_xhat);
      gy_xhat[r * n + i] = grow[i] * xhat;
    }
  }
};
}  // namespace fn

// y = (x - mean) / sqrt(var + eps) * weight + bias over the last dim (biased var);
// x (..., n), weight and bias (n). One row per index of Kernels<D>::for_each.
template <class T, class D>
Tensor<T, D> layer_norm(const Tensor<T, D>& x, const Tensor<T, D>& weight, const Tensor<T, D>& bias, double eps) {
  const std::int64_t n = x.dim() ? x.shape().back() : 1, rows = n ? x.numel() / n : 0;
  if (!(weight.shape() == Shape{n}) || !(bias.shape() == Shape{n}))
    throw ShapeError("layer_norm: input " + x.shape().str() + " needs weight and bias (" + std::to_string(n) + "), got " +
                     weight.shape().str() + " and " + bias.shape().str());
  const Tensor<T, D> input = contiguous(x.detach()), w = contiguous(weight.detach()), b = contiguous(bias.detach());
  Tensor<T, D> y = empty<T, D>(x.shape()), mean = empty<T, D>({rows}), rstd = empty<T, D>({rows});
  const std::int64_t grain = std::max<std::int64_t>(1, backend::kParallelGrain / std::max<std::int64_t>(n, 1));
  backend::Kernels<D>::for_each(rows, grain, fn::LayerNormRow<T>{input.data(), w.data(), b.data(), y.data(), mean.data(), rstd.data(),
                                                                 n, static_cast<T>(eps)});
  if (autograd::needs_grad(x, weight, bias))
    autograd::record(y, [x, weight, bias, input, w, mean, rstd, rows, n, grain](const Tensor<T, D>& g) {
      const Tensor<T, D> gy = contiguous(g);
      Tensor<T, D> gx = empty<T, D>(x.shape()), gy_xhat = empty<T, D>(x.shape());
      backend::Kernels<D>::for_each(rows, grain, fn::LayerNormRowBackward<T>{input.data(), w.data(), gy.data(), mean.data(), rstd.data(),
                                                                             gx.data(), gy_xhat.data(), n});
      autograd::accumulate_grad(x, gx);
      if (weight.requires_grad()) autograd::accumulate_grad(weight, detail::column_sums<T, D>(gy_xhat.data(), rows, n));
      if (bias.requires_grad()) autograd::accumulate_grad(bias, detail::column_sums<T, D>(gy.data(), rows, n));
    });
  return y;
}

struct LayerNormConfig {
  std::int64_t normalized_shape = 0;  // the last dim's size
  double eps = 1e-5;                  // BERT / METRO use 1e-12
};

template <class T, class D = cpu>
class LayerNorm : public Layer<T, D> {
 public:
  explicit LayerNorm(const LayerNormConfig& config) : config_(config) {
    if (config.normalized_shape <= 0) throw ValueError("LayerNorm: normalized_shape must be positive");
    weight_ = this->register_parameter("weight", ones<T, D>({config.normalized_shape}));
    bias_ = this->register_parameter("bias", zeros<T, D>({config.normalized_shape}));
  }
  // (..., n) -> (..., n)
  Tensor<T, D> forward(const Tensor<T, D>& x) override { return layer_norm(x, weight_, bias_, config_.eps); }

 private:
  LayerNormConfig config_;
  Tensor<T, D> weight_, bias_;
};

namespace fn {
// BatchNorm forward of channel c; element (n, c, s) of x sits at (n * channels + c) * spatial + s.
// Training: batch mean and biased variance (in double) normalize, and the
// running stats move by `momentum` towards the mean and the unbiased variance;
// eval: the running stats normalize. mean[c], invstd[c] keep what was used.
template <class T>
struct BatchNormChannel {
  const T *x, *w, *b;
  T *y, *mean, *invstd, *running_mean, *running_var;
  std::int64_t batch, channels, spatial;
  bool training;
  double momentum, eps;
  METRO_HD void operator()(std::int64_t c) const {
    const std::int64_t count = batch * spatial;
    double mu = running_mean[c], var = running_var[c];
    if (training) {
      double total = 0, squares = 0;
      for (std::int64_t n = 0; n < batch; ++n) {
        const T* plane = x + (n * channels + c) * spatial;
        METRO_SIMD(reduction(+ : total))
        for (std::int64_t s = 0; s < spatial; ++s) total += plane[s];
      }
      mu = total / static_cast<double>(count);
      for (std::int64_t n = 0; n < batch; ++n) {
        const T* plane = x + (n * channels + c) * spatial;
        METRO_SIMD(reduction(+ : squares))
        for (std::int64_t s = 0; s < spatial; ++s) squares += (plane[s] - mu) * (plane[s] - mu);
      }
      var = squares / static_cast<double>(count);
      running_mean[c] = static_cast<T>((1 - momentum) * running_mean[c] + momentum * mu);
      running_var[c] =
          static_cast<T>((1 - momentum) * running_var[c] + momentum * var * static_cast<double>(count) / static_cast<double>(count - 1));
    }
    const T inv = static_cast<T>(1 / std::sqrt(var + eps)), m = static_cast<T>(mu);
    mean[c] = m, invstd[c] = inv;
    const T scale = inv * w[c], shift = b[c] - m * inv * w[c];
    for (std::int64_t n = 0; n < batch; ++n) {
      const T* in = x + (n * channels + c) * spatial;
      T* out = y + (n * channels + c) * spatial;
      METRO_SIMD()
      for (std::int64_t s = 0; s < spatial; ++s) out[s] = in[s] * scale + shift;
    }
  }
};
// Its backward for channel c, xhat = (x - mean) invstd, M = N * spatial:
//   gweight = sum(g xhat), gbias = sum(g)
//   training: gx = w invstd (g - gbias / M - xhat gweight / M)   (mean and var depend on x)
//   eval:     gx = w invstd g
template <class T>
struct BatchNormChannelBackward {
  const T *x, *gy, *w, *mean, *invstd;
  T *gx, *gweight, *gbias;
  std::int64_t batch, channels, spatial;
  bool training;
  METRO_HD void operator()(std::int64_t c) const {
    const double count = static_cast<double>(batch * spatial);
    const T mu = mean[c], inv = invstd[c];
    double sum_g = 0, sum_g_xhat = 0;
    for (std::int64_t n = 0; n < batch; ++n) {
      const T *in = x + (n * channels + c) * spatial, *gr = gy + (n * channels + c) * spatial;
      METRO_SIMD(reduction(+ : sum_g, sum_g_xhat))
      for (std::int64_t s = 0; s < spatial; ++s) sum_g += gr[s], sum_g_xhat += gr[s] * (in[s] - mu) * inv;
    }
    gweight[c] = static_cast<T>(sum_g_xhat), gbias[c] = static_cast<T>(sum_g);
    const T scale = w[c] * inv;
    const T mean_g = training ? static_cast<T>(sum_g / count) : T(0);
    const T mean_g_xhat = training ? static_cast<T>(sum_g_xhat / count) : T(0);
    for (std::int64_t n = 0; n < batch; ++n) {
      const std::int64_t base = (n * channels + c) * spatial;
      METRO_SIMD()
      for (std::int64_t s = 0; s < spatial; ++s) gx[base + s] = scale * (gy[base + s] - mean_g - (x[base + s] - mu) * inv * mean_g_xhat);
    }
  }
};
}  // namespace fn

// Batch normalization over (N, *) per channel of x (N, C, *), as torch.nn.BatchNorm2d.
// Training: batch mean and biased variance normalize; the running stats move by
// `momentum` towards the batch mean and the *unbiased* variance. Eval: running stats.
// One channel per index of Kernels<D>::for_each.
template <class T, class D>
Tensor<T, D> batch_norm(const Tensor<T, D>& x, const Tensor<T, D>& weight, const Tensor<T, D>& bias,
                        const Tensor<T, D>& running_mean, const Tensor<T, D>& running_var, bool training, double momentum,
                        double eps) {
  if (x.dim() < 2) throw ShapeError("batch_norm: input " + x.shape().str() + " needs (N, C, ...)");
  const std::int64_t batch = x.shape()[0], channels = x.shape()[1], spatial = x.numel() / std::max<std::int64_t>(1, batch * channels);
  const std::int64_t count = batch * spatial;
  for (const auto* t : {&weight, &bias, &running_mean, &running_var})
    if (!(t->shape() == Shape{channels}) || !t->is_contiguous())  // read (and the running statistics written) as plain arrays
      throw ShapeError("batch_norm: input " + x.shape().str() + " needs contiguous per-channel tensors (" + std::to_string(channels) +
                       "), got " + t->shape().str() + (t->is_contiguous() ? "" : " (a strided view)"));
  if (training && count < 2) throw ValueError("batch_norm: training needs more than one value per channel, got " + x.shape().str());
  const Tensor<T, D> input = contiguous(x.detach());
  Tensor<T, D> y = empty<T, D>(x.shape()), mean = empty<T, D>({channels}), invstd = empty<T, D>({channels});
  backend::Kernels<D>::for_each(channels, 1, fn::BatchNormChannel<T>{input.data(), weight.data(), bias.data(), y.data(), mean.data(),
                                                                     invstd.data(), running_mean.data(), running_var.data(), batch,
                                                                     channels, spatial, training, momentum, eps});
  if (autograd::needs_grad(x, weight, bias))
    autograd::record(y, [x, weight, bias, input, mean, invstd, training, batch, channels, spatial](const Tensor<T, D>& g) {
      const Tensor<T, D> gy = contiguous(g);
      Tensor<T, D> gx = empty<T, D>(x.shape()), gweight = empty<T, D>({channels}), gbias = empty<T, D>({channels});
      backend::Kernels<D>::for_each(channels, 1, fn::BatchNormChannelBackward<T>{input.data(), gy.data(), weight.data(), mean.data(),
                                                                                 invstd.data(), gx.data(), gweight.data(), gbias.data(),
                                                                                 batch, channels, spatial, training});
      autograd::accumulate_grad(x, gx);
      autograd::accumulate_grad(weight, gweight);
      autograd::accumulate_grad(bias, gbias);
    });
  return y;
}

struct BatchNormConfig {
  std::int64_t num_features = 0;
  double eps = 1e-5, momentum = 0.1;
};

template <class T, class D = cpu>
class BatchNorm2d : public Layer<T, D> {
 public:
  explicit BatchNorm2d(const BatchNormConfig& config) : config_(config) {
    const std::int64_t c = config.num_features;
    if (c <= 0) throw ValueError("BatchNorm2d: num_features must be positive");
    weight_ = this->register_parameter("weight", ones<T, D>({c}));
    bias_ = this->register_parameter("bias", zeros<T, D>({c}));
    running_mean_ = this->register_buffer("running_mean", zeros<T, D>({c}));
    running_var_ = this->register_buffer("running_var", ones<T, D>({c}));
  }
  // (N, C, H, W) -> (N, C, H, W); updates the running stats in training mode.
  Tensor<T, D> forward(const Tensor<T, D>& x) override {
    if (x.dim() != 4) throw ShapeError("BatchNorm2d: expected (N, C, H, W), got " + x.shape().str());
    return batch_norm(x, weight_, bias_, running_mean_, running_var_, this->is_training(), config_.momentum, config_.eps);
  }

 private:
  BatchNormConfig config_;
  Tensor<T, D> weight_, bias_, running_mean_, running_var_;
};

}  // namespace metro::nn
