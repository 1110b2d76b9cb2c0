#pragma once
// 2-D convolution as one autograd op: im2col + GEMM forward (on the CPU in fp32
// the GEMM packs the image patches itself, fn::Im2colPanels), GEMM + col2im
// backward. Conv1d reuses it with a height of 1.
#include <algorithm>
#include <array>
#include <memory>
#include <type_traits>

#include "metro/nn/init.hpp"
#include "metro/nn/module.hpp"

namespace metro::nn {

// Per-axis (height, width) geometry of a convolution or pooling window.
struct Window2d {
  std::array<std::int64_t, 2> kernel{1, 1}, stride{1, 1}, padding{0, 0}, dilation{1, 1};
  // floor((in + 2 pad - dilation (k - 1) - 1) / stride) + 1
  std::int64_t output_size(int axis, std::int64_t in) const {
    const auto a = static_cast<std::size_t>(axis);
    return (in + 2 * padding[a] - dilation[a] * (kernel[a] - 1) - 1) / stride[a] + 1;
  }
};

namespace detail {

// The output columns [first, last) whose input column ow * stride + offset lies in [0, width).
struct ValidRange {
  std::int64_t first, last;
};
METRO_HD inline ValidRange valid_range(std::int64_t offset, std::int64_t stride, std::int64_t width, std::int64_t out_w) {
  const std::int64_t first0 = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  const std::int64_t first = first0 < out_w ? first0 : out_w;
  const std::int64_t reach = (width - 1 - offset) / stride + 1;
  const std::int64_t last = width - 1 - offset < 0 ? 0 : (reach < out_w ? reach : out_w);
  return {first, last > first ? last : first};
}

// The geometry of one im2col / col2im call: `samples` images of `channels`
// planes (height x width), `sample_stride` apart, and the window.
struct ColumnGeometry {
  std::int64_t sample_stride, samples, channels, height, width, out_h, out_w;
  std::int64_t kh, kw, sh, sw, ph, pw, dh, dw;
};
inline ColumnGeometry column_geometry(std::int64_t sample_stride, std::int64_t samples, std::int64_t channels, std::int64_t height,
                                      std::int64_t width, const Window2d& w, std::int64_t out_h, std::int64_t out_w) {
  return {sample_stride, samples,     channels,    height,      width,       out_h,       out_w,      w.kernel[0],
          w.kernel[1],   w.stride[0], w.stride[1], w.padding[0], w.padding[1], w.dilation[0], w.dilation[1]};
}

}  // namespace detail

namespace fn {
// im2col of one (col row, sample): col (Cg * kh * kw, samples * Ho * Wo), row
// (c, i, j), column (n, oh, ow) holds x[n, c, oh * sh - ph + i * dh, ow * sw - pw + j * dw],
// 0 outside the image. `planes` points at channel 0 of the group for sample 0.
template <class T>
struct Im2colRow {
  const T* planes;
  T* col;
  detail::ColumnGeometry g;
  METRO_HD void operator()(std::int64_t index) const {
    const std::int64_t row = index / g.samples, n = index % g.samples;
    const std::int64_t c = row / (g.kh * g.kw), i = row / g.kw % g.kh, j = row % g.kw;
    const T* plane = planes + n * g.sample_stride + c * g.height * g.width;
    T* dst = col + row * (g.samples * g.out_h * g.out_w) + n * g.out_h * g.out_w;
    const std::int64_t offset = j * g.dw - g.pw;
    const detail::ValidRange cols = detail::valid_range(offset, g.sw, g.width, g.out_w);
    for (std::int64_t oh = 0; oh < g.out_h; ++oh, dst += g.out_w) {
      const std::int64_t ih = oh * g.sh - g.ph + i * g.dh;
      if (ih < 0 || ih >= g.height) {
        for (std::int64_t ow = 0; ow < g.out_w; ++ow) dst[ow] = T(0);
        continue;
      }
      const T* src = plane + ih * g.width;
      for (std::int64_t ow = 0; ow < cols.first; ++ow) dst[ow] = T(0);
      if (g.sw == 1)  // the common case: a contiguous run of the input row (vectorizes)
        for (std::int64_t ow = cols.first; ow < cols.last; ++ow) dst[ow] = src[ow + offset];
      else
        for (std::int64_t ow = cols.first; ow < cols.last; ++ow) dst[ow] = src[ow * g.sw + offset];
      for (std::int64_t ow = cols.last; ow < g.out_w; ++ow) dst[ow] = T(0);
    }
  }
};

// The same im2col written straight into a GEMM's B panels (CPU, fp32:
// Kernels<cpu>::gemm_packed_b), so the column matrix is never stored: writes
// col[p0 : p0 + depth, j0 : j0 + cols] as consecutive (depth x width) row-major
// panels, zeros past the last column. The image comes zero-padded (g.ph = g.pw
// = 0), so nothing is bounds-checked: a panel's columns are runs along output
// rows, and for col row (c, i, j) each run copies one stretch of an input row,
// the run's start shifted by the tap c * H * W + i * dh * W + j * dw.
template <class T>
struct Im2colPanels {
  const T* planes;
  detail::ColumnGeometry g;

  struct Run {  // panel columns [lane, lane + length): output (n, oh, ow0...), reading from planes + start + tap
    std::int64_t lane, length, start;
  };
  static constexpr std::int64_t kMaxWidth = 64;

  void operator()(std::int64_t p0, std::int64_t depth, std::int64_t j0, std::int64_t cols, std::int64_t width, T* out) const {
    for (std::int64_t jp = 0; jp < cols; jp += width, out += depth * width) {
      Run runs[kMaxWidth];
      const std::int64_t lanes = std::min(width, cols - jp), count = split_into_runs(j0 + jp, lanes, runs);
      std::int64_t c = p0 / (g.kh * g.kw), i = p0 / g.kw % g.kh, j = p0 % g.kw;  // col row p = (c, i, j)
      for (std::int64_t p = 0; p < depth; ++p) {
        T* row = out + p * width;
        const T* tap = planes + (c * g.height + i * g.dh) * g.width + j * g.dw;
        for (std::int64_t r = 0; r < count; ++r) {
          const T* src = tap + runs[r].start;
          T* dst = row + runs[r].lane;
          if (g.sw == 1)
            for (std::int64_t k = 0; k < runs[r].length; ++k) dst[k] = src[k];
          else
            for (std::int64_t k = 0; k < runs[r].length; ++k) dst[k] = src[k * g.sw];
        }
        for (std::int64_t lane = lanes; lane < width; ++lane) row[lane] = T(0);
        if (++j < g.kw) continue;  // the next col row
        j = 0;
        if (++i == g.kh) i = 0, ++c;
      }
    }
  }

  // Columns [first, first + lanes) as runs within one output row each; returns the count.
  std::int64_t split_into_runs(std::int64_t first, std::int64_t lanes, Run* runs) const {
    const std::int64_t plane = g.out_h * g.out_w;
    std::int64_t count = 0;
    for (std::int64_t lane = 0; lane < lanes;) {
      const std::int64_t column = first + lane, n = column / plane, oh = column % plane / g.out_w, ow0 = column % g.out_w;
      const std::int64_t length = std::min(lanes - lane, g.out_w - ow0);
      runs[count++] = {lane, length, n * g.sample_stride + oh * g.sh * g.width + ow0 * g.sw};
      lane += length;
    }
    return count;
  }
};

// The adjoint of im2col for one channel (the CPU's unit: each channel owns its
// kh * kw rows): adds each col entry into the input position it was read from,
// kernel offsets in order.
template <class T>
struct Col2imChannel {
  const T* col;
  T* planes;
  detail::ColumnGeometry g;
  METRO_HD void operator()(std::int64_t c) const {
    const std::int64_t columns = g.samples * g.out_h * g.out_w;
    for (std::int64_t r = 0; r < g.kh * g.kw; ++r) {
      const std::int64_t i = r / g.kw, j = r % g.kw, row = c * g.kh * g.kw + r;
      const std::int64_t offset = j * g.dw - g.pw;
      const detail::ValidRange cols = detail::valid_range(offset, g.sw, g.width, g.out_w);
      for (std::int64_t n = 0; n < g.samples; ++n) {
        T* plane = planes + n * g.sample_stride + c * g.height * g.width;
        const T* src = col + row * columns + n * g.out_h * g.out_w;
        for (std::int64_t oh = 0; oh < g.out_h; ++oh, src += g.out_w) {
          const std::int64_t ih = oh * g.sh - g.ph + i * g.dh;
          if (ih < 0 || ih >= g.height) continue;
          T* dst = plane + ih * g.width;
          if (g.sw == 1)  // contiguous (vectorizes)
            for (std::int64_t ow = cols.first; ow < cols.last; ++ow) dst[ow + offset] += src[ow];
          else
            for (std::int64_t ow = cols.first; ow < cols.last; ++ow) dst[ow * g.sw + offset] += src[ow];
        }
      }
    }
  }
};

// The same adjoint for one input position (n, c, ih, iw) (the GPU's unit: no
// two threads write the same value): its col entries are added in the order of
// the kernel offsets (i, j), the order Col2imChannel adds them in.
template <class T>
struct Col2imPixel {
  const T* col;
  T* planes;
  detail::ColumnGeometry g;
  METRO_HD void operator()(std::int64_t index) const {
    const std::int64_t iw = index % g.width, ih = index / g.width % g.height;
    const std::int64_t c = index / (g.width * g.height) % g.channels, n = index / (g.width * g.height * g.channels);
    const std::int64_t columns = g.samples * g.out_h * g.out_w;
    T* dst = planes + n * g.sample_stride + (c * g.height + ih) * g.width + iw;
    T acc = *dst;
    for (std::int64_t i = 0; i < g.kh; ++i) {
      const std::int64_t h = ih + g.ph - i * g.dh;  // = oh * sh
      if (h < 0 || h % g.sh != 0 || h / g.sh >= g.out_h) continue;
      const std::int64_t oh = h / g.sh;
      for (std::int64_t j = 0; j < g.kw; ++j) {
        const std::int64_t w = iw + g.pw - j * g.dw;  // = ow * sw
        if (w < 0 || w % g.sw != 0 || w / g.sw >= g.out_w) continue;
        const std::int64_t row = (c * g.kh + i) * g.kw + j;
        acc += col[row * columns + (n * g.out_h + oh) * g.out_w + w / g.sw];
      }
    }
    *dst = acc;
  }
};

// Copies one (sample, row) plane between the (Og, samples * HoWo) GEMM layout and
// the (N, O, HoWo) tensor layout: scatter (GEMM -> tensor) or gather (tensor -> GEMM).
template <class T>
struct CopyRowPlane {
  const T* from;
  T* to;
  std::int64_t samples, rows, channels_total, plane;
  bool to_tensor;
  METRO_HD void operator()(std::int64_t t) const {
    const std::int64_t n = t / rows, r = t % rows;
    const std::int64_t gemm_offset = (r * samples + n) * plane, tensor_offset = (n * channels_total + r) * plane;
    const T* src = from + (to_tensor ? gemm_offset : tensor_offset);
    T* dst = to + (to_tensor ? tensor_offset : gemm_offset);
    for (std::int64_t k = 0; k < plane; ++k) dst[k] = src[k];
  }
};
}  // namespace fn

namespace detail {

// col (Cg * kh * kw, chunk * Ho * Wo) from the group's planes, one (row, sample) per index.
template <class T, class D>
void im2col(const T* planes, std::int64_t sample_stride, std::int64_t samples, std::int64_t channels, std::int64_t height,
            std::int64_t width, const Window2d& w, std::int64_t out_h, std::int64_t out_w, T* col) {
  const ColumnGeometry g = column_geometry(sample_stride, samples, channels, height, width, w, out_h, out_w);
  // A piece of `samples` indices is one row: the CPU splits the rows over its threads.
  backend::Kernels<D>::for_each(channels * g.kh * g.kw * samples, samples, fn::Im2colRow<T>{planes, col, g});
}

// The adjoint of im2col: on the CPU in parallel over channels, on a GPU one
// thread per input position; both add a position's entries in the same order.
template <class T, class D>
void col2im(const T* col, std::int64_t sample_stride, std::int64_t samples, std::int64_t channels, std::int64_t height,
            std::int64_t width, const Window2d& w, std::int64_t out_h, std::int64_t out_w, T* planes) {
  const ColumnGeometry g = column_geometry(sample_stride, samples, channels, height, width, w, out_h, out_w);
  if constexpr (std::is_same_v<D, cpu>)
    backend::Kernels<D>::for_each(channels, 1, fn::Col2imChannel<T>{col, planes, g});
  else
    backend::Kernels<D>::for_each(samples * channels * height * width, 1, fn::Col2imPixel<T>{col, planes, g});
}

// Copies between (Og, chunk * HoWo) GEMM layout and the (N, O, HoWo) tensor layout.
template <class T, class D>
void scatter_rows(const T* gemm_out, T* y, std::int64_t samples, std::int64_t rows, std::int64_t channels_total, std::int64_t plane) {
  backend::Kernels<D>::for_each(samples * rows, std::max<std::int64_t>(1, backend::kParallelGrain / std::max<std::int64_t>(plane, 1)),
                                fn::CopyRowPlane<T>{gemm_out, y, samples, rows, channels_total, plane, true});
}
template <class T, class D>
void gather_rows(const T* y, T* gemm_in, std::int64_t samples, std::int64_t rows, std::int64_t channels_total, std::int64_t plane) {
  backend::Kernels<D>::for_each(samples * rows, std::max<std::int64_t>(1, backend::kParallelGrain / std::max<std::int64_t>(plane, 1)),
                                fn::CopyRowPlane<T>{y, gemm_in, samples, rows, channels_total, plane, false});
}

// x (N, C, H, W) with `padding` zeros around each plane: (N, C, H + 2 ph, W + 2 pw).
template <class T, class D>
Tensor<T, D> zero_padded(const Tensor<T, D>& x, const std::array<std::int64_t, 2>& padding) {
  if (padding == std::array<std::int64_t, 2>{0, 0}) return x;
  const std::int64_t height = x.shape()[2], width = x.shape()[3];
  Tensor<T, D> padded = zeros<T, D>({x.shape()[0], x.shape()[1], height + 2 * padding[0], width + 2 * padding[1]});
  copy_(narrow(narrow(padded, 2, padding[0], height), 3, padding[1], width), x);
  return padded;
}

// Samples per im2col chunk: the column buffer stays below ~16 MB of floats.
inline std::int64_t chunk_samples(std::int64_t batch, std::int64_t rows, std::int64_t plane) {
  constexpr std::int64_t budget = std::int64_t{1} << 22;
  return std::clamp<std::int64_t>(budget / std::max<std::int64_t>(1, rows * plane), 1, batch);
}

template <class T, class D>
typename backend::Kernels<D>::template MatrixView<T> row_major(const T* data, std::int64_t rows, std::int64_t cols) {
  return {data, rows, cols, cols, 1};
}
template <class T, class D>
typename backend::Kernels<D>::template MatrixView<T> transposed(const T* data, std::int64_t rows, std::int64_t cols) {
  return {data, cols, rows, 1, cols};  // the transpose of a row-major (rows, cols) matrix
}

}  // namespace detail

// x (N, C, H, W), weight (O, C / groups, kh, kw), bias (O) or undefined
// -> (N, O, Ho, Wo). Zero padding. One autograd op.
template <class T, class D>
Tensor<T, D> conv2d(const Tensor<T, D>& x, const Tensor<T, D>& weight, const Tensor<T, D>& bias, Window2d window,
                    std::int64_t groups = 1) {
  if (x.dim() != 4 || weight.dim() != 4 || groups <= 0 || x.shape()[1] % groups != 0 || weight.shape()[0] % groups != 0 ||
      weight.shape()[1] != x.shape()[1] / groups)
    throw ShapeError("conv2d: input " + x.shape().str() + ", weight " + weight.shape().str() + " and groups " +
                     std::to_string(groups) + " do not match");
  if (bias.defined() && !(bias.shape() == Shape{weight.shape()[0]}))
    throw ShapeError("conv2d: bias " + bias.shape().str() + " for weight " + weight.shape().str());
  window.kernel = {weight.shape()[2], weight.shape()[3]};
  const std::int64_t batch = x.shape()[0], in_c = x.shape()[1], height = x.shape()[2], width = x.shape()[3];
  const std::int64_t out_c = weight.shape()[0], out_h = window.output_size(0, height), out_w = window.output_size(1, width);
  if (out_h <= 0 || out_w <= 0) throw ShapeError("conv2d: input " + x.shape().str() + " is smaller than the kernel");
  const std::int64_t group_in = in_c / groups, group_out = out_c / groups, plane = out_h * out_w;
  const std::int64_t rows = group_in * window.kernel[0] * window.kernel[1];  // GEMM inner size
  // A pointwise conv (1x1, stride 1, no padding) runs one sample at a time on the
  // input planes themselves (no im2col); a one-sample chunk multiplies straight into y.
  const bool pointwise = rows == group_in && window.stride == std::array<std::int64_t, 2>{1, 1} &&
                         window.padding == std::array<std::int64_t, 2>{0, 0};
  const std::int64_t chunk = pointwise ? 1 : detail::chunk_samples(batch, rows, plane);
  const Tensor<T, D> input = contiguous(x.detach()), w = contiguous(weight.detach());
  Tensor<T, D> y = empty<T, D>({batch, out_c, out_h, out_w});
  // The CPU's fp32 GEMM packs the image patches itself (fn::Im2colPanels), from
  // a zero-padded copy of the input: no column matrix.
  constexpr bool packs_patches = backend::has_gemm_packed_b<D, T>;
  const Tensor<T, D> padded = packs_patches && !pointwise ? detail::zero_padded(input, window.padding) : Tensor<T, D>();
  Tensor<T, D> col = empty<T, D>({pointwise || packs_patches ? 0 : rows * chunk * plane});
  Tensor<T, D> product = empty<T, D>({chunk > 1 ? group_out * chunk * plane : 0});
  for (std::int64_t n0 = 0; n0 < batch; n0 += chunk) {
    const std::int64_t samples = std::min(chunk, batch - n0);
    for (std::int64_t g = 0; g < groups; ++g) {
      // (Og, rows) @ (rows, samples * HoWo) -> (Og, samples * HoWo) -> y[n0.., g * Og..]
      const T* x_group = input.data() + (n0 * in_c + g * group_in) * height * width;
      const auto weights = detail::row_major<T, D>(w.data() + g * group_out * rows, group_out, rows);
      T* y_group = y.data() + (n0 * out_c + g * group_out) * plane;
      T* out = samples == 1 ? y_group : product.data();
      if (pointwise) {
        backend::Kernels<D>::gemm(weights, detail::row_major<T, D>(x_group, rows, samples * plane), out, samples * plane, false);
      } else if constexpr (packs_patches) {
        static_assert(backend::Kernels<D>::kPanelWidth <= fn::Im2colPanels<T>::kMaxWidth);
        const std::int64_t padded_h = padded.shape()[2], padded_w = padded.shape()[3];
        Window2d unpadded = window;
        unpadded.padding = {0, 0};
        const auto geometry = detail::column_geometry(in_c * padded_h * padded_w, samples, group_in, padded_h, padded_w, unpadded, out_h, out_w);
        const T* planes = padded.data() + (n0 * in_c + g * group_in) * padded_h * padded_w;
        backend::Kernels<D>::gemm_packed_b(weights, samples * plane, fn::Im2colPanels<T>{planes, geometry}, out, samples * plane, false);
      } else {
        detail::im2col<T, D>(x_group, in_c * height * width, samples, group_in, height, width, window, out_h, out_w, col.data());
        backend::Kernels<D>::gemm(weights, detail::row_major<T, D>(col.data(), rows, samples * plane), out, samples * plane, false);
      }
      if (samples > 1) detail::scatter_rows<T, D>(product.data(), y_group, samples, group_out, out_c, plane);
    }
  }
  if (bias.defined()) update_(y, reshape(bias.detach(), {out_c, 1, 1}), metro::fn::Accumulate<T>{});
  if (autograd::needs_grad(x, weight, bias))
    autograd::record(y, [x, weight, bias, input, w, window, groups, batch, in_c, height, width, out_c, plane, rows, chunk,
                         out_h, out_w, pointwise](const Tensor<T, D>& g) {
      // Per chunk and group, with col = im2col(x) and gy in (Og, samples * HoWo):
      //   gweight_g += gy @ col^T;   gcol = weight_g^T @ gy;   gx += col2im(gcol)
      // (pointwise: col is the input itself and gcol is gx's block).
      const Tensor<T, D> gy = contiguous(g);
      const std::int64_t group_in = in_c / groups, group_out = out_c / groups;
      // Only the gradients that are needed (a backbone's image input needs none).
      Tensor<T, D> gx = x.requires_grad() ? zeros<T, D>(x.shape()) : Tensor<T, D>();
      Tensor<T, D> gw = weight.requires_grad() ? zeros<T, D>(weight.shape()) : Tensor<T, D>();
      Tensor<T, D> col = empty<T, D>({pointwise ? 0 : rows * chunk * plane});
      Tensor<T, D> gy_rows = empty<T, D>({chunk > 1 ? group_out * chunk * plane : 0});
      for (std::int64_t n0 = 0; n0 < batch; n0 += chunk) {
        const std::int64_t samples = std::min(chunk, batch - n0);
        for (std::int64_t gi = 0; gi < groups; ++gi) {
          const std::int64_t x_offset = (n0 * in_c + gi * group_in) * height * width, sample_stride = in_c * height * width;
          const T* gy_group = gy.data() + (n0 * out_c + gi * group_out) * plane;
          if (samples > 1) detail::gather_rows<T, D>(gy_group, gy_rows.data(), samples, group_out, out_c, plane);
          const auto gy_view = detail::row_major<T, D>(samples > 1 ? gy_rows.data() : gy_group, group_out, samples * plane);
          if (weight.requires_grad()) {
            if (!pointwise)
              detail::im2col<T, D>(input.data() + x_offset, sample_stride, samples, group_in, height, width, window, out_h, out_w, col.data());
            backend::Kernels<D>::gemm(gy_view, detail::transposed<T, D>(pointwise ? input.data() + x_offset : col.data(), rows, samples * plane),
                                      gw.data() + gi * group_out * rows, rows, true);
          }
          if (x.requires_grad()) {
            const auto weight_t = detail::transposed<T, D>(w.data() + gi * group_out * rows, group_out, rows);
            if (pointwise) {
              backend::Kernels<D>::gemm(weight_t, gy_view, gx.data() + x_offset, plane, true);
            } else {
              backend::Kernels<D>::gemm(weight_t, gy_view, col.data(), samples * plane, false);
              detail::col2im<T, D>(col.data(), sample_stride, samples, group_in, height, width, window, out_h, out_w, gx.data() + x_offset);
            }
          }
        }
      }
      if (x.requires_grad()) autograd::accumulate_grad(x, gx);
      if (weight.requires_grad()) autograd::accumulate_grad(weight, gw);
      if (bias.requires_grad()) autograd::accumulate_grad(bias, sum(gy, {0, 2, 3}));
    });
  return y;
}

struct Conv2dConfig {
  std::int64_t in_channels = 0, out_channels = 0, kernel_size = 1;
  std::int64_t stride = 1, padding = 0, dilation = 1, groups = 1;
  bool bias = true;
  Init init = Init::torch_default;
};

// Square-kernel Conv2d, torch.nn.Conv2d's parameters "weight" (O, C / groups, k, k) and "bias" (O).
template <class T, class D = cpu>
class Conv2d : public Layer<T, D> {
 public:
  explicit Conv2d(const Conv2dConfig& config, Generator& gen = default_generator()) : config_(config) {
    const auto& c = config;
    if (c.in_channels <= 0 || c.out_channels <= 0 || c.kernel_size <= 0 || c.stride <= 0 || c.padding < 0 ||
        c.dilation <= 0 || c.groups <= 0 || c.in_channels % c.groups || c.out_channels % c.groups)
      throw ValueError("Conv2d: invalid configuration (" + std::to_string(c.in_channels) + " -> " +
                       std::to_string(c.out_channels) + ", kernel " + std::to_string(c.kernel_size) + ", groups " +
                       std::to_string(c.groups) + ")");
    const std::int64_t fan_in = c.in_channels / c.groups * c.kernel_size * c.kernel_size;
    const std::int64_t fan_out = c.out_channels / c.groups * c.kernel_size * c.kernel_size;
    auto init = init_weight_bias<T, D>(c.init, {c.out_channels, c.in_channels / c.groups, c.kernel_size, c.kernel_size},
                                       c.bias ? Shape{c.out_channels} : Shape{}, fan_in, fan_out, gen);
    weight_ = this->register_parameter("weight", init.weight);
    if (c.bias) bias_ = this->register_parameter("bias", init.bias);
  }
  // (N, C, H, W) -> (N, O, Ho, Wo)
  Tensor<T, D> forward(const Tensor<T, D>& x) override {
    const auto& c = config_;
    return conv2d(x, weight_, bias_, {{}, {c.stride, c.stride}, {c.padding, c.padding}, {c.dilation, c.dilation}}, c.groups);
  }
  const Conv2dConfig& config() const noexcept { return config_; }

 private:
  Conv2dConfig config_;
  Tensor<T, D> weight_, bias_;
};

// torch.nn.Conv1d: "weight" (O, C / groups, k), "bias" (O); (N, C, L) -> (N, O, Lo).
// METRO uses Conv1d(49, 445, 1) over (B, 49, 2048) to make 445 tokens from 49 grid cells.
template <class T, class D = cpu>
class Conv1d : public Layer<T, D> {
 public:
  explicit Conv1d(const Conv2dConfig& config, Generator& gen = default_generator()) : config_(config) {
    const auto& c = config;
    if (c.in_channels <= 0 || c.out_channels <= 0 || c.kernel_size <= 0 || c.groups <= 0 || c.in_channels % c.groups ||
        c.out_channels % c.groups)
      throw ValueError("Conv1d: invalid configuration");
    const std::int64_t fan_in = c.in_channels / c.groups * c.kernel_size, fan_out = c.out_channels / c.groups * c.kernel_size;
    auto init = init_weight_bias<T, D>(c.init, {c.out_channels, c.in_channels / c.groups, c.kernel_size},
                                       c.bias ? Shape{c.out_channels} : Shape{}, fan_in, fan_out, gen);
    weight_ = this->register_parameter("weight", init.weight);
    if (c.bias) bias_ = this->register_parameter("bias", init.bias);
  }
  Tensor<T, D> forward(const Tensor<T, D>& x) override {
    if (x.dim() != 3) throw ShapeError("Conv1d: expected (N, C, L), got " + x.shape().str());
    const auto& c = config_;
    // (N, C, L) -> (N, C, 1, L), a 1 x k kernel
    const Tensor<T, D> y = conv2d(unsqueeze(x, 2), unsqueeze(weight_, 2), bias_,
                                  {{}, {1, c.stride}, {0, c.padding}, {1, c.dilation}}, c.groups);
    return squeeze(y, 2);
  }

 private:
  Conv2dConfig config_;
  Tensor<T, D> weight_, bias_;
};

}  // namespace metro::nn
