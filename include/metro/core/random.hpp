#pragma once
// Counter-based random numbers: the i-th number of a stream depends only on
// (seed, i), never on which thread asks for it. So a tensor filled in parallel,
// on any thread count or (later) on a GPU, gets the same values for the same seed.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>

#include "metro/core/device.hpp"

namespace metro {

// SplitMix64 finalizer (Steele, Lea, Flood 2014): a bijective 64-bit mixer.
METRO_HD constexpr std::uint64_t mix64(std::uint64_t z) noexcept {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// 64 random bits for position `index` of the stream `seed`.
METRO_HD constexpr std::uint64_t random_bits(std::uint64_t seed, std::uint64_t index) noexcept {
  return mix64(mix64(seed) + (index + 1) * 0x9E3779B97F4A7C15ull);
}

// Uniform in [0, 1) with the full mantissa of T.
template <class T>
constexpr T bits_to_unit(std::uint64_t bits) noexcept {
  if constexpr (sizeof(T) == sizeof(float)) {
    return static_cast<T>(bits >> 40) * static_cast<T>(1.0 / 16777216.0);
  } else {
    return static_cast<T>(bits >> 11) * static_cast<T>(1.0 / 9007199254740992.0);
  }
}

// uniform_at<double>(index) < p decided in integers, with the same answer: the top
// 53 of the position's random_bits below ceil(p * 2^53). A loop of these vectorizes
// and runs in device code (the dropout masks on a GPU, the same as on the CPU).
inline std::uint64_t unit_threshold(double p) noexcept {
  return static_cast<std::uint64_t>(std::ceil(std::clamp(p, 0.0, 1.0) * 0x1p53));
}
METRO_HD constexpr bool bits_below(std::uint64_t bits, std::uint64_t threshold) noexcept { return (bits >> 11) < threshold; }

// A seeded stream with a position. Draws advance the position; the same seed and
// the same sequence of draws give the same numbers everywhere.
class Generator {
 public:
  explicit Generator(std::uint64_t seed = 0) : seed_(seed) {}

  std::uint64_t seed() const noexcept { return seed_; }
  std::uint64_t offset() const noexcept { return offset_; }
  void set_state(std::uint64_t seed, std::uint64_t offset) noexcept { seed_ = seed, offset_ = offset; }

  // Reserve `count` consecutive positions and return the first; fill them with
  // uniform_at / normal_at from any number of threads.
  std::uint64_t reserve(std::uint64_t count) noexcept {
    const std::uint64_t first = offset_;
    offset_ += count;
    return first;
  }

  template <class T = double>
  T uniform_at(std::uint64_t index) const noexcept {
    return bits_to_unit<T>(random_bits(seed_, index));
  }
  // uniform_at<double>(index) < p, for threshold = unit_threshold(p).
  bool uniform_below_at(std::uint64_t index, std::uint64_t threshold) const noexcept {
    return bits_below(random_bits(seed_, index), threshold);
  }

  // Standard normal from one position (Box-Muller on two derived bit streams).
  template <class T = double>
  T normal_at(std::uint64_t index) const noexcept {
    const double u1 = 1.0 - bits_to_unit<double>(random_bits(seed_, 2 * index));  // (0, 1]
    const double u2 = bits_to_unit<double>(random_bits(seed_ ^ 0x5DEECE66Dull, 2 * index + 1));
    return static_cast<T>(std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2));
  }

  // Sequential draws (one position each).
  template <class T = double>
  T uniform() noexcept { return uniform_at<T>(reserve(1)); }
  template <class T = double>
  T uniform(T low, T high) noexcept { return low + (high - low) * uniform<T>(); }
  template <class T = double>
  T normal() noexcept { return normal_at<T>(reserve(1)); }
  template <class T = double>
  T normal(T mean, T stddev) noexcept { return mean + stddev * normal<T>(); }
  // Uniform integer in [low, high).
  std::int64_t randint(std::int64_t low, std::int64_t high) noexcept {
    const auto range = static_cast<std::uint64_t>(high - low);
    return low + static_cast<std::int64_t>(random_bits(seed_, reserve(1)) % range);
  }

 private:
  std::uint64_t seed_ = 0;
  std::uint64_t offset_ = 0;
};

}  // namespace metro
