#pragma once
// fp32 GEMM for x86 CPUs with AVX-512 or AVX2 + FMA: C (m x n, row-major,
// leading dimension ldc) = A * B (+ C), on the calling thread. The GotoBLAS /
// BLIS scheme:
//
//   for each kNc-wide block of columns of B and C
//     for each kKc-deep slice of the inner dimension
//       pack B's (kc x nc) block into kNr-column panels        (L2 / L3)
//       for each kMc-tall block of rows of A and C
//         pack A's (mc x kc) block into kMr-row panels         (stays in L2)
//         for each panel of B (kc x kNr, L1 / L2)
//           for each panel of A: one kMr x kNr tile of C in registers
//
// Packing makes every operand layout (row-major, transposed views, any
// strides) the same to the micro-kernel, which then streams both panels
// sequentially and keeps its tile of C in registers for the whole slice. Per
// step of the inner dimension: AVX-512, a 14 x 32 tile, 2 vector loads of B and
// 14 broadcasts of A feed 28 FMAs (28 zmm accumulators); AVX2, a 6 x 16 tile, 2
// loads and 6 broadcasts feed 12 FMAs (12 ymm accumulators). Eigen's kernels
// keep smaller tiles and reached about half of the FMA peak at METRO's shapes
// on both kinds of CPU (docs/benchmarks.md).
//
// With MatmulPrecision::bf16 (core/precision.hpp) on a CPU with AVX512-BF16 the
// panels hold pairs of consecutive inner-dimension values in bfloat16, one pair
// per 32-bit slot (packed straight from the transposes, or packed in fp32 and
// rewritten by to_bf16_pairs), and each vdpbf16ps adds both products of a pair:
// the same loops and tiles at twice the FMA's rate.
//
// Only compiled where the compiler targets one of the two (-march=native on
// such a CPU; METRO_OWN_SGEMM is then defined); Kernels<cpu>::gemm uses Eigen
// for other types and targets.
#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#define METRO_OWN_SGEMM 1
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>

#include "metro/backend/matrix_view.hpp"
#include "metro/core/eigen.hpp"
#include "metro/core/precision.hpp"

namespace metro::backend::sgemm {

#if defined(__AVX512F__)
inline constexpr std::int64_t kMr = 14;  // rows of a C tile
inline constexpr std::int64_t kNr = 32;  // columns of a C tile: two zmm registers
#else
inline constexpr std::int64_t kMr = 6;   // rows of a C tile
inline constexpr std::int64_t kNr = 16;  // columns of a C tile: two ymm registers
#endif
// A deeper slice than the usual 256 halves how often each tile of C is loaded
// and stored (from L3 at METRO's sizes: a layer's output does not stay in L2),
// for a B panel of 2 kNr KiB (64 KiB with AVX-512: more than L1, so it streams
// from L2): -2 to -4 % on the model workloads (docs/benchmarks.md, item 9).
inline constexpr std::int64_t kKc = 512;                  // inner-dimension slice
inline constexpr std::int64_t kMc = kMr * (168 / kMr);     // rows of A packed at once: 168 x 512 floats, 336 KiB
inline constexpr std::int64_t kNc = 2048;                 // columns of B packed at once: 512 x 2048 floats

// A[i0 : i0 + rows, p0 : p0 + depth] into panels of kMr rows, one after another;
// a panel holds, for each p, kMr consecutive values (zeros past the last row).
// Any layout, element by element (the vector paths below take the common ones).
inline void pack_a_any(const float* base, std::int64_t row_stride, std::int64_t col_stride, std::int64_t panel_rows,
                       std::int64_t depth, float* out) {
  for (std::int64_t p = 0; p < depth; ++p, out += kMr) {
    const float* column = base + p * col_stride;
    std::int64_t r = 0;
    for (; r < panel_rows; ++r) out[r] = column[r * row_stride];
    for (; r < kMr; ++r) out[r] = 0.0f;
  }
}

// B[p0 : p0 + depth, j0 : j0 + panel_cols] as one panel of kNr columns, element by element.
inline void pack_b_any(const float* base, std::int64_t row_stride, std::int64_t col_stride, std::int64_t panel_cols,
                       std::int64_t depth, float* out) {
  if (panel_cols < kNr) std::memset(out, 0, sizeof(float) * depth * kNr);
  for (std::int64_t j = 0; j < panel_cols; ++j) {
    const float* column = base + j * col_stride;
    for (std::int64_t p = 0; p < depth; ++p) out[p * kNr + j] = column[p * row_stride];
  }
}

// Asks for the rows of a C tile that the micro-kernel will add to once its loop
// is done: they come in (often from L3: a layer's output does not stay in L2)
// while the loop runs instead of stalling the stores at its end. -5 % on the
// transformer's training step and its batch-1 forward (docs/benchmarks.md).
inline void prefetch_tile(const float* c, std::int64_t ldc, std::int64_t rows) {
  for (std::int64_t r = 0; r < rows; ++r) {
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + kNr - 1), _MM_HINT_T0);
  }
}

#if defined(__AVX512F__)
// Lanes [0, count) of a 16-lane mask (count clamped to [0, 16]).
inline __mmask16 lanes(std::int64_t count) {
  if (count >= 16) return 0xFFFF;
  return count <= 0 ? 0 : static_cast<__mmask16>((1u << count) - 1u);
}

// The next 16 lanes of values[0 : n] (zeros past n): one value per lane, or with
// kBf16Pairs the pair (values[2q], values[2q + 1]) rounded to bf16 (nearest even)
// in lane q.
template <bool kBf16Pairs>
inline __m512 load_lanes(const float* values, std::int64_t n) {
#if defined(METRO_SGEMM_BF16)
  if constexpr (kBf16Pairs)
    return reinterpret_cast<__m512>(_mm512_cvtne2ps_pbh(load_lanes<false>(values + 16, n - 16), load_lanes<false>(values, n)));
#endif
  return _mm512_maskz_loadu_ps(lanes(n), values);
}

// out[p * out_stride + v] = vectors[v][p] for p < depth and v < 16 lanes kept
// (min(16, out_stride)), where vectors[v] = first + v * stride for v < count and
// zeros for count <= v < 16: 16 x 16 blocks transposed in registers, so both the
// reads and the writes are contiguous. With kBf16Pairs the same for the vectors'
// bf16 pairs: row q of out holds the pairs (vectors[v][2q], vectors[v][2q + 1]),
// as to_bf16_pairs would rewrite the fp32 result, without the fp32 pass.
template <bool kBf16Pairs = false>
inline void transpose_16(const float* first, std::int64_t stride, std::int64_t count, std::int64_t depth, float* out,
                         std::int64_t out_stride) {
  constexpr std::int64_t kPerLane = kBf16Pairs ? 2 : 1;  // values of a vector in one 32-bit lane
  const __mmask16 kept = lanes(out_stride);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wignored-attributes"  // __m512's vector attribute on a template argument
  Eigen::internal::PacketBlock<__m512, 16> block;
#pragma GCC diagnostic pop
  for (std::int64_t p = 0; p < depth; p += 16 * kPerLane) {
    for (int v = 0; v < 16; ++v)
      block.packet[v] = v < count ? load_lanes<kBf16Pairs>(first + v * stride + p, depth - p) : _mm512_setzero_ps();
    Eigen::internal::ptranspose(block);
    const std::int64_t rows = std::min<std::int64_t>(16, (depth - p + kPerLane - 1) / kPerLane);
    for (std::int64_t q = 0; q < rows; ++q) _mm512_mask_storeu_ps(out + (p / kPerLane + q) * out_stride, kept, block.packet[q]);
  }
}

// One panel of row-major A (a transpose of 16 x 16 blocks, 14 of the 16 lanes kept).
inline bool pack_a_fast(const float* base, std::int64_t row_stride, std::int64_t col_stride, std::int64_t panel_rows,
                        std::int64_t depth, float* out) {
  if (col_stride != 1) return false;
  transpose_16(base, row_stride, panel_rows, depth, out, kMr);
  return true;
}

// One panel of a transposed B (column j at base + j * col_stride, contiguous: the
// weight of a Linear layer), read along those columns: two 16-lane transposes.
template <bool kBf16Pairs = false>
inline void transpose_b_panel(const float* base, std::int64_t col_stride, std::int64_t panel_cols, std::int64_t depth, float* out) {
  transpose_16<kBf16Pairs>(base, col_stride, std::min<std::int64_t>(16, panel_cols), depth, out, kNr);
  const float* second = panel_cols > 16 ? base + 16 * col_stride : base;  // zeros when there is no second half
  transpose_16<kBf16Pairs>(second, col_stride, panel_cols - 16, depth, out + 16, kNr);
}

// One panel of B: row-major B is copied a row of 32 at a time; a transposed B
// (the weight of a Linear layer) is read along its contiguous rows instead.
inline bool pack_b_fast(const float* base, std::int64_t row_stride, std::int64_t col_stride, std::int64_t panel_cols,
                        std::int64_t depth, float* out) {
  if (col_stride == 1) {
    const __mmask16 low = lanes(panel_cols), high = lanes(panel_cols - 16);
    for (std::int64_t p = 0; p < depth; ++p) {
      const float* row = base + p * row_stride;
      _mm512_store_ps(out + p * kNr, _mm512_maskz_loadu_ps(low, row));
      _mm512_store_ps(out + p * kNr + 16, _mm512_maskz_loadu_ps(high, row + 16));
    }
    return true;
  }
  if (row_stride != 1) return false;
  transpose_b_panel(base, col_stride, panel_cols, depth, out);
  return true;
}

#if defined(METRO_SGEMM_BF16)
// Rewrites a packed panel (depth x width floats, width <= 32) in place as
// ceil(depth / 2) rows of width 32-bit slots: slot (q, v) holds the bfloat16
// pair (panel[2q][v], panel[2q + 1][v]) (round to nearest even; a zero pairs
// with an odd depth's last row), the operand layout of vdpbf16ps. Row q is
// written after rows 2q and 2q + 1 are read, so in place is safe.
inline void to_bf16_pairs(float* panel, std::int64_t depth, std::int64_t width) {
  alignas(64) static constexpr std::int16_t kInterleave[32] = {0, 16, 1, 17, 2,  18, 3,  19, 4,  20, 5,  21, 6,  22, 7,  23,
                                                               8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
  const __m512i interleave = _mm512_load_si512(kInterleave);
  for (std::int64_t q = 0; 2 * q < depth; ++q) {
    const float* even = panel + 2 * q * width;
    const bool has_odd = 2 * q + 1 < depth;
    for (std::int64_t v = 0; v < width; v += 16) {
      const __mmask16 kept = lanes(width - v);
      const __m512 first = _mm512_maskz_loadu_ps(kept, even + v);
      const __m512 second = has_odd ? _mm512_maskz_loadu_ps(kept, even + width + v) : _mm512_setzero_ps();
      // 16 bf16 of `first` then 16 of `second`, interleaved into 16 pairs.
      const __m512i halves = reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(second, first));
      _mm512_mask_storeu_epi32(panel + q * width + v, kept, _mm512_permutexvar_epi16(interleave, halves));
    }
  }
}
#endif

// C[0 : rows, 0 : cols] (+)= a_panel * b_panel, with rows <= kMr and cols <= kNr,
// over `steps` steps of the inner dimension: the panels are (steps x kMr) and
// (steps x kNr) floats, or with kBf16Pairs (steps x kMr) and (steps x kNr) bf16
// pairs (to_bf16_pairs). Adds to C when `add`, overwrites it otherwise, starting
// every row's sum from bias[0 : cols] when `bias` is given.
template <bool kBf16Pairs>
inline void micro_kernel(std::int64_t steps, const float* a_panel, const float* b_panel, float* c, std::int64_t ldc,
                         std::int64_t rows, std::int64_t cols, bool add, const float* bias) {
  __m512 acc[kMr][2];
  if (add) prefetch_tile(c, ldc, rows);
  const __mmask16 low = lanes(cols), high = lanes(cols - 16);
  const __m512 start_low = bias ? _mm512_maskz_loadu_ps(low, bias) : _mm512_setzero_ps();
  const __m512 start_high = bias ? _mm512_maskz_loadu_ps(high, bias + 16) : _mm512_setzero_ps();
#pragma GCC unroll 14
  for (int r = 0; r < kMr; ++r) acc[r][0] = start_low, acc[r][1] = start_high;
  for (std::int64_t p = 0; p < steps; ++p, a_panel += kMr, b_panel += kNr) {
    const __m512 b_low = _mm512_load_ps(b_panel), b_high = _mm512_load_ps(b_panel + 16);
#pragma GCC unroll 14
    for (int r = 0; r < kMr; ++r) {
      const __m512 a_value = _mm512_set1_ps(a_panel[r]);  // a value, or a pair's 32 bits
#if defined(METRO_SGEMM_BF16)
      if constexpr (kBf16Pairs) {
        acc[r][0] = _mm512_dpbf16_ps(acc[r][0], reinterpret_cast<__m512bh>(a_value), reinterpret_cast<__m512bh>(b_low));
        acc[r][1] = _mm512_dpbf16_ps(acc[r][1], reinterpret_cast<__m512bh>(a_value), reinterpret_cast<__m512bh>(b_high));
      } else
#endif
      {
        acc[r][0] = _mm512_fmadd_ps(a_value, b_low, acc[r][0]);
        acc[r][1] = _mm512_fmadd_ps(a_value, b_high, acc[r][1]);
      }
    }
  }
#pragma GCC unroll 14
  for (int r = 0; r < kMr; ++r) {
    if (r >= rows) break;
    float* row = c + r * ldc;
    if (add) {
      acc[r][0] = _mm512_add_ps(acc[r][0], _mm512_maskz_loadu_ps(low, row));
      acc[r][1] = _mm512_add_ps(acc[r][1], _mm512_maskz_loadu_ps(high, row + 16));
    }
    _mm512_mask_storeu_ps(row, low, acc[r][0]);
    _mm512_mask_storeu_ps(row + 16, high, acc[r][1]);
  }
}
#else
// out[(p + q) * out_stride + v] = vectors[v][p + q] for the first depth / 8 * 8
// values of p, where vectors[v] = first + v * stride for v < count (and a repeat
// of vectors[0] past it): 8 x 8 blocks transposed in registers, so both the reads
// and the writes are contiguous; `kept` selects the lanes v that are stored.
// Returns how many p were done.
inline std::int64_t transpose_8(const float* first, std::int64_t stride, int count, std::int64_t depth, float* out,
                                std::int64_t out_stride, __m256i kept) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wignored-attributes"  // __m256's vector attribute on a template argument
  Eigen::internal::PacketBlock<__m256, 8> block;
#pragma GCC diagnostic pop
  std::int64_t p = 0;
  for (; p + 8 <= depth; p += 8) {
    for (int v = 0; v < 8; ++v) block.packet[v] = _mm256_loadu_ps(first + (v < count ? v : 0) * stride + p);
    Eigen::internal::ptranspose(block);
    for (int q = 0; q < 8; ++q) _mm256_maskstore_ps(out + (p + q) * out_stride, kept, block.packet[q]);
  }
  return p;
}

// One panel of row-major A (kMr = 6 full rows): 8 x 8 transposes of which 6 lanes
// are stored.
inline bool pack_a_fast(const float* base, std::int64_t row_stride, std::int64_t col_stride, std::int64_t panel_rows,
                        std::int64_t depth, float* out) {
  if (col_stride != 1 || panel_rows != kMr) return false;
  const std::int64_t done = transpose_8(base, row_stride, kMr, depth, out, kMr, _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, 0, 0));
  pack_a_any(base + done, row_stride, col_stride, panel_rows, depth - done, out + done * kMr);
  return true;
}

// One full panel of B: row-major B copied 16 values at a time; a transposed B
// (the weight of a Linear layer, columns contiguous) by 8 x 8 transposes.
inline bool pack_b_fast(const float* base, std::int64_t row_stride, std::int64_t col_stride, std::int64_t panel_cols,
                        std::int64_t depth, float* out) {
  if (panel_cols != kNr) return false;
  if (col_stride == 1) {
    for (std::int64_t p = 0; p < depth; ++p) {
      const float* row = base + p * row_stride;
      _mm256_store_ps(out + p * kNr, _mm256_loadu_ps(row));
      _mm256_store_ps(out + p * kNr + 8, _mm256_loadu_ps(row + 8));
    }
    return true;
  }
  if (row_stride != 1) return false;
  const __m256i all = _mm256_set1_epi32(-1);
  const std::int64_t done = transpose_8(base, col_stride, 8, depth, out, kNr, all);
  transpose_8(base + 8 * col_stride, col_stride, 8, depth, out + 8, kNr, all);
  pack_b_any(base + done * row_stride, row_stride, col_stride, panel_cols, depth - done, out + done * kNr);
  return true;
}

// C[0 : rows, 0 : cols] (+)= a_panel (depth x kMr) * b_panel (depth x kNr), with
// rows <= kMr and cols <= kNr; adds to C when `add`, overwrites it otherwise,
// starting every row's sum from bias[0 : cols] when `bias` is given.
// A partial tile goes through a full tile on the stack. fp32 only: bf16 pairs need AVX512-BF16.
template <bool kBf16Pairs>
inline void micro_kernel(std::int64_t depth, const float* a_panel, const float* b_panel, float* c, std::int64_t ldc,
                         std::int64_t rows, std::int64_t cols, bool add, const float* bias) {
  static_assert(!kBf16Pairs);
  __m256 acc[kMr][2];
  if (add) prefetch_tile(c, ldc, rows);
  alignas(32) float start[kNr] = {};
  if (bias) std::copy(bias, bias + cols, start);
  const __m256 start_low = _mm256_load_ps(start), start_high = _mm256_load_ps(start + 8);
#pragma GCC unroll 6
  for (int r = 0; r < kMr; ++r) acc[r][0] = start_low, acc[r][1] = start_high;
  for (std::int64_t p = 0; p < depth; ++p, a_panel += kMr, b_panel += kNr) {
    const __m256 b_low = _mm256_load_ps(b_panel), b_high = _mm256_load_ps(b_panel + 8);
#pragma GCC unroll 6
    for (int r = 0; r < kMr; ++r) {
      const __m256 a_value = _mm256_broadcast_ss(a_panel + r);
      acc[r][0] = _mm256_fmadd_ps(a_value, b_low, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(a_value, b_high, acc[r][1]);
    }
  }
  if (rows == kMr && cols == kNr) {
#pragma GCC unroll 6
    for (int r = 0; r < kMr; ++r) {
      float* row = c + r * ldc;
      if (add) {
        acc[r][0] = _mm256_add_ps(acc[r][0], _mm256_loadu_ps(row));
        acc[r][1] = _mm256_add_ps(acc[r][1], _mm256_loadu_ps(row + 8));
      }
      _mm256_storeu_ps(row, acc[r][0]);
      _mm256_storeu_ps(row + 8, acc[r][1]);
    }
    return;
  }
  alignas(32) float tile[kMr][kNr];
#pragma GCC unroll 6  // every use of acc unrolled, so it stays in registers
  for (int r = 0; r < kMr; ++r) {
    _mm256_store_ps(tile[r], acc[r][0]);
    _mm256_store_ps(tile[r] + 8, acc[r][1]);
  }
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t j = 0; j < cols; ++j) c[r * ldc + j] = add ? c[r * ldc + j] + tile[r][j] : tile[r][j];
}
#endif

// Rewrites a packed panel of (depth x width) floats as bf16 pairs (bf16
// products), or leaves it as it is (fp32).
inline void finish_panel(bool bf16, float* panel, std::int64_t depth, std::int64_t width) {
#if defined(METRO_SGEMM_BF16)
  if (bf16) to_bf16_pairs(panel, depth, width);
#else
  (void)bf16, (void)panel, (void)depth, (void)width;
#endif
}

// A[i0 : i0 + rows, p0 : p0 + depth] into panels of kMr rows, one after another;
// with `bf16`, as bf16 pairs (a row-major A transposed straight into them).
inline void pack_a(const MatrixView<float>& a, std::int64_t i0, std::int64_t rows, std::int64_t p0, std::int64_t depth,
                   float* out, bool bf16) {
  for (std::int64_t ip = 0; ip < rows; ip += kMr, out += depth * kMr) {
    const std::int64_t panel_rows = std::min(kMr, rows - ip);
    const float* base = a.data + (i0 + ip) * a.row_stride + p0 * a.col_stride;
#if defined(METRO_SGEMM_BF16)
    if (bf16 && a.col_stride == 1) {
      transpose_16<true>(base, a.row_stride, panel_rows, depth, out, kMr);
      continue;
    }
#endif
    if (!pack_a_fast(base, a.row_stride, a.col_stride, panel_rows, depth, out))
      pack_a_any(base, a.row_stride, a.col_stride, panel_rows, depth, out);
    finish_panel(bf16, out, depth, kMr);
  }
}

// B[p0 : p0 + depth, j0 : j0 + cols] into panels of kNr columns, one after another;
// with `bf16`, as bf16 pairs (a transposed B transposed straight into them).
inline void pack_b(const MatrixView<float>& b, std::int64_t p0, std::int64_t depth, std::int64_t j0, std::int64_t cols,
                   float* out, bool bf16) {
  for (std::int64_t jp = 0; jp < cols; jp += kNr, out += depth * kNr) {
    const std::int64_t panel_cols = std::min(kNr, cols - jp);
    const float* base = b.data + p0 * b.row_stride + (j0 + jp) * b.col_stride;
#if defined(METRO_SGEMM_BF16)
    if (bf16 && b.row_stride == 1) {
      transpose_b_panel<true>(base, b.col_stride, panel_cols, depth, out);
      continue;
    }
#endif
    if (!pack_b_fast(base, b.row_stride, b.col_stride, panel_cols, depth, out))
      pack_b_any(base, b.row_stride, b.col_stride, panel_cols, depth, out);
    finish_panel(bf16, out, depth, kNr);
  }
}

// 64-byte aligned scratch for the packed panels, one per thread, grown on demand.
class PackBuffer {
 public:
  float* get(std::int64_t floats) {
    if (floats > capacity_) {
      storage_.reset(static_cast<float*>(::operator new[](sizeof(float) * floats, std::align_val_t{64})));
      capacity_ = floats;
    }
    return storage_.get();
  }

 private:
  struct AlignedDelete {
    void operator()(float* p) const { ::operator delete[](p, std::align_val_t{64}); }
  };
  std::unique_ptr<float[], AlignedDelete> storage_;
  std::int64_t capacity_ = 0;
};

// A whole B (k x n) packed once, in the order gemm_with consumes it: slices of
// kKc rows, each a run of panels of kNr columns (depth x kNr, zeros past column
// n). Any thread's block of whole panels is then a pointer into it.
struct PackedB {
  const float* data;
  std::int64_t padded_cols;  // n rounded up to whole panels

  static std::int64_t padded(std::int64_t n) { return (n + kNr - 1) / kNr * kNr; }
  // B[p0 : p0 + depth, j0 : ...] for p0 a multiple of kKc and j0 of kNr.
  const float* block(std::int64_t p0, std::int64_t depth, std::int64_t j0) const { return data + p0 * padded_cols + j0 * depth; }
};

// C (m x n) = A * B (+ 1 bias^T: bias[j] added to every row's column j, when
// `bias` is given) (+ C when `accumulate`), with B supplied a block at a time:
// b_block(p0, depth, j0, cols, scratch) returns B[p0 : p0 + depth, j0 : j0 + cols] laid out as
// pack_b lays it out (panels of kNr columns, zeros past the last column; with
// `bf16`, as bf16 pairs), packed into `scratch` (room for kKc rows of min(n, kNc)
// columns in whole panels) or already packed elsewhere (PackedB). `bf16` (only
// where METRO_SGEMM_BF16) multiplies bf16 pairs.
template <class BBlock>
void gemm_with(const MatrixView<float>& a, std::int64_t n, BBlock&& b_block, float* c, std::int64_t ldc, bool accumulate,
               const float* bias = nullptr, bool bf16 = false) {
  const std::int64_t m = a.rows, k = a.cols;
  if (m == 0 || n == 0) return;
  if (k == 0) {  // an empty product
    for (std::int64_t i = 0; i < m; ++i)
      for (std::int64_t j = 0; j < n; ++j) c[i * ldc + j] = (accumulate ? c[i * ldc + j] : 0.0f) + (bias ? bias[j] : 0.0f);
    return;
  }
  thread_local PackBuffer a_buffer, b_buffer;
  float* a_packed = a_buffer.get(kMc * kKc);
  float* b_scratch = b_buffer.get(kKc * PackedB::padded(std::min(n, kNc)));
  for (std::int64_t jc = 0; jc < n; jc += kNc) {
    const std::int64_t nc = std::min(kNc, n - jc);
    for (std::int64_t pc = 0; pc < k; pc += kKc) {
      const std::int64_t kc = std::min(kKc, k - pc);
      const bool add = accumulate || pc > 0;
      const float* slice_bias = pc == 0 ? bias : nullptr;  // the first slice adds the bias
      const float* b_panels = b_block(pc, kc, jc, nc, b_scratch);
      for (std::int64_t ic = 0; ic < m; ic += kMc) {
        const std::int64_t mc = std::min(kMc, m - ic);
        pack_a(a, ic, mc, pc, kc, a_packed, bf16);
        for (std::int64_t jr = 0; jr < nc; jr += kNr)
          for (std::int64_t ir = 0; ir < mc; ir += kMr) {
            const std::int64_t rows = std::min(kMr, mc - ir), cols = std::min(kNr, nc - jr);
            const float *a_panel = a_packed + ir * kc, *b_panel = b_panels + jr * kc;
            float* tile = c + (ic + ir) * ldc + jc + jr;
            const float* tile_bias = slice_bias ? slice_bias + jc + jr : nullptr;
#if defined(METRO_SGEMM_BF16)
            if (bf16)
              micro_kernel<true>((kc + 1) / 2, a_panel, b_panel, tile, ldc, rows, cols, add, tile_bias);
            else
#endif
              micro_kernel<false>(kc, a_panel, b_panel, tile, ldc, rows, cols, add, tile_bias);
          }
      }
    }
  }
}

inline void gemm(const MatrixView<float>& a, const MatrixView<float>& b, float* c, std::int64_t ldc, bool accumulate,
                 const float* bias = nullptr, bool bf16 = false) {
  gemm_with(a, b.cols, [&b, bf16](std::int64_t p0, std::int64_t depth, std::int64_t j0, std::int64_t cols, float* scratch) {
    pack_b(b, p0, depth, j0, cols, scratch, bf16);
    return static_cast<const float*>(scratch);
  }, c, ldc, accumulate, bias, bf16);
}

}  // namespace metro::backend::sgemm
#endif
