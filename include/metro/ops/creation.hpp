#pragma once
// Creating tensors: ranges, identity, from host data, and random fills from a
// metro::Generator (counter-based, so the values do not depend on threads).
// On a device other than the CPU, values made on the host are copied over
// (random numbers too, so they are the CPU's numbers).
#include <cmath>
#include <initializer_list>
#include <string>
#include <type_traits>
#include <vector>

#include "metro/core/random.hpp"
#include "metro/ops/index.hpp"

namespace metro {

// The process-wide generator used when none is passed (seed it with manual_seed).
inline Generator& default_generator() {
  static Generator generator(0);
  return generator;
}
inline void manual_seed(std::uint64_t seed) { default_generator().set_state(seed, 0); }

template <class T, class D = cpu>
Tensor<T, D> from_vector(const std::vector<T>& values, const Shape& shape) {
  if (static_cast<std::int64_t>(values.size()) != shape.numel())
    throw ShapeError("from_vector: " + std::to_string(values.size()) + " values for shape " + shape.str());
  Tensor<T, D> t = empty<T, D>(shape);
  if constexpr (std::is_same_v<D, cpu>)
    std::copy(values.begin(), values.end(), t.data());
  else
    backend::copy_from_host<D>(t.data(), values.data(), shape.numel());
  return t;
}

// tensor<float>({1, 2, 3}) is 1-D; tensor<float>({{1, 2}, {3, 4}}) is 2-D.
template <class T, class D = cpu>
Tensor<T, D> tensor(std::initializer_list<T> values) {
  return from_vector<T, D>(std::vector<T>(values), Shape{static_cast<std::int64_t>(values.size())});
}
template <class T, class D = cpu>
Tensor<T, D> tensor(std::initializer_list<std::initializer_list<T>> rows) {
  std::vector<T> values;
  const std::int64_t cols = rows.size() ? static_cast<std::int64_t>(rows.begin()->size()) : 0;
  for (const auto& row : rows) {
    if (static_cast<std::int64_t>(row.size()) != cols) throw ShapeError("tensor: ragged nested initializer list");
    values.insert(values.end(), row.begin(), row.end());
  }
  return from_vector<T, D>(values, Shape{static_cast<std::int64_t>(rows.size()), cols});
}

// start, start + step, ... < end
template <class T, class D = cpu>
Tensor<T, D> arange(T start, T end, T step = T(1)) {
  if (step == T(0)) throw ValueError("arange: step must not be zero");
  const auto n = static_cast<std::int64_t>(std::ceil(static_cast<double>(end - start) / static_cast<double>(step)));
  std::vector<T> values;
  for (std::int64_t i = 0; i < std::max<std::int64_t>(n, 0); ++i) values.push_back(static_cast<T>(start + static_cast<T>(i) * step));
  return from_vector<T, D>(values, Shape{static_cast<std::int64_t>(values.size())});
}

// `steps` evenly spaced values from start to end inclusive.
template <class T, class D = cpu>
Tensor<T, D> linspace(T start, T end, std::int64_t steps) {
  if (steps < 0) throw ValueError("linspace: negative number of steps");
  std::vector<T> values;
  for (std::int64_t i = 0; i < steps; ++i)
    values.push_back(steps == 1 ? start : static_cast<T>(start + (end - start) * static_cast<T>(i) / static_cast<T>(steps - 1)));
  return from_vector<T, D>(values, Shape{steps});
}

template <class T, class D = cpu>
Tensor<T, D> eye(std::int64_t n) {
  if constexpr (!std::is_same_v<D, cpu>) {
    return from_vector<T, D>(eye<T, cpu>(n).to_vector(), Shape{n, n});
  } else {
    Tensor<T, D> t = zeros<T, D>({n, n});
    for (std::int64_t i = 0; i < n; ++i) t.data()[i * n + i] = T(1);
    return t;
  }
}

namespace detail {
// Fills a new tensor with value(generator, position) for consecutive reserved positions.
template <class T, class D, class Draw>
Tensor<T, D> random_fill(const Shape& shape, Generator& gen, Draw draw) {
  Tensor<T, D> t = empty<T, D>(shape);
  if constexpr (!std::is_same_v<D, cpu>) {  // drawn on the host: the same numbers as the CPU
    const Tensor<T, cpu> host = random_fill<T, cpu>(shape, gen, draw);
    backend::copy_from_host<D>(t.data(), host.data(), shape.numel());
  } else {
    const std::uint64_t first = gen.reserve(static_cast<std::uint64_t>(shape.numel()));
    T* data = t.data();
    backend::parallel_for(shape.numel(), backend::kParallelGrain, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t i = begin; i < end; ++i) data[i] = draw(gen, first + static_cast<std::uint64_t>(i));
    });
  }
  return t;
}
}  // namespace detail

// Uniform in [low, high).
template <class T, class D = cpu>
Tensor<T, D> rand(const Shape& shape, Generator& gen = default_generator(), T low = T(0), T high = T(1)) {
  return detail::random_fill<T, D>(shape, gen, [low, high](const Generator& g, std::uint64_t i) {
    return low + (high - low) * g.uniform_at<T>(i);
  });
}

template <class T, class D = cpu>
Tensor<T, D> randn(const Shape& shape, Generator& gen = default_generator(), T mean = T(0), T stddev = T(1)) {
  return detail::random_fill<T, D>(shape, gen, [mean, stddev](const Generator& g, std::uint64_t i) {
    return mean + stddev * g.normal_at<T>(i);
  });
}

// Integers in [low, high) stored as T (use T = std::int64_t for indices).
template <class T, class D = cpu>
Tensor<T, D> randint(std::int64_t low, std::int64_t high, const Shape& shape, Generator& gen = default_generator()) {
  if (high <= low) throw ValueError("randint: empty range [" + std::to_string(low) + ", " + std::to_string(high) + ")");
  const auto range = static_cast<std::uint64_t>(high - low);
  return detail::random_fill<T, D>(shape, gen, [low, range](const Generator& g, std::uint64_t i) {
    return static_cast<T>(low + static_cast<std::int64_t>(random_bits(g.seed(), i) % range));
  });
}

// 1 with probability p, else 0.
template <class T, class D = cpu>
Tensor<T, D> bernoulli(const Shape& shape, double p, Generator& gen = default_generator()) {
  return detail::random_fill<T, D>(shape, gen, [p](const Generator& g, std::uint64_t i) {
    return g.uniform_at<double>(i) < p ? T(1) : T(0);
  });
}

}  // namespace metro
