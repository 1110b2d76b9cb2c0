#pragma once
// fp32 GEMM for CPUs with AVX-512: C (m x n, row-major, leading dimension ldc)
// = A * B (+ C), on the calling thread. The GotoBLAS / BLIS scheme:
//
//   for each kNc-wide block of columns of B and C
//     for each kKc-deep slice of the inner dimension
//       pack B's (kc x nc) block into kNr-column panels        (stays in L2)
//       for each kMc-tall block of rows of A and C
//         pack A's (mc x kc) block into kMr-row panels         (stays in L2)
//         for each panel of B (kc x 32, stays in L1)
//           for each panel of A: one 14 x 32 tile of C, 28 zmm accumulators
//
// Packing makes every operand layout (row-major, transposed views, any
// strides) the same to the micro-kernel, which then streams both panels
// sequentially and keeps its tile of C in registers for the whole slice: per
// step of the inner dimension 2 vector loads of B and 14 broadcasts of A feed
// 28 FMAs. Eigen's kernel keeps a 48 x 4 tile (12 accumulators) and reached
// about half of this machine's FMA peak at METRO's shapes (docs/benchmarks.md).
//
// Only compiled where the compiler targets AVX-512 (-march=native on such a
// CPU); Kernels<cpu>::gemm uses Eigen for other types and targets.
#if defined(__AVX512F__)
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>

#include "metro/backend/matrix_view.hpp"
#include "metro/core/eigen.hpp"

namespace metro::backend::avx512 {

inline constexpr std::int64_t kMr = 14;       // rows of a C tile
inline constexpr std::int64_t kNr = 32;       // columns of a C tile: two zmm registers
inline constexpr std::int64_t kKc = 256;      // inner-dimension slice: a B panel is 32 KiB
inline constexpr std::int64_t kMc = kMr * 12;  // rows of A packed at once: 168 x 256 floats
inline constexpr std::int64_t kNc = 2048;     // columns of B packed at once: 256 x 2048 floats

// Lanes [0, count) of a 16-lane mask (count clamped to [0, 16]).
inline __mmask16 lanes(std::int64_t count) {
  if (count >= 16) return 0xFFFF;
  return count <= 0 ? 0 : static_cast<__mmask16>((1u << count) - 1u);
}

// out[p * out_stride + v] = vectors[v][p] for p < depth and v < 16 lanes kept
// (min(16, out_stride)), where vectors[v] = first + v * stride for v < count and
// zeros for count <= v < 16: 16 x 16 blocks transposed in registers, so both the
// reads and the writes are contiguous.
inline void transpose_16(const float* first, std::int64_t stride, std::int64_t count, std::int64_t depth, float* out,
                         std::int64_t out_stride) {
  const __mmask16 kept = lanes(out_stride);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wignored-attributes"  // __m512's vector attribute on a template argument
  Eigen::internal::PacketBlock<__m512, 16> block;
#pragma GCC diagnostic pop
  for (std::int64_t p = 0; p < depth; p += 16) {
    const __mmask16 valid = lanes(depth - p);
    for (int v = 0; v < 16; ++v)
      block.packet[v] = v < count ? _mm512_maskz_loadu_ps(valid, first + v * stride + p) : _mm512_setzero_ps();
    Eigen::internal::ptranspose(block);
    for (std::int64_t q = 0; q < 16 && p + q < depth; ++q) _mm512_mask_storeu_ps(out + (p + q) * out_stride, kept, block.packet[q]);
  }
}

// A[i0 : i0 + rows, p0 : p0 + depth] into panels of kMr rows, one after another;
// a panel holds, for each p, kMr consecutive values (zeros past the last row).
inline void pack_a(const MatrixView<float>& a, std::int64_t i0, std::int64_t rows, std::int64_t p0, std::int64_t depth,
                   float* out) {
  for (std::int64_t ip = 0; ip < rows; ip += kMr) {
    const std::int64_t panel_rows = std::min(kMr, rows - ip);
    const float* base = a.data + (i0 + ip) * a.row_stride + p0 * a.col_stride;
    if (a.col_stride == 1) {  // row-major A: transpose 16 x 16 blocks, keep 14 of the 16 lanes
      transpose_16(base, a.row_stride, panel_rows, depth, out, kMr);
      out += depth * kMr;
      continue;
    }
    for (std::int64_t p = 0; p < depth; ++p, out += kMr) {
      const float* column = base + p * a.col_stride;
      std::int64_t r = 0;
      for (; r < panel_rows; ++r) out[r] = column[r * a.row_stride];
      for (; r < kMr; ++r) out[r] = 0.0f;
    }
  }
}

// B[p0 : p0 + depth, j0 : j0 + cols] into panels of kNr columns, one after
// another; a panel holds, for each p, kNr consecutive values (zeros past the last
// column). Row-major B is copied a row of 32 at a time; a transposed B (the
// weight of a Linear layer) is read along its contiguous rows instead.
inline void pack_b(const MatrixView<float>& b, std::int64_t p0, std::int64_t depth, std::int64_t j0, std::int64_t cols,
                   float* out) {
  for (std::int64_t jp = 0; jp < cols; jp += kNr, out += depth * kNr) {
    const std::int64_t panel_cols = std::min(kNr, cols - jp);
    const float* base = b.data + p0 * b.row_stride + (j0 + jp) * b.col_stride;
    if (b.col_stride == 1) {
      const __mmask16 low = lanes(panel_cols), high = lanes(panel_cols - 16);
      for (std::int64_t p = 0; p < depth; ++p) {
        const float* row = base + p * b.row_stride;
        _mm512_store_ps(out + p * kNr, _mm512_maskz_loadu_ps(low, row));
        _mm512_store_ps(out + p * kNr + 16, _mm512_maskz_loadu_ps(high, row + 16));
      }
    } else if (b.row_stride == 1) {  // transposed row-major B (a Linear weight): columns are contiguous
      transpose_16(base, b.col_stride, std::min<std::int64_t>(16, panel_cols), depth, out, kNr);
      const float* second = panel_cols > 16 ? base + 16 * b.col_stride : base;  // zeros when there is no second half
      transpose_16(second, b.col_stride, panel_cols - 16, depth, out + 16, kNr);
    } else {
      if (panel_cols < kNr) std::memset(out, 0, sizeof(float) * depth * kNr);
      for (std::int64_t j = 0; j < panel_cols; ++j) {
        const float* column = base + j * b.col_stride;
        for (std::int64_t p = 0; p < depth; ++p) out[p * kNr + j] = column[p * b.row_stride];
      }
    }
  }
}

// C[0 : rows, 0 : cols] (+)= a_panel (depth x kMr) * b_panel (depth x kNr), with
// rows <= kMr and cols <= kNr; adds to C when `add`, overwrites it otherwise.
inline void micro_kernel(std::int64_t depth, const float* a_panel, const float* b_panel, float* c, std::int64_t ldc,
                         std::int64_t rows, std::int64_t cols, bool add) {
  __m512 acc[kMr][2];
#pragma GCC unroll 14
  for (int r = 0; r < kMr; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (std::int64_t p = 0; p < depth; ++p, a_panel += kMr, b_panel += kNr) {
    const __m512 b_low = _mm512_load_ps(b_panel), b_high = _mm512_load_ps(b_panel + 16);
#pragma GCC unroll 14
    for (int r = 0; r < kMr; ++r) {
      const __m512 a_value = _mm512_set1_ps(a_panel[r]);
      acc[r][0] = _mm512_fmadd_ps(a_value, b_low, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(a_value, b_high, acc[r][1]);
    }
  }
  const __mmask16 low = lanes(cols), high = lanes(cols - 16);
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

inline void gemm(const MatrixView<float>& a, const MatrixView<float>& b, float* c, std::int64_t ldc, bool accumulate) {
  const std::int64_t m = a.rows, n = b.cols, k = a.cols;
  if (m == 0 || n == 0) return;
  if (k == 0) {
    if (!accumulate)
      for (std::int64_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, 0.0f);
    return;
  }
  thread_local PackBuffer a_buffer, b_buffer;
  float* a_packed = a_buffer.get(kMc * kKc);
  float* b_packed = b_buffer.get(kKc * ((std::min(n, kNc) + kNr - 1) / kNr * kNr));
  for (std::int64_t jc = 0; jc < n; jc += kNc) {
    const std::int64_t nc = std::min(kNc, n - jc);
    for (std::int64_t pc = 0; pc < k; pc += kKc) {
      const std::int64_t kc = std::min(kKc, k - pc);
      const bool add = accumulate || pc > 0;
      pack_b(b, pc, kc, jc, nc, b_packed);
      for (std::int64_t ic = 0; ic < m; ic += kMc) {
        const std::int64_t mc = std::min(kMc, m - ic);
        pack_a(a, ic, mc, pc, kc, a_packed);
        for (std::int64_t jr = 0; jr < nc; jr += kNr)
          for (std::int64_t ir = 0; ir < mc; ir += kMr)
            micro_kernel(kc, a_packed + ir * kc, b_packed + jr * kc, c + (ic + ir) * ldc + jc + jr, ldc,
                         std::min(kMr, mc - ir), std::min(kNr, nc - jr), add);
      }
    }
  }
}

}  // namespace metro::backend::avx512
#endif
