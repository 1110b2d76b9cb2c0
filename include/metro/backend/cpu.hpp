#pragma once
// The CPU backend: strided elementwise loops (OpenMP across rows or chunks,
// vectorizable inner loops), deterministic blocked reductions, row softmax and
// GEMM through Eigen on the tensors' own buffers. The ops in metro/ops/ call
// these through Kernels<cpu>; a CUDA backend provides Kernels<cuda>.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "metro/backend/cpu_sgemm.hpp"
#include "metro/backend/matrix_view.hpp"
#include "metro/core/device.hpp"
#include "metro/core/eigen.hpp"
#include "metro/core/shape.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

// clang reports an `omp simd` loop it leaves scalar (a functor with a libm call
// or a branch) as the -Wpass-failed warning; the loop is still correct.
#if defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wpass-failed"
#endif

namespace metro::backend {

template <class Device>
struct Kernels;

// Whether Kernels<Device>::gemm_packed_b exists for T (the CPU's own fp32 GEMM).
template <class Device, class T>
inline constexpr bool has_gemm_packed_b = false;
#if defined(METRO_OWN_SGEMM)
template <>
inline constexpr bool has_gemm_packed_b<cpu, float> = true;
#endif

// Work below this many elements runs on the calling thread.
inline constexpr std::int64_t kParallelGrain = 32768;

// A loop nest over one output and N inputs, all of the same shape, with
// adjacent dimensions merged wherever every operand allows it.
template <std::size_t Operands>
struct LoopPlan {
  int rank = 0;
  std::array<std::int64_t, Shape::kMaxRank> sizes{};
  std::array<std::array<std::int64_t, Shape::kMaxRank>, Operands> strides{};
  std::int64_t numel() const {
    std::int64_t n = 1;
    for (int d = 0; d < rank; ++d) n *= sizes[static_cast<std::size_t>(d)];
    return n;
  }
};

template <std::size_t Operands>
LoopPlan<Operands> make_loop_plan(const Shape& shape, const std::array<const Strides*, Operands>& strides) {
  LoopPlan<Operands> plan;
  for (int d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;  // size-1 dims never move the index
    const auto sd = static_cast<std::size_t>(d);
    bool mergeable = plan.rank > 0;
    for (std::size_t k = 0; k < Operands && mergeable; ++k) {
      const auto last = static_cast<std::size_t>(plan.rank - 1);
      mergeable = plan.strides[k][last] == (*strides[k])[sd] * shape[d];
    }
    if (mergeable) {
      const auto last = static_cast<std::size_t>(plan.rank - 1);
      plan.sizes[last] *= shape[d];
      for (std::size_t k = 0; k < Operands; ++k) plan.strides[k][last] = (*strides[k])[sd];
    } else {
      const auto r = static_cast<std::size_t>(plan.rank++);
      plan.sizes[r] = shape[d];
      for (std::size_t k = 0; k < Operands; ++k) plan.strides[k][r] = (*strides[k])[sd];
    }
  }
  if (plan.rank == 0) plan.rank = 1, plan.sizes[0] = 1;  // a scalar: one element
  return plan;
}

// Runs body(begin, end) over [0, count) in pieces of at least `grain`, in parallel when worth it.
template <class Body>
void parallel_for(std::int64_t count, std::int64_t grain, Body&& body) {
  const std::int64_t pieces = std::max<std::int64_t>(1, count / std::max<std::int64_t>(grain, 1));
#if defined(_OPENMP)
  if (pieces > 1 && !omp_in_parallel()) {
#pragma omp parallel for schedule(static)
    for (std::int64_t p = 0; p < pieces; ++p) body(p * count / pieces, (p + 1) * count / pieces);
    return;
  }
#endif
  (void)pieces;
  body(0, count);
}

template <>
struct Kernels<cpu> {
  // out[i] = f(in_0[i], ..., in_{N-1}[i]) for every index of `shape`; every
  // operand is a strided view of that shape (broadcast inputs have stride 0).
  template <class T, class Out, std::size_t N, class F>
  static void map(const Shape& shape, Out* out, const Strides& out_strides, const std::array<const T*, N>& in,
                  const std::array<const Strides*, N>& in_strides, F f) {
    if (shape.numel() == 0) return;
    std::array<const Strides*, N + 1> all{&out_strides};
    for (std::size_t k = 0; k < N; ++k) all[k + 1] = in_strides[k];
    const LoopPlan<N + 1> plan = make_loop_plan<N + 1>(shape, all);
    const int inner_dim = plan.rank - 1;
    const std::int64_t inner = plan.sizes[static_cast<std::size_t>(inner_dim)];
    const std::int64_t chunk = std::min<std::int64_t>(inner, 16384);
    const std::int64_t chunks_per_row = (inner + chunk - 1) / chunk;
    const std::int64_t tiles = plan.numel() / inner * chunks_per_row;
    parallel_for(tiles, std::max<std::int64_t>(1, kParallelGrain / chunk), [&](std::int64_t first, std::int64_t last) {
      for (std::int64_t tile = first; tile < last; ++tile) {
        std::array<std::int64_t, N + 1> offset{};
        std::int64_t row = tile / chunks_per_row;
        for (int d = inner_dim - 1; d >= 0; --d) {
          const auto sd = static_cast<std::size_t>(d);
          const std::int64_t i = row % plan.sizes[sd];
          row /= plan.sizes[sd];
          for (std::size_t k = 0; k <= N; ++k) offset[k] += i * plan.strides[k][sd];
        }
        const std::int64_t begin = tile % chunks_per_row * chunk, end = std::min(inner, begin + chunk);
        run_inner<T>(plan, inner_dim, offset, begin, end, out, in, f, std::make_index_sequence<N>{});
      }
    });
  }

  // Sums a contiguous (outer, reduced, inner) block over its middle axis into
  // (outer, inner). The order of additions depends only on the sizes, never on
  // the thread count, so results are reproducible.
  template <class T>
  static void sum_middle(const T* in, T* out, std::int64_t outer, std::int64_t reduced, std::int64_t inner) {
    if (inner == 1) return sum_rows(in, out, outer, reduced);
    const std::int64_t chunk = 1024;
    const std::int64_t chunks = (inner + chunk - 1) / chunk;
    parallel_for(outer * chunks, std::max<std::int64_t>(1, kParallelGrain / std::max<std::int64_t>(1, reduced * std::min(inner, chunk))),
                 [&](std::int64_t first, std::int64_t last) {
                   for (std::int64_t t = first; t < last; ++t) {
                     const std::int64_t o = t / chunks, begin = t % chunks * chunk, end = std::min(inner, begin + chunk);
                     T* dst = out + o * inner;
                     const T* src = in + o * reduced * inner;
                     for (std::int64_t i = begin; i < end; ++i) dst[i] = T(0);
                     for (std::int64_t r = 0; r < reduced; ++r) {
                       const T* row = src + r * inner;
#pragma omp simd
                       for (std::int64_t i = begin; i < end; ++i) dst[i] += row[i];
                     }
                   }
                 });
  }

  // Maximum (or minimum, when `largest` is false) over the middle axis with the index of the first extremum.
  template <class T>
  static void extremum_middle(const T* in, T* values, std::int64_t* indices, std::int64_t outer, std::int64_t reduced,
                              std::int64_t inner, bool largest) {
    parallel_for(outer * inner, std::max<std::int64_t>(1, kParallelGrain / std::max<std::int64_t>(reduced, 1)),
                 [&](std::int64_t first, std::int64_t last) {
                   for (std::int64_t t = first; t < last; ++t) {
                     const std::int64_t o = t / inner, i = t % inner;
                     const T* src = in + o * reduced * inner + i;
                     T best = src[0];
                     std::int64_t best_index = 0;
                     for (std::int64_t r = 1; r < reduced; ++r) {
                       const T v = src[r * inner];
                       if (largest ? v > best : v < best) best = v, best_index = r;
                     }
                     values[t] = best;
                     if (indices) indices[t] = best_index;
                   }
                 });
  }

  // Softmax of each contiguous row of length n (scaled by `scale` first), numerically stable.
  // Eigen's array expressions give one vectorized pass per step (its exp is
  // vectorized for float and double).
  template <class T>
  static void softmax_rows(const T* in, T* out, std::int64_t rows, std::int64_t n, T scale, bool log) {
    parallel_for(rows, std::max<std::int64_t>(1, kParallelGrain / std::max<std::int64_t>(n, 1)),
                 [&](std::int64_t first, std::int64_t last) {
                   for (std::int64_t r = first; r < last; ++r) {
                     const ConstRow<T> x(in + r * n, n);
                     Row<T> y(out + r * n, n);
                     const T max = n > 0 ? (x * scale).maxCoeff() : T(0);
                     y = (x * scale - max).exp();
                     if (log)
                       y = x * scale - (std::log(y.sum()) + max);
                     else
                       y *= T(1) / y.sum();
                   }
                 });
  }

  // Backward of softmax rows: gx = scale * y * (gy - sum(gy * y)); of log-softmax rows: gx = scale * (gy - softmax * sum(gy)).
  template <class T>
  static void softmax_rows_backward(const T* y, const T* gy, T* gx, std::int64_t rows, std::int64_t n, T scale, bool log) {
    parallel_for(rows, std::max<std::int64_t>(1, kParallelGrain / std::max<std::int64_t>(n, 1)),
                 [&](std::int64_t first, std::int64_t last) {
                   for (std::int64_t r = first; r < last; ++r) {
                     const ConstRow<T> yr(y + r * n, n), g(gy + r * n, n);
                     Row<T> out(gx + r * n, n);
                     if (log)
                       out = scale * (g - yr.exp() * g.sum());
                     else
                       out = scale * yr * (g - (g * yr).sum());
                   }
                 });
  }

  // GELU, erf form: y = x Phi(x) = x (1 + erf(x / sqrt 2)) / 2, over n contiguous values.
  // For float, Eigen's vectorized erf (a rational approximation, about 1 ulp, as
  // PyTorch's own vectorized erf); for double, std::erf.
  template <class T>
  static void gelu(const T* x, T* y, std::int64_t n) {
    for_chunks(n, [&](std::int64_t begin, std::int64_t end) {
      const ConstRow<T> v(x + begin, end - begin);
      Row<T>(y + begin, end - begin) = T(0.5) * v * (T(1) + (v * T(kInvSqrt2)).erf());
    });
  }
  // gx = gy (Phi(x) + x phi(x)), phi the standard normal density.
  template <class T>
  static void gelu_backward(const T* x, const T* gy, T* gx, std::int64_t n) {
    for_chunks(n, [&](std::int64_t begin, std::int64_t end) {
      const ConstRow<T> v(x + begin, end - begin), g(gy + begin, end - begin);
      const auto cdf = T(0.5) * (T(1) + (v * T(kInvSqrt2)).erf());
      const auto pdf = (T(-0.5) * v.square()).exp() * T(kInvSqrt2Pi);
      Row<T>(gx + begin, end - begin) = g * (cdf + v * pdf);
    });
  }

  // C (m x n, row-major, leading dimension ldc) = op(A) * op(B) (+ C when accumulate).
  // A matrix view (backend/matrix_view.hpp) is described by its two strides; Eigen
  // maps it without a copy when one of them is 1 (row-major or column-major);
  // callers copy otherwise.
  template <class T>
  using MatrixView = backend::MatrixView<T>;

  template <class T>
  static void gemm(const MatrixView<T>& a, const MatrixView<T>& b, T* c, std::int64_t ldc, bool accumulate) {
    split_gemm_blocks(a, b, static_cast<const T*>(nullptr), c, ldc, accumulate);
  }

  // C (m x n) = A B + 1 bias^T: `bias` (n) added to every row of the product, as
  // Linear's y = x W^T + b. The fp32 kernel starts its tiles of C from the bias
  // instead of the bias being written into C before the product and read back.
  template <class T>
  static void gemm_bias(const MatrixView<T>& a, const MatrixView<T>& b, const T* bias, T* c, std::int64_t ldc) {
    split_gemm_blocks(a, b, bias, c, ldc, false);
  }

#if defined(METRO_OWN_SGEMM)
  // The same for fp32 with B (k x n) given by a packer instead of a matrix:
  // pack(p0, depth, j0, cols, panel_width, out) writes B[p0 : p0 + depth, j0 : j0 + cols]
  // as consecutive (depth x panel_width) row-major panels, zeros past the last
  // column, with panel_width = kPanelWidth. The threads pack B once, in parallel,
  // into the order the GEMM reads it (sgemm::PackedB), then multiply; B is
  // neither stored as a matrix nor packed twice. Convolutions pack their image
  // patches this way (nn/conv.hpp). bf16 products as gemm's (core/precision.hpp).
  static constexpr std::int64_t kPanelWidth = sgemm::kNr;
  template <class Pack>
  static void gemm_packed_b(const MatrixView<float>& a, std::int64_t n, const Pack& pack, float* c, std::int64_t ldc,
                            bool accumulate) {
    const std::int64_t k = a.cols, padded = sgemm::PackedB::padded(n), slices = (k + sgemm::kKc - 1) / sgemm::kKc;
    const bool bf16 = float32_matmul_uses_bf16();
    thread_local sgemm::PackBuffer buffer;  // kept for the next product, as a column matrix would be
    float* packed = buffer.get(k * padded);
    // One (slice, panel) pair per index: kKc x kNr floats each.
    const std::int64_t panels = padded / kPanelWidth;
    parallel_for(slices * panels, std::max<std::int64_t>(1, kParallelGrain / (sgemm::kKc * kPanelWidth)),
                 [&](std::int64_t first, std::int64_t last) {
                   for (std::int64_t unit = first; unit < last; ++unit) {
                     const std::int64_t p0 = unit / panels * sgemm::kKc, j0 = unit % panels * kPanelWidth;
                     const std::int64_t depth = std::min(sgemm::kKc, k - p0);
                     float* panel = packed + p0 * padded + j0 * depth;
                     pack(p0, depth, j0, std::min(kPanelWidth, n - j0), kPanelWidth, panel);
                     sgemm::finish_panel(bf16, panel, depth, kPanelWidth);
                   }
                 });
    const sgemm::PackedB b{packed, padded};
    split_gemm(a.rows, n, k, [&](std::int64_t r0, std::int64_t r1, std::int64_t c0, std::int64_t c1) {
      auto b_block = [&](std::int64_t p0, std::int64_t depth, std::int64_t j0, std::int64_t, float*) { return b.block(p0, depth, c0 + j0); };
      sgemm::gemm_with({a.data + r0 * a.row_stride, r1 - r0, k, a.row_stride, a.col_stride}, c1 - c0, b_block, c + r0 * ldc + c0,
                       ldc, accumulate, nullptr, bf16);
    });
  }
#endif

  // Runs block(r0, r1, c0, c1) for the output block C[r0 : r1, c0 : c1] of an
  // (m x n, inner size k) product on each thread: large products are split into
  // one block of rows (or columns) per thread, each a single-threaded GEMM. One
  // fork/join per product instead of Eigen's own spin-waiting synchronisation
  // between the threads, which collapses when the cores are shared with other
  // processes.
  template <class Block>
  static void split_gemm(std::int64_t m, std::int64_t n, std::int64_t k, const Block& block) {
    int threads = 1;
#if defined(_OPENMP)
    if (!omp_in_parallel() && m * n * k >= kParallelGemmWork) threads = omp_get_max_threads();
#endif
    if (threads <= 1) return block(0, m, 0, n);
    const bool split_rows = m >= n;
    // Whole tiles of the micro-kernel per thread, as evenly as they go (445 rows in
    // 6-row tiles: 222 + 223 rows, where 16-row blocks gave 208 + 237).
    const std::int64_t extent = split_rows ? m : n, unit = split_rows ? kGemmTileRows : kGemmTileCols;
    const std::int64_t tiles = (extent + unit - 1) / unit;
    parallel_for(threads, 1, [&](std::int64_t first, std::int64_t last) {
      for (std::int64_t t = first; t < last; ++t) {
        const std::int64_t begin = std::min(extent, tiles * t / threads * unit);
        const std::int64_t end = std::min(extent, tiles * (t + 1) / threads * unit);
        if (begin >= end) continue;
        if (split_rows)
          block(begin, end, 0, n);
        else
          block(0, m, begin, end);
      }
    });
  }

  // Runs gemm for `batch` independent products; small products run one per
  // thread, large ones one after another with Eigen's own threads.
  template <class T, class Product>
  static void batched(std::int64_t batch, std::int64_t flops_each, Product&& product) {
    const bool parallel_batches = batch > 1 && flops_each < (std::int64_t{1} << 26);
    if (parallel_batches) {
      parallel_for(batch, 1, [&](std::int64_t first, std::int64_t last) {
        for (std::int64_t i = first; i < last; ++i) product(i);
      });
    } else {
      for (std::int64_t i = 0; i < batch; ++i) product(i);
    }
  }

  // ---- index loops for the layers (nn/) ----

  // f(i) for every i in [0, count), in OpenMP pieces of at least `grain`
  // indices. f is a METRO_HD functor (a layer's per-row, per-channel or
  // per-plane body, next to its op in nn/), so Kernels<cuda>::for_each runs the
  // same body, one GPU thread per index.
  template <class F>
  static void for_each(std::int64_t count, std::int64_t grain, F f) {
    parallel_for(count, grain, [&](std::int64_t first, std::int64_t last) {
      for (std::int64_t i = first; i < last; ++i) f(i);
    });
  }
  // The same with the loop within a piece vectorized (`omp simd`): for
  // elementwise bodies such as the optimizers' updates.
  template <class F>
  static void for_each_simd(std::int64_t count, std::int64_t grain, F f) {
    parallel_for(count, grain, [&](std::int64_t first, std::int64_t last) {
#pragma omp simd
      for (std::int64_t i = first; i < last; ++i) f(i);
    });
  }

  // Sum of x^2 over n contiguous values, in double: fixed blocks summed in
  // parallel, then in order, so the result does not depend on the thread count.
  // A NaN or infinity among the values makes it non-finite.
  template <class T>
  static double sum_of_squares(const T* x, std::int64_t n) {
    std::vector<double> partial(static_cast<std::size_t>((n + kSquaresBlock - 1) / kSquaresBlock));
    parallel_for(static_cast<std::int64_t>(partial.size()), 8, [&](std::int64_t first, std::int64_t last) {
      for (std::int64_t b = first; b < last; ++b) {
        const std::int64_t begin = b * kSquaresBlock, count = std::min(kSquaresBlock, n - begin);
        partial[static_cast<std::size_t>(b)] = ConstRow<T>(x + begin, count).template cast<double>().square().sum();
      }
    });
    double total = 0;
    for (double p : partial) total += p;
    return total;
  }
  static constexpr std::int64_t kSquaresBlock = 16384;

  // Along `dim` of contiguous tensors viewed as (outer, size, inner):
  // gather:      out[o, j, i] = src[o, index[o, j, i], i]           (index has out's shape)
  // scatter_add: dst[o, index[o, j, i], i] += src[o, j, i]          (index has src's shape)
  // Indices are validated by the caller. scatter_add runs serially (duplicate indices).
  template <class T>
  static void gather(const T* src, const std::int64_t* index, T* out, std::int64_t outer, std::int64_t src_size,
                     std::int64_t index_size, std::int64_t inner) {
    parallel_for(outer * index_size * inner, kParallelGrain, [&](std::int64_t first, std::int64_t last) {
      for (std::int64_t t = first; t < last; ++t) {
        const std::int64_t o = t / (index_size * inner), i = t % inner;
        out[t] = src[(o * src_size + index[t]) * inner + i];
      }
    });
  }
  template <class T>
  static void scatter_add(T* dst, const std::int64_t* index, const T* src, std::int64_t outer, std::int64_t dst_size,
                          std::int64_t index_size, std::int64_t inner) {
    for (std::int64_t t = 0; t < outer * index_size * inner; ++t) {
      const std::int64_t o = t / (index_size * inner), i = t % inner;
      dst[(o * dst_size + index[t]) * inner + i] += src[t];
    }
  }

 private:
  template <class T>
  using Row = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
  template <class T>
  using ConstRow = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;
  static constexpr double kInvSqrt2 = 0.70710678118654752440, kInvSqrt2Pi = 0.39894228040143267794;

  // body(begin, end) over [0, n) in cache-sized chunks, in parallel when worth it.
  template <class Body>
  static void for_chunks(std::int64_t n, Body&& body) {
    constexpr std::int64_t chunk = 4096;
    parallel_for((n + chunk - 1) / chunk, std::max<std::int64_t>(1, kParallelGrain / chunk), [&](std::int64_t first, std::int64_t last) {
      for (std::int64_t c = first; c < last; ++c) body(c * chunk, std::min(n, (c + 1) * chunk));
    });
  }

  // Multiply-adds from which a product is split across the threads: Eigen
  // itself would fork from 2 x 50000 (its minimum task size) on, so no product
  // reaches Eigen's own threading.
  static constexpr std::int64_t kParallelGemmWork = 100000;
#if defined(METRO_OWN_SGEMM)
  static constexpr std::int64_t kGemmTileRows = sgemm::kMr, kGemmTileCols = sgemm::kNr;
#else
  static constexpr std::int64_t kGemmTileRows = 16, kGemmTileCols = 16;
#endif

  // C = A B (+ 1 bias^T when bias is given) (+ C when accumulate), one block per thread.
  template <class T>
  static void split_gemm_blocks(const MatrixView<T>& a, const MatrixView<T>& b, const T* bias, T* c, std::int64_t ldc, bool accumulate) {
    split_gemm(a.rows, b.cols, a.cols, [&](std::int64_t r0, std::int64_t r1, std::int64_t c0, std::int64_t c1) {
      gemm_block({a.data + r0 * a.row_stride, r1 - r0, a.cols, a.row_stride, a.col_stride},
                 {b.data + c0 * b.col_stride, b.rows, c1 - c0, b.row_stride, b.col_stride}, bias ? bias + c0 : nullptr,
                 c + r0 * ldc + c0, ldc, accumulate);
    });
  }

  // One GEMM on the calling thread: fp32 through backend/cpu_sgemm.hpp where the
  // target has AVX-512 or AVX2 + FMA (with bf16 products when core/precision.hpp
  // says so), otherwise Eigen (which does not fork inside an OpenMP region) after
  // the bias is copied into C.
  template <class T>
  static void gemm_block(const MatrixView<T>& a, const MatrixView<T>& b, const T* bias, T* c, std::int64_t ldc, bool accumulate) {
#if defined(METRO_OWN_SGEMM)
    // `else`, not an early return: Eigen's GEMM is then never instantiated for float
    // (about 2 s of compile time in every translation unit that runs a model).
    if constexpr (std::is_same_v<T, float>)
      sgemm::gemm(a, b, c, ldc, accumulate, bias, float32_matmul_uses_bf16());
    else
#endif
    {
      for (std::int64_t i = 0; i < a.rows && bias; ++i)
        for (std::int64_t j = 0; j < b.cols; ++j) c[i * ldc + j] = (accumulate ? c[i * ldc + j] : T(0)) + bias[j];
      eigen_gemm(a, b, c, ldc, accumulate || bias != nullptr);
    }
  }

  template <class T>
  static void eigen_gemm(const MatrixView<T>& a, const MatrixView<T>& b, T* c, std::int64_t ldc, bool accumulate) {
    using RowMajor = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    using ColMajor = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
    Eigen::Map<RowMajor, Eigen::Unaligned, Eigen::OuterStride<>> out(c, a.rows, b.cols, Eigen::OuterStride<>(ldc));
    auto with_a = [&](const auto& am) {
      auto with_b = [&](const auto& bm) {
        if (accumulate)
          out.noalias() += am * bm;
        else
          out.noalias() = am * bm;
      };
      if (b.col_stride == 1)
        with_b(Eigen::Map<const RowMajor, Eigen::Unaligned, Eigen::OuterStride<>>(b.data, b.rows, b.cols, Eigen::OuterStride<>(b.row_stride)));
      else
        with_b(Eigen::Map<const ColMajor, Eigen::Unaligned, Eigen::OuterStride<>>(b.data, b.rows, b.cols, Eigen::OuterStride<>(b.col_stride)));
    };
    if (a.col_stride == 1)
      with_a(Eigen::Map<const RowMajor, Eigen::Unaligned, Eigen::OuterStride<>>(a.data, a.rows, a.cols, Eigen::OuterStride<>(a.row_stride)));
    else
      with_a(Eigen::Map<const ColMajor, Eigen::Unaligned, Eigen::OuterStride<>>(a.data, a.rows, a.cols, Eigen::OuterStride<>(a.col_stride)));
  }


  template <class T>
  static void sum_rows(const T* in, T* out, std::int64_t rows, std::int64_t n) {
    // Fixed-size blocks summed separately, then combined in order: the same
    // rounding whatever the number of threads.
    constexpr std::int64_t block = 4096;
    const std::int64_t blocks = (n + block - 1) / block;
    if (rows >= blocks) {
      parallel_for(rows, std::max<std::int64_t>(1, kParallelGrain / std::max<std::int64_t>(n, 1)),
                   [&](std::int64_t first, std::int64_t last) {
                     for (std::int64_t r = first; r < last; ++r) out[r] = sum_blocks(in + r * n, n, block);
                   });
      return;
    }
    for (std::int64_t r = 0; r < rows; ++r) {
      const T* row = in + r * n;
      std::vector<T> partial(static_cast<std::size_t>(blocks));
      parallel_for(blocks, std::max<std::int64_t>(1, kParallelGrain / block), [&](std::int64_t first, std::int64_t last) {
        for (std::int64_t b = first; b < last; ++b)
          partial[static_cast<std::size_t>(b)] = sum_span(row + b * block, std::min(block, n - b * block));
      });
      T total = 0;
      for (T p : partial) total += p;
      out[r] = total;
    }
  }

  template <class T>
  static T sum_blocks(const T* x, std::int64_t n, std::int64_t block) {
    T total = 0;
    for (std::int64_t b = 0; b < n; b += block) total += sum_span(x + b, std::min(block, n - b));
    return total;
  }

  template <class T>
  static T sum_span(const T* x, std::int64_t n) {
    T total = 0;
#pragma omp simd reduction(+ : total)
    for (std::int64_t i = 0; i < n; ++i) total += x[i];
    return total;
  }

  template <class T, class Out, std::size_t N, class F, std::size_t... K>
  static void run_inner(const LoopPlan<N + 1>& plan, int inner_dim, const std::array<std::int64_t, N + 1>& offset,
                        std::int64_t begin, std::int64_t end, Out* out, const std::array<const T*, N>& in, F& f,
                        std::index_sequence<K...>) {
    const auto sd = static_cast<std::size_t>(inner_dim);
    Out* o = out + offset[0];
    const std::array<const T*, N> p{(in[K] + offset[K + 1])...};
    bool unit = plan.strides[0][sd] == 1;
    for (std::size_t k = 1; k <= N; ++k) unit = unit && plan.strides[k][sd] == 1;
    if (unit) {
#pragma omp simd
      for (std::int64_t i = begin; i < end; ++i) o[i] = f(p[K][i]...);
    } else {
      const std::int64_t so = plan.strides[0][sd];
      [[maybe_unused]] const std::array<std::int64_t, N> s{plan.strides[K + 1][sd]...};
      for (std::int64_t i = begin; i < end; ++i) o[i * so] = f(p[K][i * s[K]]...);
    }
  }
};

}  // namespace metro::backend

#if defined(__clang__)
#pragma clang diagnostic pop
#endif
