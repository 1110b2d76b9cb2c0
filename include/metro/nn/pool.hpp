#pragma once
// MaxPool2d and AdaptiveAvgPool2d, each one autograd op over NCHW planes
// (per-plane METRO_HD bodies run by Kernels<D>::for_each).
#include <cstdint>
#include <limits>

#include "metro/nn/conv.hpp"

namespace metro::nn {

namespace detail {
// Planes per OpenMP piece on the CPU: enough that a piece is worth a thread.
inline std::int64_t plane_grain(std::int64_t plane_size) {
  return std::max<std::int64_t>(1, backend::kParallelGrain / std::max<std::int64_t>(plane_size, 1));
}
}  // namespace detail

namespace fn {
// Max pooling of plane p, an output row at a time: each output starts as the
// first valid input of its window, then the window positions (kh, kw) in
// row-major order replace it where strictly larger, so the winner is the first
// one on ties and padding never wins. The inner loops run along the output row
// without branches (they vectorize). `argmax`, when not null, receives each
// winner's index within the plane (for the backward).
template <class T>
struct MaxPoolPlane {
  const T* x;
  T* y;
  std::int32_t* argmax;
  std::int64_t height, width, out_h, out_w, kernel, stride, padding;
  METRO_HD void operator()(std::int64_t p) const {
    const T* plane = x + p * height * width;
    for (std::int64_t oh = 0; oh < out_h; ++oh) {
      T* best = y + (p * out_h + oh) * out_w;
      std::int32_t* winner = argmax ? argmax + (p * out_h + oh) * out_w : nullptr;
      const std::int64_t h0 = oh * stride - padding;
      const std::int64_t h_first = h0 > 0 ? h0 : 0, h_end = h0 + kernel < height ? h0 + kernel : height;
      for (std::int64_t ow = 0; ow < out_w; ++ow) {
        const std::int64_t w0 = ow * stride - padding, first = h_first * width + (w0 > 0 ? w0 : 0);
        best[ow] = plane[first];
        if (winner) winner[ow] = static_cast<std::int32_t>(first);
      }
      for (std::int64_t ih = h_first; ih < h_end; ++ih)
        for (std::int64_t kw = 0; kw < kernel; ++kw) {
          const std::int64_t offset = kw - padding, row = ih * width + offset;  // input (ih, ow * stride + offset)
          const detail::ValidRange cols = detail::valid_range(offset, stride, width, out_w);
          if (winner) {
            for (std::int64_t ow = cols.first; ow < cols.last; ++ow) {
              const T value = plane[row + ow * stride];
              const bool wins = value > best[ow];
              best[ow] = wins ? value : best[ow];
              winner[ow] = wins ? static_cast<std::int32_t>(row + ow * stride) : winner[ow];
            }
          } else {
            for (std::int64_t ow = cols.first; ow < cols.last; ++ow) {
              const T value = plane[row + ow * stride];
              best[ow] = value > best[ow] ? value : best[ow];
            }
          }
        }
    }
  }
};
// Its backward for plane p: each output's gradient goes to its winner (overlapping windows add up, in order).
template <class T>
struct MaxPoolPlaneBackward {
  const T* gy;
  const std::int32_t* argmax;
  T* gx;
  std::int64_t plane_in, plane_out;
  METRO_HD void operator()(std::int64_t p) const {
    for (std::int64_t o = p * plane_out; o < (p + 1) * plane_out; ++o) gx[p * plane_in + argmax[o]] += gy[o];
  }
};

// Adaptive average pooling of plane p: output cell i of n covers input
// [floor(i H / n), ceil((i + 1) H / n)). Forward: y[o] += x[i] / area (y zeroed);
// backward (`backward` true): gx[i] += gy[o] / area, in the same order.
template <class T>
struct AdaptiveAvgPoolPlane {
  const T* from;
  T* to;
  std::int64_t height, width, out_h, out_w;
  bool backward;
  METRO_HD void operator()(std::int64_t p) const {
    const std::int64_t plane_in = height * width, plane_out = out_h * out_w;
    for (std::int64_t oh = 0; oh < out_h; ++oh)
      for (std::int64_t ow = 0; ow < out_w; ++ow) {
        const std::int64_t h0 = oh * height / out_h, h1 = ((oh + 1) * height + out_h - 1) / out_h;
        const std::int64_t w0 = ow * width / out_w, w1 = ((ow + 1) * width + out_w - 1) / out_w;
        const T inv_area = T(1) / static_cast<T>((h1 - h0) * (w1 - w0));
        const std::int64_t o = oh * out_w + ow;
        for (std::int64_t ih = h0; ih < h1; ++ih)
          for (std::int64_t iw = w0; iw < w1; ++iw) {
            const std::int64_t i = ih * width + iw;
            if (backward)
              to[p * plane_in + i] += inv_area * from[p * plane_out + o];
            else
              to[p * plane_out + o] += inv_area * from[p * plane_in + i];
          }
      }
  }
};
}  // namespace fn

// Max over k x k windows; padding never wins (-inf). The gradient goes to each
// window's arg-max (the first one on ties); overlapping windows add up.
// x (N, C, H, W) -> (N, C, Ho, Wo). One plane per index of Kernels<D>::for_each.
template <class T, class D>
Tensor<T, D> max_pool2d(const Tensor<T, D>& x, std::int64_t kernel, std::int64_t stride, std::int64_t padding) {
  if (x.dim() != 4) throw ShapeError("max_pool2d: expected (N, C, H, W), got " + x.shape().str());
  if (kernel <= 0 || stride <= 0 || padding < 0 || 2 * padding > kernel)
    throw ValueError("max_pool2d: kernel " + std::to_string(kernel) + ", stride " + std::to_string(stride) + ", padding " +
                     std::to_string(padding) + " invalid (padding at most half the kernel)");
  const Window2d window{{kernel, kernel}, {stride, stride}, {padding, padding}, {1, 1}};
  const std::int64_t height = x.shape()[2], width = x.shape()[3], planes = x.shape()[0] * x.shape()[1];
  const std::int64_t out_h = window.output_size(0, height), out_w = window.output_size(1, width);
  if (out_h <= 0 || out_w <= 0) throw ShapeError("max_pool2d: input " + x.shape().str() + " smaller than the window");
  const Tensor<T, D> input = contiguous(x.detach());
  Tensor<T, D> y = empty<T, D>({x.shape()[0], x.shape()[1], out_h, out_w});
  // For each output cell, the index of the winning input cell within its plane
  // (only when the backward will need it).
  const bool backward = autograd::needs_grad(x);
  const Tensor<std::int32_t, D> argmax = backward ? Tensor<std::int32_t, D>::empty(y.shape()) : Tensor<std::int32_t, D>();
  backend::Kernels<D>::for_each(planes, detail::plane_grain(height * width),
                                fn::MaxPoolPlane<T>{input.data(), y.data(), backward ? argmax.data() : nullptr, height, width,
                                                    out_h, out_w, kernel, stride, padding});
  if (backward)
    autograd::record(y, [x, argmax, planes, plane_in = height * width, plane_out = out_h * out_w](const Tensor<T, D>& g) {
      const Tensor<T, D> gy = contiguous(g);
      Tensor<T, D> gx = zeros<T, D>(x.shape());
      backend::Kernels<D>::for_each(planes, detail::plane_grain(plane_in), fn::MaxPoolPlaneBackward<T>{gy.data(), argmax.data(), gx.data(), plane_in, plane_out});
      autograd::accumulate_grad(x, gx);
    });
  return y;
}

// Average over adaptive bins: output cell i of n covers input [floor(i H / n), ceil((i + 1) H / n)).
// x (N, C, H, W) -> (N, C, out_h, out_w); (1, 1) is the global average pool.
template <class T, class D>
Tensor<T, D> adaptive_avg_pool2d(const Tensor<T, D>& x, std::int64_t out_h, std::int64_t out_w) {
  if (x.dim() != 4 || out_h <= 0 || out_w <= 0)
    throw ShapeError("adaptive_avg_pool2d: input " + x.shape().str() + " to " + std::to_string(out_h) + "x" + std::to_string(out_w));
  const std::int64_t height = x.shape()[2], width = x.shape()[3], planes = x.shape()[0] * x.shape()[1];
  const Tensor<T, D> input = contiguous(x.detach());
  Tensor<T, D> y = zeros<T, D>({x.shape()[0], x.shape()[1], out_h, out_w});
  backend::Kernels<D>::for_each(planes, detail::plane_grain(height * width),
                                fn::AdaptiveAvgPoolPlane<T>{input.data(), y.data(), height, width, out_h, out_w, false});
  if (autograd::needs_grad(x))
    autograd::record(y, [x, planes, height, width, out_h, out_w](const Tensor<T, D>& g) {
      const Tensor<T, D> gy = contiguous(g);
      Tensor<T, D> gx = zeros<T, D>(x.shape());
      backend::Kernels<D>::for_each(planes, detail::plane_grain(height * width),
                                    fn::AdaptiveAvgPoolPlane<T>{gy.data(), gx.data(), height, width, out_h, out_w, true});
      autograd::accumulate_grad(x, gx);
    });
  return y;
}

template <class T, class D = cpu>
class MaxPool2d : public Layer<T, D> {
 public:
  MaxPool2d(std::int64_t kernel, std::int64_t stride, std::int64_t padding = 0) : kernel_(kernel), stride_(stride), padding_(padding) {}
  Tensor<T, D> forward(const Tensor<T, D>& x) override { return max_pool2d(x, kernel_, stride_, padding_); }

 private:
  std::int64_t kernel_, stride_, padding_;
};

template <class T, class D = cpu>
class AdaptiveAvgPool2d : public Layer<T, D> {
 public:
  explicit AdaptiveAvgPool2d(std::int64_t out_h, std::int64_t out_w = -1) : out_h_(out_h), out_w_(out_w < 0 ? out_h : out_w) {}
  Tensor<T, D> forward(const Tensor<T, D>& x) override { return adaptive_avg_pool2d(x, out_h_, out_w_); }

 private:
  std::int64_t out_h_, out_w_;
};

}  // namespace metro::nn
