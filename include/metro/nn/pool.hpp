#pragma once
// MaxPool2d and AdaptiveAvgPool2d, each one autograd op over NCHW planes.
#include <limits>
#include <vector>

#include "metro/nn/conv.hpp"

namespace metro::nn {

namespace detail {
// Runs body(plane) for each of the N * C planes, in parallel.
template <class Body>
void for_each_plane(std::int64_t planes, std::int64_t plane_size, Body&& body) {
  backend::parallel_for(planes, std::max<std::int64_t>(1, backend::kParallelGrain / std::max<std::int64_t>(plane_size, 1)),
                        [&](std::int64_t first, std::int64_t last) {
                          for (std::int64_t p = first; p < last; ++p) body(p);
                        });
}
}  // namespace detail

// Max over k x k windows; padding never wins (-inf). The gradient goes to each
// window's arg-max (the first one on ties); overlapping windows add up.
// x (N, C, H, W) -> (N, C, Ho, Wo).
template <class T, class D>
Tensor<T, D> max_pool2d(const Tensor<T, D>& x, std::int64_t kernel, std::int64_t stride, std::int64_t padding) {
  if (x.dim() != 4) throw ShapeError("max_pool2d: expected (N, C, H, W), got " + x.shape().str());
  if (kernel <= 0 || stride <= 0 || padding < 0 || 2 * padding > kernel)
    throw ValueError("max_pool2d: kernel " + std::to_string(kernel) + ", stride " + std::to_string(stride) + ", padding " +
                     std::to_string(padding) + " invalid (padding at most half the kernel)");
  const Window2d window{{kernel, kernel}, {stride, stride}, {padding, padding}, {1, 1}};
  const std::int64_t height = x.shape()[2], width = x.shape()[3];
  const std::int64_t out_h = window.output_size(0, height), out_w = window.output_size(1, width);
  if (out_h <= 0 || out_w <= 0) throw ShapeError("max_pool2d: input " + x.shape().str() + " smaller than the window");
  const Tensor<T, D> input = contiguous(x.detach());
  Tensor<T, D> y = empty<T, D>({x.shape()[0], x.shape()[1], out_h, out_w});
  // For each output cell, the index of the winning input cell within its plane.
  auto argmax = std::make_shared<std::vector<std::int32_t>>(static_cast<std::size_t>(y.numel()));
  const T* xp = input.data();
  T* yp = y.data();
  std::int32_t* ap = argmax->data();
  detail::for_each_plane(x.shape()[0] * x.shape()[1], height * width, [&](std::int64_t p) {
    const T* plane = xp + p * height * width;
    for (std::int64_t oh = 0; oh < out_h; ++oh)
      for (std::int64_t ow = 0; ow < out_w; ++ow) {
        T best = -std::numeric_limits<T>::infinity();
        std::int64_t best_index = -1;
        for (std::int64_t ih = std::max<std::int64_t>(0, oh * stride - padding); ih < std::min(height, oh * stride - padding + kernel); ++ih)
          for (std::int64_t iw = std::max<std::int64_t>(0, ow * stride - padding); iw < std::min(width, ow * stride - padding + kernel); ++iw)
            if (plane[ih * width + iw] > best || best_index < 0) best = plane[ih * width + iw], best_index = ih * width + iw;
        const std::int64_t o = (p * out_h + oh) * out_w + ow;
        yp[o] = best, ap[o] = static_cast<std::int32_t>(best_index);
      }
  });
  if (autograd::needs_grad(x))
    autograd::record(y, [x, argmax, plane_in = height * width, plane_out = out_h * out_w](const Tensor<T, D>& g) {
      const Tensor<T, D> gy = contiguous(g);
      Tensor<T, D> gx = zeros<T, D>(x.shape());
      const T* gp = gy.data();
      T* gxp = gx.data();
      const std::int32_t* ap = argmax->data();
      detail::for_each_plane(x.shape()[0] * x.shape()[1], plane_in, [&](std::int64_t p) {
        for (std::int64_t o = p * plane_out; o < (p + 1) * plane_out; ++o) gxp[p * plane_in + ap[o]] += gp[o];
      });
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
  const std::int64_t height = x.shape()[2], width = x.shape()[3];
  const auto bin = [](std::int64_t i, std::int64_t n, std::int64_t size) {
    return std::array<std::int64_t, 2>{i * size / n, ((i + 1) * size + n - 1) / n};
  };
  // Runs visit(output index, input index, 1 / bin area) for every (output, input) pair of a plane.
  const auto for_each_pair = [=](auto&& visit) {
    for (std::int64_t oh = 0; oh < out_h; ++oh)
      for (std::int64_t ow = 0; ow < out_w; ++ow) {
        const auto [h0, h1] = bin(oh, out_h, height);
        const auto [w0, w1] = bin(ow, out_w, width);
        const T inv_area = T(1) / static_cast<T>((h1 - h0) * (w1 - w0));
        for (std::int64_t ih = h0; ih < h1; ++ih)
          for (std::int64_t iw = w0; iw < w1; ++iw) visit(oh * out_w + ow, ih * width + iw, inv_area);
      }
  };
  const Tensor<T, D> input = contiguous(x.detach());
  Tensor<T, D> y = zeros<T, D>({x.shape()[0], x.shape()[1], out_h, out_w});
  const T* xp = input.data();
  T* yp = y.data();
  detail::for_each_plane(x.shape()[0] * x.shape()[1], height * width, [&](std::int64_t p) {
    for_each_pair([&](std::int64_t o, std::int64_t i, T w) { yp[p * out_h * out_w + o] += w * xp[p * height * width + i]; });
  });
  if (autograd::needs_grad(x))
    autograd::record(y, [x, for_each_pair, plane_in = height * width, plane_out = out_h * out_w](const Tensor<T, D>& g) {
      const Tensor<T, D> gy = contiguous(g);
      Tensor<T, D> gx = zeros<T, D>(x.shape());
      const T* gp = gy.data();
      T* gxp = gx.data();
      detail::for_each_plane(x.shape()[0] * x.shape()[1], plane_in, [&](std::int64_t p) {
        for_each_pair([&](std::int64_t o, std::int64_t i, T w) { gxp[p * plane_in + i] += w * gp[p * plane_out + o]; });
      });
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
