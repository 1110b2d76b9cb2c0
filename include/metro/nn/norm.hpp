#pragma once
// LayerNorm and BatchNorm2d, each one fused autograd op (forward and backward
// written out per row / per channel) instead of a chain of elementwise ops.
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

// y = (x - mean) / sqrt(var + eps) * weight + bias over the last dim (biased var);
// x (..., n), weight and bias (n).
template <class T, class D>
Tensor<T, D> layer_norm(const Tensor<T, D>& x, const Tensor<T, D>& weight, const Tensor<T, D>& bias, double eps) {
  const std::int64_t n = x.dim() ? x.shape().back() : 1, rows = n ? x.numel() / n : 0;
  if (!(weight.shape() == Shape{n}) || !(bias.shape() == Shape{n}))
    throw ShapeError("layer_norm: input " + x.shape().str() + " needs weight and bias (" + std::to_string(n) + "), got " +
                     weight.shape().str() + " and " + bias.shape().str());
  const Tensor<T, D> input = contiguous(x.detach()), w = contiguous(weight.detach()), b = contiguous(bias.detach());
  Tensor<T, D> y = empty<T, D>(x.shape()), mean = empty<T, D>({rows}), rstd = empty<T, D>({rows});
  const T *xp = input.data(), *wp = w.data(), *bp = b.data();
  T *yp = y.data(), *mp = mean.data(), *rp = rstd.data();
  backend::parallel_for(rows, std::max<std::int64_t>(1, backend::kParallelGrain / std::max<std::int64_t>(n, 1)),
                        [&](std::int64_t first, std::int64_t last) {
    for (std::int64_t r = first; r < last; ++r) {
      const T* row = xp + r * n;
      T total = 0, squares = 0;
#pragma omp simd reduction(+ : total)
      for (std::int64_t i = 0; i < n; ++i) total += row[i];
      const T mu = total / static_cast<T>(n);
#pragma omp simd reduction(+ : squares)
      for (std::int64_t i = 0; i < n; ++i) squares += (row[i] - mu) * (row[i] - mu);
      const T inv = T(1) / std::sqrt(squares / static_cast<T>(n) + static_cast<T>(eps));
      mp[r] = mu, rp[r] = inv;
      T* out = yp + r * n;
#pragma omp simd
      for (std::int64_t i = 0; i < n; ++i) out[i] = (row[i] - mu) * inv * wp[i] + bp[i];
    }
  });
  if (autograd::needs_grad(x, weight, bias))
    autograd::record(y, [x, weight, bias, input, w, mean, rstd, rows, n](const Tensor<T, D>& g) {
      // xhat = (x - mean) rstd;  gx = rstd (g w - mean(g w) - xhat mean(g w xhat));
      // gweight = sum_rows(g xhat);  gbias = sum_rows(g).
      const Tensor<T, D> gy = contiguous(g);
      Tensor<T, D> gx = empty<T, D>(x.shape()), gy_xhat = empty<T, D>(x.shape());
      const T *xp = input.data(), *wp = w.data(), *gp = gy.data(), *mp = mean.data(), *rp = rstd.data();
      T *gxp = gx.data(), *hp = gy_xhat.data();
      backend::parallel_for(rows, std::max<std::int64_t>(1, backend::kParallelGrain / std::max<std::int64_t>(n, 1)),
                            [&](std::int64_t first, std::int64_t last) {
        for (std::int64_t r = first; r < last; ++r) {
          const T *row = xp + r * n, *grow = gp + r * n;
          const T mu = mp[r], inv = rp[r];
          T sum_g = 0, sum_g_xhat = 0;
#pragma omp simd reduction(+ : sum_g, sum_g_xhat)
          for (std::int64_t i = 0; i < n; ++i) {
            const T gw = grow[i] * wp[i], xhat = (row[i] - mu) * inv;
            sum_g += gw, sum_g_xhat += gw * xhat;
          }
          const T mean_g = sum_g / static_cast<T>(n), mean_g_xhat = sum_g_xhat / static_cast<T>(n);
#pragma omp simd
          for (std::int64_t i = 0; i < n; ++i) {
            const T xhat = (row[i] - mu) * inv;
            gxp[r * n + i] = inv * (grow[i] * wp[i] - mean_g - xhat * mean_g_xhat);
            hp[r * n + i] = grow[i] * xhat;
          }
        }
      });
      autograd::accumulate_grad(x, gx);
      if (weight.requires_grad()) autograd::accumulate_grad(weight, detail::column_sums<T, D>(hp, rows, n));
      if (bias.requires_grad()) autograd::accumulate_grad(bias, detail::column_sums<T, D>(gp, rows, n));
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

// Batch normalization over (N, *) per channel of x (N, C, *), as torch.nn.BatchNorm2d.
// Training: batch mean and biased variance normalize; the running stats move by
// `momentum` towards the batch mean and the *unbiased* variance. Eval: running stats.
template <class T, class D>
Tensor<T, D> batch_norm(const Tensor<T, D>& x, const Tensor<T, D>& weight, const Tensor<T, D>& bias,
                        const Tensor<T, D>& running_mean, const Tensor<T, D>& running_var, bool training, double momentum,
                        double eps) {
  if (x.dim() < 2) throw ShapeError("batch_norm: input " + x.shape().str() + " needs (N, C, ...)");
  const std::int64_t batch = x.shape()[0], channels = x.shape()[1], spatial = x.numel() / std::max<std::int64_t>(1, batch * channels);
  const std::int64_t count = batch * spatial;
  for (const auto* t : {&weight, &bias, &running_mean, &running_var})
    if (!(t->shape() == Shape{channels}))
      throw ShapeError("batch_norm: input " + x.shape().str() + " needs per-channel tensors (" + std::to_string(channels) +
                       "), got " + t->shape().str());
  if (training && count < 2) throw ValueError("batch_norm: training needs more than one value per channel, got " + x.shape().str());
  const Tensor<T, D> input = contiguous(x.detach());
  Tensor<T, D> y = empty<T, D>(x.shape()), mean = empty<T, D>({channels}), invstd = empty<T, D>({channels});
  const T *xp = input.data(), *wp = weight.data(), *bp = bias.data();
  T *yp = y.data(), *mp = mean.data(), *ip = invstd.data(), *rmp = running_mean.data(), *rvp = running_var.data();
  // Element (n, c, s) sits at (n * channels + c) * spatial + s.
  backend::parallel_for(channels, 1, [&](std::int64_t first, std::int64_t last) {
    for (std::int64_t c = first; c < last; ++c) {
      double mu = rmp[c], var = rvp[c];
      if (training) {
        double total = 0, squares = 0;
        for (std::int64_t n = 0; n < batch; ++n) {
          const T* plane = xp + (n * channels + c) * spatial;
#pragma omp simd reduction(+ : total)
          for (std::int64_t s = 0; s < spatial; ++s) total += plane[s];
        }
        mu = total / static_cast<double>(count);
        for (std::int64_t n = 0; n < batch; ++n) {
          const T* plane = xp + (n * channels + c) * spatial;
#pragma omp simd reduction(+ : squares)
          for (std::int64_t s = 0; s < spatial; ++s) squares += (plane[s] - mu) * (plane[s] - mu);
        }
        var = squares / static_cast<double>(count);
        rmp[c] = static_cast<T>((1 - momentum) * rmp[c] + momentum * mu);
        rvp[c] = static_cast<T>((1 - momentum) * rvp[c] + momentum * var * static_cast<double>(count) / static_cast<double>(count - 1));
      }
      const T inv = static_cast<T>(1 / std::sqrt(var + eps)), m = static_cast<T>(mu);
      mp[c] = m, ip[c] = inv;
      const T scale = inv * wp[c], shift = bp[c] - m * inv * wp[c];
      for (std::int64_t n = 0; n < batch; ++n) {
        const T* in = xp + (n * channels + c) * spatial;
        T* out = yp + (n * channels + c) * spatial;
#pragma omp simd
        for (std::int64_t s = 0; s < spatial; ++s) out[s] = in[s] * scale + shift;
      }
    }
  });
  if (autograd::needs_grad(x, weight, bias))
    autograd::record(y, [x, weight, bias, input, mean, invstd, training, batch, channels, spatial](const Tensor<T, D>& g) {
      // Per channel, xhat = (x - mean) invstd, M = N * spatial:
      //   gweight = sum(g xhat), gbias = sum(g)
      //   training: gx = w invstd (g - gbias / M - xhat gweight / M)   (mean and var depend on x)
      //   eval:     gx = w invstd g
      const Tensor<T, D> gy = contiguous(g);
      Tensor<T, D> gx = empty<T, D>(x.shape()), gweight = empty<T, D>({channels}), gbias = empty<T, D>({channels});
      const T *xp = input.data(), *gp = gy.data(), *wp = weight.data(), *mp = mean.data(), *ip = invstd.data();
      T *gxp = gx.data(), *gwp = gweight.data(), *gbp = gbias.data();
      const double count = static_cast<double>(batch * spatial);
      backend::parallel_for(channels, 1, [&](std::int64_t first, std::int64_t last) {
        for (std::int64_t c = first; c < last; ++c) {
          const T mu = mp[c], inv = ip[c];
          double sum_g = 0, sum_g_xhat = 0;
          for (std::int64_t n = 0; n < batch; ++n) {
            const T *in = xp + (n * channels + c) * spatial, *gr = gp + (n * channels + c) * spatial;
#pragma omp simd reduction(+ : sum_g, sum_g_xhat)
            for (std::int64_t s = 0; s < spatial; ++s) sum_g += gr[s], sum_g_xhat += gr[s] * (in[s] - mu) * inv;
          }
          gwp[c] = static_cast<T>(sum_g_xhat), gbp[c] = static_cast<T>(sum_g);
          const T scale = wp[c] * inv;
          const T mean_g = training ? static_cast<T>(sum_g / count) : T(0);
          const T mean_g_xhat = training ? static_cast<T>(sum_g_xhat / count) : T(0);
          for (std::int64_t n = 0; n < batch; ++n) {
            const std::int64_t base = (n * channels + c) * spatial;
#pragma omp simd
            for (std::int64_t s = 0; s < spatial; ++s)
              gxp[base + s] = scale * (gp[base + s] - mean_g - (xp[base + s] - mu) * inv * mean_g_xhat);
          }
        }
      });
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
