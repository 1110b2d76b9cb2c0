// GPU timing of the paper_body METRO transformer (its three encoder blocks, 445
// tokens, 2051 -> 3) on Tensor<float, cuda>: train mode forward + backward of
// sum(y * w), and eval-mode inference, at a batch size given on the command line
// (default 32). Prints one line per workload: name, median milliseconds, images/s.
//   metro_gpu_bench [batch] [reps]
// Exits 0 with "skipped: no CUDA device" where there is no GPU.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "metro/backend/cuda.cuh"
#include "metro/model/metro_network.hpp"
#include "metro/tensor.hpp"

using namespace metro;
using TensorG = Tensor<float, cuda>;

namespace {

double median_ms(const std::function<void()>& step, int reps) {
  step();  // warm-up: the allocator's cache and cuBLAS fill here
  step();
  METRO_CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<double> times;
  for (int r = 0; r < reps; ++r) {
    const auto start = std::chrono::steady_clock::now();
    step();
    METRO_CUDA_CHECK(cudaDeviceSynchronize());
    times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const std::int64_t batch = argc > 1 ? std::atoll(argv[1]) : 32;
  const int reps = argc > 2 ? std::atoi(argv[2]) : 5;
  if (!cuda_available()) {
    std::printf("skipped: no CUDA device\n");
    return 0;
  }
  try {
    const model::MetroConfig config = model::paper_body();
    Generator gen(11);
    auto blocks = std::make_shared<nn::Sequential<float, cuda>>();
    for (const auto& block : config.blocks)
      blocks->push_back(std::make_shared<model::MetroEncoderBlock<float, cuda>>(block, config.position_embeddings, config.dropout, gen));
    const TensorG x = to_device(randn<float>({batch, config.num_tokens(), config.blocks.front().in}, gen));
    const TensorG w = to_device(randn<float>({batch, config.num_tokens(), 3}, gen));
    blocks->train(true);
    const double train_ms = median_ms([&] {
      sum(blocks->forward(x) * w).backward();
      blocks->zero_grad();
    }, reps);
    blocks->train(false);
    const double infer_ms = median_ms([&] {
      NoGradGuard no_grad;
      (void)blocks->forward(x);
    }, reps);
    const double mib = static_cast<double>(Allocator<cuda>::instance().peak_bytes()) / (1024.0 * 1024.0);
    std::printf("metro transformer_train_b%lld %.2f ms %.1f images/s\n", static_cast<long long>(batch), train_ms, batch * 1000.0 / train_ms);
    std::printf("metro transformer_infer_b%lld %.2f ms %.1f images/s\n", static_cast<long long>(batch), infer_ms, batch * 1000.0 / infer_ms);
    std::printf("metro peak device memory %.0f MiB\n", mib);
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "metro_gpu_bench: %s\n", e.what());
    return 1;
  }
}
