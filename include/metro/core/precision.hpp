#pragma once
// How the CPU's fp32 matrix products may trade precision for speed, as PyTorch's
// torch.set_float32_matmul_precision does. The default multiplies and sums in
// fp32. MatmulPrecision::bf16 rounds both operands of every fp32 GEMM of the CPU
// backend (Linear, matmul, attention, convolutions; forward and backward) to
// bfloat16 (8-bit mantissa, relative error up to 2^-9) and sums the exact
// products in fp32; on CPUs with AVX512-BF16 (Zen 4 and 5, Sapphire Rapids) that
// is twice the arithmetic rate of fp32 FMAs. It takes effect only where this
// build's GEMM has the bf16 kernel (bf16_matmul_available: the compiler targets
// AVX512-BF16, e.g. -march=native on such a CPU); elsewhere, and on the CUDA
// backend, products stay fp32. Tensors stay fp32 throughout: only the products'
// inputs are rounded.
#include <atomic>
#include <string>
#include <string_view>

#include "metro/core/error.hpp"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512BF16__)
#define METRO_SGEMM_BF16 1
#endif

namespace metro {

enum class MatmulPrecision {
  fp32,  // fp32 products and sums (the default)
  bf16,  // operands rounded to bfloat16, products summed in fp32
};

#if defined(METRO_SGEMM_BF16)
inline constexpr bool bf16_matmul_available = true;
#else
inline constexpr bool bf16_matmul_available = false;
#endif

namespace detail {
inline std::atomic<MatmulPrecision> float32_matmul_precision{MatmulPrecision::fp32};
}  // namespace detail

// For every thread, from the next product on.
inline void set_float32_matmul_precision(MatmulPrecision precision) {
  detail::float32_matmul_precision.store(precision, std::memory_order_relaxed);
}
inline MatmulPrecision float32_matmul_precision() {
  return detail::float32_matmul_precision.load(std::memory_order_relaxed);
}
// Whether the fp32 products now run in bf16: requested and available in this build.
inline bool float32_matmul_uses_bf16() {
  return bf16_matmul_available && float32_matmul_precision() == MatmulPrecision::bf16;
}

// The example programs' --matmul-precision flag: its help, and its values.
inline constexpr std::string_view kMatmulPrecisionFlagHelp =
    "fp32, or bf16: every product's operands rounded to bfloat16 (faster where the CPU has AVX512-BF16)";

// "fp32" or "bf16", as command-line flags spell them; anything else is a ValueError.
inline MatmulPrecision parse_matmul_precision(std::string_view name) {
  if (name == "fp32") return MatmulPrecision::fp32;
  if (name == "bf16") return MatmulPrecision::bf16;
  throw ValueError("matmul precision: expected fp32 or bf16, got \"" + std::string(name) + "\"");
}

// Sets the precision in its scope, restoring the previous one after.
class MatmulPrecisionGuard {
 public:
  explicit MatmulPrecisionGuard(MatmulPrecision precision) : previous_(float32_matmul_precision()) {
    set_float32_matmul_precision(precision);
  }
  ~MatmulPrecisionGuard() { set_float32_matmul_precision(previous_); }
  MatmulPrecisionGuard(const MatmulPrecisionGuard&) = delete;
  MatmulPrecisionGuard& operator=(const MatmulPrecisionGuard&) = delete;

 private:
  MatmulPrecision previous_;
};

}  // namespace metro
