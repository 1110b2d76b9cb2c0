// Layer benchmarks at METRO's shapes: Conv2d at ResNet-50 shapes (the 7x7 stem,
// 3x3 and 1x1 convs of the later stages), self-attention and a full BERT layer at
// 445 tokens (hidden 1024, 4 heads, as METRO's first encoder block), LayerNorm,
// GELU and softmax. "fwd" runs the forward only (no tape), "fwd_bwd" forward and
// backward of sum(y * w). Run with OMP_NUM_THREADS=2 to compare with PyTorch on 2 threads.
#include <benchmark/benchmark.h>

#include "metro/nn/nn.hpp"

using namespace metro;
using namespace metro::nn;

namespace {

// Forward, then backward of sum(y * w) with w fixed; gradients are dropped each time.
template <class Forward>
void forward_backward(const TensorF& x, const TensorF& weight, Module<float>* module, Forward forward) {
  sum(forward(x) * weight).backward();
  x.zero_grad();
  if (module) module->zero_grad();
}

struct ConvCase {
  std::int64_t batch, in_c, size, out_c, kernel, stride, padding;
};
// ResNet-50: stem 7x7/2 at 224, layer1 3x3 at 56, layer3 3x3 at 14, layer3 1x1 reduce at 14, layer4 3x3 at 7.
const ConvCase kConv[] = {{8, 3, 224, 64, 7, 2, 3}, {8, 64, 56, 64, 3, 1, 1}, {8, 256, 14, 256, 3, 1, 1},
                          {8, 1024, 14, 256, 1, 1, 0}, {8, 512, 7, 512, 3, 1, 1}};

double conv_flops(const ConvCase& c) {
  const std::int64_t out = (c.size + 2 * c.padding - c.kernel) / c.stride + 1;
  return 2.0 * static_cast<double>(c.batch * c.out_c * out * out * c.in_c * c.kernel * c.kernel);
}

void BM_Conv2d(benchmark::State& state) {
  const ConvCase c = kConv[state.range(0)];
  const bool backward = state.range(1) != 0;
  Generator gen(1);
  Conv2d<float> conv({.in_channels = c.in_c, .out_channels = c.out_c, .kernel_size = c.kernel, .stride = c.stride,
                      .padding = c.padding, .bias = false}, gen);
  const TensorF x = randn<float>({c.batch, c.in_c, c.size, c.size}, gen).requires_grad_(backward);
  TensorF weight;
  {
    NoGradGuard no_grad;
    weight = randn<float>(conv(x).shape(), gen);
  }
  for (auto _ : state) {
    if (backward) {
      forward_backward(x, weight, &conv, [&](const TensorF& in) { return conv(in); });
    } else {
      NoGradGuard no_grad;
      benchmark::DoNotOptimize(conv(x).data());
    }
  }
  state.counters["GFLOP/s"] = benchmark::Counter(conv_flops(c) * (backward ? 3 : 1), benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
  state.SetLabel("N" + std::to_string(c.batch) + " " + std::to_string(c.in_c) + "->" + std::to_string(c.out_c) + " k" +
                 std::to_string(c.kernel) + "/" + std::to_string(c.stride) + " @" + std::to_string(c.size) +
                 (backward ? " fwd_bwd" : " fwd"));
}
BENCHMARK(BM_Conv2d)->ArgsProduct({{0, 1, 2, 3, 4}, {0, 1}})->Unit(benchmark::kMillisecond)->UseRealTime();

// Self-attention (range 1 = 0) or a whole TransformerLayer (1) at (B, 445, 1024), 4 heads, intermediate 3072.
void BM_Attention(benchmark::State& state) {
  const std::int64_t batch = state.range(0);
  const bool whole_layer = state.range(1) != 0, backward = state.range(2) != 0;
  Generator gen(2);
  const AttentionConfig config{.hidden_size = 1024, .num_heads = 4};
  std::shared_ptr<Layer<float>> layer;
  if (whole_layer) layer = std::make_shared<TransformerLayer<float>>(TransformerLayerConfig{config, 3072}, gen);
  else layer = std::make_shared<MultiHeadSelfAttention<float>>(config, gen);
  layer->eval();
  const TensorF x = randn<float>({batch, 445, 1024}, gen).requires_grad_(backward);
  const TensorF weight = randn<float>({batch, 445, 1024}, gen);
  for (auto _ : state) {
    if (backward) {
      forward_backward(x, weight, layer.get(), [&](const TensorF& in) { return layer->forward(in); });
    } else {
      NoGradGuard no_grad;
      benchmark::DoNotOptimize(layer->forward(x).data());
    }
  }
  state.SetLabel(std::string(whole_layer ? "TransformerLayer" : "MultiHeadSelfAttention") + " B" + std::to_string(batch) +
                 (backward ? " fwd_bwd" : " fwd"));
}
BENCHMARK(BM_Attention)->ArgsProduct({{1, 8}, {0, 1}, {0, 1}})->Unit(benchmark::kMillisecond)->UseRealTime();

// Elementwise-style layers on METRO's activations: LayerNorm (8 x 445, 1024),
// GELU (8 x 445, 3072), softmax over attention scores (8, 4, 445, 445).
void BM_Pointwise(benchmark::State& state) {
  const int which = static_cast<int>(state.range(0));
  const bool backward = state.range(1) != 0;
  Generator gen(3);
  LayerNorm<float> norm({.normalized_shape = 1024, .eps = 1e-12});
  const Shape shape = which == 0 ? Shape{8 * 445, 1024} : which == 1 ? Shape{8 * 445, 3072} : Shape{8, 4, 445, 445};
  const auto run = [&](const TensorF& in) { return which == 0 ? norm(in) : which == 1 ? gelu(in) : softmax(in, -1, 0.125f); };
  const TensorF x = randn<float>(shape, gen).requires_grad_(backward);
  const TensorF weight = randn<float>(shape, gen);
  for (auto _ : state) {
    if (backward) {
      forward_backward(x, weight, &norm, run);
    } else {
      NoGradGuard no_grad;
      benchmark::DoNotOptimize(run(x).data());
    }
  }
  state.SetBytesProcessed(state.iterations() * x.numel() * static_cast<std::int64_t>(sizeof(float)));
  state.SetLabel(std::string(which == 0 ? "LayerNorm" : which == 1 ? "GELU" : "softmax") + (backward ? " fwd_bwd" : " fwd"));
}
BENCHMARK(BM_Pointwise)->ArgsProduct({{0, 1, 2}, {0, 1}})->Unit(benchmark::kMillisecond)->UseRealTime();

// The ResNet-50 trunk forward (eval, no tape) at batch 1, 224 x 224: the official
// METRO backbone (PyTorch 1.13 on 2 threads here: 0.089 s).
void BM_ResNet50Forward(benchmark::State& state) {
  Generator gen(4);
  auto net = resnet50<float>(gen);
  net->eval();
  const TensorF x = randn<float>({state.range(0), 3, 224, 224}, gen);
  for (auto _ : state) {
    NoGradGuard no_grad;
    benchmark::DoNotOptimize(net->forward(x).data());
  }
}
BENCHMARK(BM_ResNet50Forward)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
