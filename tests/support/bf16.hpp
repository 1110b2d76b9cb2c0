#pragma once
// What MatmulPrecision::bf16 multiplies: a float rounded to the nearest bfloat16
// (ties to even), for the references of the bf16 GEMM tests.
#include <bit>
#include <cstdint>

namespace metro::testing {

inline float round_to_bf16(float x) {
  std::uint32_t bits = std::bit_cast<std::uint32_t>(x);
  bits += 0x7FFFu + ((bits >> 16) & 1u);
  return std::bit_cast<float>(bits & 0xFFFF0000u);
}

}  // namespace metro::testing
