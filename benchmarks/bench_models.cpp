// Whole-model benchmarks at METRO's sizes, the workloads tools/bench_vs_pytorch.sh
// compares with PyTorch 1.13 (tools/bench_pytorch.py runs the same shapes):
//
//   transformer_fwd_b1     paper_body's 3 encoder blocks (445 tokens, 2051 -> 3), eval forward, batch 1
//   transformer_train_b8   the same blocks, train mode, forward + backward, batch 8
//   resnet50_fwd_b1        the ResNet-50 trunk, eval forward at 224 x 224, batch 1
//   metro_r50_train_b8     paper_body (ResNet-50 + blocks + heads), forward, L1 on the three
//                          vertex levels, backward, Adam step, batch 8
//   small_train_b16        small(108, {431, 6890}, 128), the same training step, batch 16
//   *_bf16                 the two batch-1 forwards with bf16 products (MatmulPrecision::bf16,
//                          core/precision.hpp; fp32 products where the build has no bf16 kernel)
//
// And where the demo's training step goes (small at 96 px, one head, no dropout,
// batch 8, as tools/demo.sh trains), each part forward + backward on its own:
//
//   demo_train_b8          the whole step (as small_train_b16)
//   demo_backbone_b8       the 3-stage ResNet, (8, 3, 96, 96) -> (8, 128, 6, 6)
//   demo_encoder_b8        the three encoder blocks over 122 tokens, (8, 122, 131) -> (8, 122, 3)
//   demo_upsampling_b8     Linear(108 -> 431) and the fixed (6890, 431) matrix along the vertex axis
//
// Each workload builds its model once and runs one untimed warm-up iteration; a
// timed iteration is one forward (or one training step). Counters: images_per_s,
// peak_rss_MB (the process's VmHWM: run one workload per process, e.g.
// --benchmark_filter=transformer_fwd_b1) and peak_alloc_MB (the tensor
// allocator's high-water mark). Run with OMP_NUM_THREADS=2 to compare with PyTorch.
#include <benchmark/benchmark.h>

#include <fstream>
#include <functional>
#include <memory>
#include <string>

#include "metro/model/model.hpp"
#include "metro/nn/nn.hpp"

using namespace metro;

namespace {

// The process's peak resident set in MiB (VmHWM of /proc/self/status), 0 when unavailable.
double peak_rss_mib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;  // reported in kB
  return 0;
}

// One workload: `step` runs a timed unit of work on `batch` images.
struct Workload {
  std::int64_t batch;
  std::function<void()> step;
};

void run_workload(benchmark::State& state, Workload& workload) {
  workload.step();  // warm-up: the allocator's cache and the optimizer state fill here
  for (auto _ : state) workload.step();
  state.counters["images_per_s"] = benchmark::Counter(static_cast<double>(workload.batch), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["peak_rss_MB"] = peak_rss_mib();
  state.counters["peak_alloc_MB"] = static_cast<double>(Allocator<cpu>::instance().peak_bytes()) / (1024.0 * 1024.0);
}

// The three encoder blocks of a preset, (B, N, 3 + C) -> (B, N, 3).
std::shared_ptr<nn::Sequential<float>> encoder_blocks(const model::MetroConfig& config, Generator& gen) {
  auto blocks = std::make_shared<nn::Sequential<float>>();
  for (const auto& block : config.blocks)
    blocks->push_back(std::make_shared<model::MetroEncoderBlock<float>>(block, config.position_embeddings, config.dropout, gen));
  return blocks;
}

// The settings of tools/demo.sh.
model::MetroConfig demo_config() {
  model::MetroConfig config = model::small(108, {431, 6890}, 96);
  config.dropout = 0;
  for (auto& block : config.blocks) block.heads = 1;
  return config;
}

// Forward and backward of `forward` on x; the gradient of sum(y * w) is what is backpropagated.
Workload forward_backward(std::int64_t batch, std::shared_ptr<nn::Module<float>> owner, std::function<TensorF(const TensorF&)> forward,
                          const TensorF& x, const TensorF& w) {
  return {batch, [owner, forward, x, w] {
            sum(forward(x) * w).backward();
            owner->zero_grad();
          }};
}

// The model's parameters get a gradient; the gradient of sum(y * w) is what is backpropagated.
Workload transformer(const model::MetroConfig& config, std::int64_t batch, bool train) {
  Generator gen(11);
  auto blocks = encoder_blocks(config, gen);
  blocks->train(train);
  const TensorF x = randn<float>({batch, config.num_tokens(), config.blocks.front().in}, gen);
  const TensorF w = randn<float>({batch, config.num_tokens(), 3}, gen);
  if (!train)
    return {batch, [blocks, x] {
              NoGradGuard no_grad;
              benchmark::DoNotOptimize(blocks->forward(x).data());
            }};
  return forward_backward(batch, blocks, [blocks](const TensorF& in) { return blocks->forward(in); }, x, w);
}

Workload backbone_train(const model::MetroConfig& config, std::int64_t batch) {
  Generator gen(14);
  auto net = std::make_shared<nn::ResNet<float>>(config.backbone, gen);
  net->train();
  const TensorF x = randn<float>({batch, 3, config.image_size, config.image_size}, gen);
  const TensorF w = randn<float>({batch, config.feature_channels(), config.grid_size(), config.grid_size()}, gen);
  return forward_backward(batch, net, [net](const TensorF& in) { return net->forward(in); }, x, w);
}

// The upsampling along the vertex axis, (B, 3, V) -> (B, 3, mid) -> (B, 3, full): learned
// Linears, the last one a fixed matrix when the config says so.
Workload upsampling_train(const model::MetroConfig& config, std::int64_t batch) {
  Generator gen(15);
  auto layers = std::make_shared<nn::Sequential<float>>();
  const std::size_t learned = config.upsample_sizes.size() - (config.learned_full_upsampling ? 0 : 1);
  std::int64_t from = config.num_coarse_vertices;
  for (std::size_t i = 0; i < learned; ++i) {
    layers->push_back(std::make_shared<nn::Linear<float>>(nn::LinearConfig{from, config.upsample_sizes[i]}, gen));
    from = config.upsample_sizes[i];
  }
  const TensorF fixed = learned < config.upsample_sizes.size() ? randn<float>({config.num_full_vertices(), from}, gen) : TensorF();
  const TensorF x = randn<float>({batch, 3, config.num_coarse_vertices}, gen);
  const TensorF w = randn<float>({batch, 3, config.num_full_vertices()}, gen);
  return forward_backward(batch, layers, [layers, fixed](const TensorF& in) {
    const TensorF mid = layers->forward(in);
    return fixed.defined() ? linear(mid, fixed) : mid;
  }, x, w);
}

Workload resnet50_forward(std::int64_t batch) {
  Generator gen(12);
  auto net = nn::resnet50<float>(gen);
  net->eval();
  const TensorF x = randn<float>({batch, 3, 224, 224}, gen);
  return {batch, [net, x] {
            NoGradGuard no_grad;
            benchmark::DoNotOptimize(net->forward(x).data());
          }};
}

// A METRO training step: forward (masked vertex modeling on), L1 on the coarse,
// mid and full vertices (0.33 each, Sec. 3.4), backward, Adam (lr 1e-4).
Workload metro_train_step(const model::MetroConfig& config, std::int64_t batch) {
  Generator gen(13);
  auto net = std::make_shared<model::MetroNetwork<float>>(config, gen);
  net->set_template(randn<float>({config.num_joints, 3}, gen, 0.f, 0.3f), randn<float>({config.num_coarse_vertices, 3}, gen, 0.f, 0.3f));
  net->train();
  auto adam = std::make_shared<nn::Adam<float>>(net->parameters(), nn::AdamOptions{.lr = 1e-4});
  const TensorF images = randn<float>({batch, 3, config.image_size, config.image_size}, gen);
  const TensorF coarse = randn<float>({batch, config.num_coarse_vertices, 3}, gen, 0.f, 0.3f);
  const TensorF mid = randn<float>({batch, config.upsample_sizes.at(0), 3}, gen, 0.f, 0.3f);
  const TensorF full = randn<float>({batch, config.upsample_sizes.at(1), 3}, gen, 0.f, 0.3f);
  if (!config.learned_full_upsampling) net->set_fixed_upsampling(randn<float>({config.upsample_sizes.at(1), config.upsample_sizes.at(0)}, gen));
  return {batch, [net, adam, images, coarse, mid, full] {
            const model::MetroOutput<float> out = net->forward(images);
            const TensorF loss = 0.33f * (mean(abs(out.coarse_vertices - coarse)) + mean(abs(out.mid_vertices - mid)) +
                                          mean(abs(out.full_vertices - full)));
            adam->zero_grad();
            loss.backward();
            adam->step();
          }};
}

// The same workload with the GEMMs' operands rounded to bf16 (core/precision.hpp).
Workload with_bf16_products(Workload w) {
  return {w.batch, [step = std::move(w.step)] {
            const MatmulPrecisionGuard bf16(MatmulPrecision::bf16);
            step();
          }};
}

void BM_transformer_fwd_b1(benchmark::State& state) {
  static Workload w = transformer(model::paper_body(), 1, false);
  run_workload(state, w);
}
void BM_transformer_train_b8(benchmark::State& state) {
  static Workload w = transformer(model::paper_body(), 8, true);
  run_workload(state, w);
}
void BM_resnet50_fwd_b1(benchmark::State& state) {
  static Workload w = resnet50_forward(1);
  run_workload(state, w);
}
void BM_transformer_fwd_b1_bf16(benchmark::State& state) {
  static Workload w = with_bf16_products(transformer(model::paper_body(), 1, false));
  run_workload(state, w);
}
void BM_resnet50_fwd_b1_bf16(benchmark::State& state) {
  static Workload w = with_bf16_products(resnet50_forward(1));
  run_workload(state, w);
}
void BM_metro_r50_train_b8(benchmark::State& state) {
  static Workload w = metro_train_step(model::paper_body(), 8);
  run_workload(state, w);
}
void BM_small_train_b16(benchmark::State& state) {
  static Workload w = metro_train_step(model::small(108, {431, 6890}, 128), 16);
  run_workload(state, w);
}

void BM_demo_train_b8(benchmark::State& state) {
  static Workload w = metro_train_step(demo_config(), 8);
  run_workload(state, w);
}
void BM_demo_backbone_b8(benchmark::State& state) {
  static Workload w = backbone_train(demo_config(), 8);
  run_workload(state, w);
}
void BM_demo_encoder_b8(benchmark::State& state) {
  static Workload w = transformer(demo_config(), 8, true);
  run_workload(state, w);
}
void BM_demo_upsampling_b8(benchmark::State& state) {
  static Workload w = upsampling_train(demo_config(), 8);
  run_workload(state, w);
}

BENCHMARK(BM_transformer_fwd_b1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_transformer_train_b8)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_resnet50_fwd_b1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_metro_r50_train_b8)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_small_train_b16)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_transformer_fwd_b1_bf16)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_resnet50_fwd_b1_bf16)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_demo_train_b8)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_demo_backbone_b8)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_demo_encoder_b8)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_demo_upsampling_b8)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
