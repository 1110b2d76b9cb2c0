// Core benchmarks: matmul through Tensor next to the same product through raw
// Eigen maps (same binary, same run) and with bf16 products (MatmulPrecision::bf16,
// whose peak is twice the fp32 one where the CPU has AVX512-BF16), elementwise add
// next to memcpy, a sum, and the machine's fp32 FMA peak for scale. Compare
// ratios within one run.
#include <benchmark/benchmark.h>

#include <cstring>

#include "metro/tensor.hpp"

using namespace metro;

namespace {

struct MatmulShape {
  std::int64_t batch, n, k, m;
  bool transpose_b;  // b given as (m, k) and used transposed, as Linear's weight
};

// METRO's shapes: a token matrix times the first block's embedding weight (B = 1
// and 8), attention scores per head, and a cube.
const MatmulShape kShapes[] = {{1, 445, 2051, 1024, true}, {8, 445, 2051, 1024, true}, {1, 445, 64, 445, false},
                               {1, 1024, 1024, 1024, false}};

void set_flops(benchmark::State& state, const MatmulShape& s) {
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * static_cast<double>(s.batch * s.n * s.k * s.m),
                                                 benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

void matmul_tensor(benchmark::State& state, MatmulPrecision precision) {
  const MatmulPrecisionGuard guard(precision);
  const MatmulShape s = kShapes[state.range(0)];
  Generator gen(1);
  const auto a = randn<float>({s.batch * s.n, s.k}, gen);
  const auto b = s.transpose_b ? randn<float>({s.m, s.k}, gen).transpose(0, 1) : randn<float>({s.k, s.m}, gen);
  for (auto _ : state) benchmark::DoNotOptimize(matmul(a, b).data());
  set_flops(state, s);
}
void BM_MatmulTensor(benchmark::State& state) { matmul_tensor(state, MatmulPrecision::fp32); }
void BM_MatmulTensorBf16(benchmark::State& state) { matmul_tensor(state, MatmulPrecision::bf16); }

void BM_MatmulEigen(benchmark::State& state) {
  using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const MatmulShape s = kShapes[state.range(0)];
  Generator gen(1);
  const auto a = randn<float>({s.batch * s.n, s.k}, gen);
  const auto b = s.transpose_b ? randn<float>({s.m, s.k}, gen) : randn<float>({s.k, s.m}, gen);
  Eigen::Map<const Matrix> am(a.data(), s.batch * s.n, s.k);
  Matrix c(s.batch * s.n, s.m);
  for (auto _ : state) {
    if (s.transpose_b)
      c.noalias() = am * Eigen::Map<const Matrix>(b.data(), s.m, s.k).transpose();
    else
      c.noalias() = am * Eigen::Map<const Matrix>(b.data(), s.k, s.m);
    benchmark::DoNotOptimize(c.data());
  }
  set_flops(state, s);
}

constexpr std::int64_t kElements = 16 << 20;  // 16M floats, 64 MB per tensor

void BM_AddTensor(benchmark::State& state) {
  const auto a = ones<float>({kElements}), b = ones<float>({kElements});
  for (auto _ : state) benchmark::DoNotOptimize((a + b).data());
  state.SetBytesProcessed(state.iterations() * kElements * 3 * 4);  // two reads, one write
}

// The same traffic as a memcpy-like reference: 2 reads + 1 write through memcpy's 1 read + 1 write, rescaled.
void BM_Memcpy(benchmark::State& state) {
  const auto a = ones<float>({kElements});
  auto c = empty<float>({kElements});
  for (auto _ : state) {
    std::memcpy(c.data(), a.data(), kElements * sizeof(float));
    benchmark::DoNotOptimize(c.data());
  }
  state.SetBytesProcessed(state.iterations() * kElements * 2 * 4);
}

void BM_SumTensor(benchmark::State& state) {
  const auto a = ones<float>({kElements});
  for (auto _ : state) benchmark::DoNotOptimize(sum(a).item());
  state.SetBytesProcessed(state.iterations() * kElements * 4);
}

// fp32 FMA peak: per thread, 12 independent chains of packet FMAs (the widest
// packet -march gives, 16 floats with AVX-512) kept in registers. Enough chains
// to cover the FMA latency on two ports; the result is the machine's roof for GEMM.
void BM_FmaPeak(benchmark::State& state) {
  using Packet = Eigen::internal::packet_traits<float>::type;
  constexpr int kChains = 12, kLanes = Eigen::internal::packet_traits<float>::size, kSteps = 1 << 20;
  double flops = 0;
  for (auto _ : state) {
#pragma omp parallel reduction(+ : flops)
    {
      Packet acc[kChains];
      for (Packet& a : acc) a = Eigen::internal::pset1<Packet>(1.0f);
      const Packet mul = Eigen::internal::pset1<Packet>(0.999999f), add = Eigen::internal::pset1<Packet>(1e-7f);
      for (int step = 0; step < kSteps; ++step)
        for (Packet& a : acc) a = Eigen::internal::pmadd(a, mul, add);
      Packet total = acc[0];
      for (int c = 1; c < kChains; ++c) total = Eigen::internal::padd(total, acc[c]);
      benchmark::DoNotOptimize(Eigen::internal::predux(total));
      flops += 2.0 * kChains * kLanes * kSteps;
    }
  }
  state.counters["GFLOP/s"] = benchmark::Counter(flops, benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}

}  // namespace

BENCHMARK(BM_MatmulTensor)->DenseRange(0, 3)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_MatmulEigen)->DenseRange(0, 3)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_MatmulTensorBf16)->DenseRange(0, 3)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_AddTensor)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Memcpy)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_SumTensor)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_FmaPeak)->UseRealTime();
BENCHMARK_MAIN();
