#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <string>

#include "metro/nn/nn.hpp"
#include "support/bf16.hpp"
#include "support/parity.hpp"

using namespace metro;
using namespace metro::nn;

namespace {

using testing::check_parity, testing::fixture, testing::fixture_tensor, testing::relative_error;

// t in float64, its values first rounded to bf16 when `bf16_rounded`.
TensorD as_double(const TensorF& t, bool bf16_rounded = false) {
  std::vector<double> values;
  for (const float v : t.to_vector()) values.push_back(bf16_rounded ? testing::round_to_bf16(v) : v);
  return from_vector<double>(values, t.shape());
}

AttentionConfig small_attention() { return {.hidden_size = 16, .num_heads = 4, .attention_dropout = 0, .hidden_dropout = 0}; }

}  // namespace

TEST_CASE("Module: hierarchical names, state_dict, strict loading") {
  Generator gen(1);
  TransformerLayer<float> layer({.attention = small_attention(), .intermediate_size = 24}, gen);
  const auto names = layer.named_parameters();
  REQUIRE(names.size() == 16);
  CHECK(names[0].first == "attention.self.query.weight");
  CHECK(names[9].first == "attention.output.LayerNorm.bias");
  CHECK(names[15].first == "output.LayerNorm.bias");
  CHECK(count_parameters(layer) == 4 * (16 * 16 + 16) + 2 * 32 + (24 * 16 + 24) + (16 * 24 + 16));

  auto state = layer.state_dict();
  state.erase("output.dense.bias");
  state["extra.weight"] = zeros<float>({2});
  state["attention.self.key.weight"] = zeros<float>({3, 16});
  try {
    layer.load_state_dict(state);
    FAIL("strict load_state_dict accepted a bad state");
  } catch (const ShapeError& e) {
    const std::string message = e.what();
    CHECK(message.find("missing keys: output.dense.bias") != std::string::npos);
    CHECK(message.find("unexpected keys: extra.weight") != std::string::npos);
    CHECK(message.find("attention.self.key.weight (3, 16) (expected (16, 16))") != std::string::npos);
  }

  // Loading copies in place: a handle taken before sees the new values.
  TransformerLayer<float> other({.attention = small_attention(), .intermediate_size = 24}, gen);
  const TensorF handle = other.named_parameters()[0].second;
  other.load_state_dict(layer.state_dict());
  CHECK(handle.to_vector() == layer.named_parameters()[0].second.to_vector());

  layer.eval();
  CHECK_FALSE(layer.is_training());
  CHECK_FALSE(layer.self_attention().is_training());
}

TEST_CASE("parity: linear") {
  Linear<float> layer({.in_features = 7, .out_features = 5});
  check_parity("linear", layer, [&](const TensorF& x) { return layer(x); });
}

TEST_CASE("parity: layernorm") {
  LayerNorm<float> layer({.normalized_shape = 11, .eps = 1e-12});
  check_parity("layernorm", layer, [&](const TensorF& x) { return layer(x); });
}

TEST_CASE("parity: gelu and softmax") {
  GELU<float> gelu_layer;
  check_parity("gelu", gelu_layer, [&](const TensorF& x) { return gelu_layer(x); });
  Softmax<float> softmax_layer(-1);
  check_parity("softmax", softmax_layer, [&](const TensorF& x) { return softmax_layer(x); });
}

TEST_CASE("parity: attention (BertAttention) and its probabilities") {
  Attention<float> attention(small_attention());
  attention.eval();
  attention.self_attention().keep_attention(true);
  check_parity("attention", attention, [&](const TensorF& x) { return attention(x); });
  const auto file = fixture("attention");
  CHECK(relative_error(attention.self_attention().last_attention(), fixture_tensor(file, "output.probs")) < 1e-5);
}

TEST_CASE("parity: bert_layer") {
  TransformerLayer<float> layer({.attention = small_attention(), .intermediate_size = 24});
  layer.eval();
  check_parity("bert_layer", layer, [&](const TensorF& x) { return layer(x); });
  CHECK(relative_error(layer.last_attention_output(), fixture_tensor(fixture("bert_layer"), "output.attention")) < 1e-5);
}

TEST_CASE("parity: conv2d") {
  struct Case {
    const char* name;
    Conv2dConfig config;
  };
  for (const Case& c : {Case{"conv2d_basic", {3, 4, 3, 1, 1, 1, 1, true}}, Case{"conv2d_strided", {4, 6, 3, 2, 1, 1, 1, false}},
                        Case{"conv2d_dilated_groups", {4, 6, 3, 1, 2, 2, 2, true}}, Case{"conv2d_1x1", {8, 5, 1, 2, 0, 1, 1, false}},
                        Case{"conv2d_7x7", {3, 4, 7, 2, 3, 1, 1, false}}}) {
    Conv2d<float> conv(c.config);
    check_parity(c.name, conv, [&](const TensorF& x) { return conv(x); });
  }
}

TEST_CASE("parity: batchnorm2d train and eval") {
  BatchNorm2d<float> train_bn({.num_features = 5});
  check_parity("batchnorm2d_train", train_bn, [&](const TensorF& x) { return train_bn(x); });
  BatchNorm2d<float> eval_bn({.num_features = 5});
  eval_bn.eval();
  check_parity("batchnorm2d_eval", eval_bn, [&](const TensorF& x) { return eval_bn(x); });
  // Eval mode leaves the running stats as loaded.
  const auto file = fixture("batchnorm2d_eval");
  CHECK(relative_error(eval_bn.state_dict().at("running_var"), fixture_tensor(file, "param.running_var")) == 0);
}

TEST_CASE("parity: pools") {
  MaxPool2d<float> max_pool(3, 2, 1);
  check_parity("maxpool2d", max_pool, [&](const TensorF& x) { return max_pool(x); });
  AdaptiveAvgPool2d<float> avg_pool(1);
  check_parity("adaptive_avgpool2d", avg_pool, [&](const TensorF& x) { return avg_pool(x); });
}

TEST_CASE("max_pool2d: values and winners against a direct window scan, with ties and -inf") {
  // Small integers (many ties) and some -inf; the winner of a window is its first
  // maximum in row-major order, which the backward's scatter reveals.
  struct Case {
    std::int64_t height, width, kernel, stride, padding;
  };
  const Case cases[] = {{7, 7, 3, 2, 1}, {8, 9, 3, 2, 1}, {6, 5, 2, 2, 0}, {7, 6, 3, 1, 1}, {9, 8, 4, 3, 2}, {5, 11, 5, 2, 2}};
  Generator gen(41);
  for (const Case& c : cases) {
    INFO("input ", c.height, "x", c.width, ", kernel ", c.kernel, ", stride ", c.stride, ", padding ", c.padding);
    std::vector<float> values = randint<float>(0, 4, {2, 3, c.height, c.width}, gen).to_vector();
    for (std::size_t i = 0; i < values.size(); i += 7) values[i] = -std::numeric_limits<float>::infinity();
    const TensorF x = from_vector<float>(values, {2, 3, c.height, c.width}).requires_grad_();
    const TensorF weights = randn<float>({2, 3, (c.height + 2 * c.padding - c.kernel) / c.stride + 1,
                                          (c.width + 2 * c.padding - c.kernel) / c.stride + 1}, gen);
    const std::int64_t out_h = weights.shape()[2], out_w = weights.shape()[3];
    std::vector<float> expected_y, expected_grad(values.size(), 0.0f);
    const std::vector<float> w = weights.to_vector();
    for (std::int64_t plane = 0; plane < 6; ++plane)
      for (std::int64_t oh = 0; oh < out_h; ++oh)
        for (std::int64_t ow = 0; ow < out_w; ++ow) {
          std::int64_t winner = -1;
          for (std::int64_t ih = oh * c.stride - c.padding; ih < oh * c.stride - c.padding + c.kernel; ++ih)
            for (std::int64_t iw = ow * c.stride - c.padding; iw < ow * c.stride - c.padding + c.kernel; ++iw) {
              if (ih < 0 || iw < 0 || ih >= c.height || iw >= c.width) continue;
              const std::int64_t i = (plane * c.height + ih) * c.width + iw;
              if (winner < 0 || values[static_cast<std::size_t>(i)] > values[static_cast<std::size_t>(winner)]) winner = i;
            }
          expected_y.push_back(values[static_cast<std::size_t>(winner)]);
          expected_grad[static_cast<std::size_t>(winner)] += w[expected_y.size() - 1];
        }
    const TensorF y = max_pool2d(x, c.kernel, c.stride, c.padding);
    CHECK(y.to_vector() == expected_y);
    sum(y * weights).backward();
    CHECK(x.grad().to_vector() == expected_grad);
    CHECK(max_pool2d(x.detach(), c.kernel, c.stride, c.padding).to_vector() == expected_y);  // the path without winners
  }
}

TEST_CASE("parity: ResNet basic block and bottleneck, train and eval") {
  for (const char* mode : {"_train", "_eval"}) {
    ResidualBlock<float> basic(BlockType::basic, 8, 16, 2);
    basic.train(std::string(mode) == "_train");
    check_parity(std::string("basic_block") + mode, basic, [&](const TensorF& x) { return basic(x); });
    ResidualBlock<float> bottleneck(BlockType::bottleneck, 8, 4, 2);
    bottleneck.train(std::string(mode) == "_train");
    check_parity(std::string("bottleneck") + mode, bottleneck, [&](const TensorF& x) { return bottleneck(x); });
  }
}

TEST_CASE("ResNet trunks: parameter counts and output grid") {
  CHECK(count_parameters(*resnet50<float>()) == 23'508'032);
  CHECK(count_parameters(*resnet18<float>()) == 11'689'512 - 513'000);  // torchvision count minus fc
  ResNet<float> small({.block = BlockType::basic, .layers = {1, 1, 1, 1}, .base_width = 8});
  small.eval();
  const TensorF y = small(randn<float>({2, 3, 64, 64}));
  CHECK(y.shape() == Shape{2, 64, 2, 2});
  CHECK(small.out_channels() == 64);
}

TEST_CASE("Conv1d over tokens: (B, 49, L) -> (B, 445, L) equals a per-token linear map") {
  Generator gen(5);
  Conv1d<float> conv({.in_channels = 49, .out_channels = 445, .kernel_size = 1}, gen);
  const TensorF x = randn<float>({2, 49, 6}, gen);
  const TensorF y = conv(x);
  REQUIRE(y.shape() == Shape{2, 445, 6});
  const auto params = conv.named_parameters();
  const TensorF expected = matmul(reshape(params[0].second, {445, 49}), x) + reshape(params[1].second, {445, 1});
  CHECK(relative_error(y, as_double(expected)) < 1e-6);
}

// ---- check_layer: gradients, accumulation, train/eval for every layer ----

namespace {
void require_layer(const char* name, Module<double>& module, const std::function<TensorD(const TensorD&)>& forward,
                   const TensorD& input, const CheckLayerOptions& options = {}) {
  const CheckLayerResult result = check_layer(module, forward, input, options);
  const std::string label = name;
  INFO(label << "\n" << result.report);
  CHECK(result.passed);
  CHECK(result.max_accumulate_error < 1e-9);
  MESSAGE(label << ": input error " << result.max_input_error << ", param error " << result.max_param_error);
}
void require_layer(const char* name, Layer<double>& layer, const TensorD& input, const CheckLayerOptions& options = {}) {
  require_layer(name, layer, [&](const TensorD& x) { return layer(x); }, input, options);
}
}  // namespace

TEST_CASE("check_layer: dense layers") {
  Generator gen(11);
  Linear<double> linear({.in_features = 5, .out_features = 3}, gen);
  require_layer("Linear", linear, randn<double>({2, 4, 5}, gen));
  LayerNorm<double> norm({.normalized_shape = 6, .eps = 1e-12});
  require_layer("LayerNorm", norm, randn<double>({3, 6}, gen, 0.5, 2.0));
  GELU<double> gelu_layer;
  require_layer("GELU", gelu_layer, randn<double>({4, 5}, gen));
  ReLU<double> relu_layer;
  require_layer("ReLU", relu_layer, randn<double>({4, 5}, gen));
  Embedding<double> embedding({.num_embeddings = 7, .embedding_dim = 4}, gen);
  const TensorI ids = from_vector<std::int64_t>({1, 3, 3, 6, 0, 2}, {2, 3});
  require_layer("Embedding", embedding, [&](const TensorD& x) { return embedding.forward(ids) * x; }, randn<double>({2, 3, 4}, gen));
}

TEST_CASE("check_layer: convolution, norm and pooling") {
  Generator gen(12);
  Conv2d<double> conv({.in_channels = 4, .out_channels = 6, .kernel_size = 3, .stride = 2, .padding = 2, .dilation = 2, .groups = 2}, gen);
  require_layer("Conv2d", conv, randn<double>({2, 4, 7, 6}, gen));
  Conv1d<double> conv1d({.in_channels = 3, .out_channels = 5, .kernel_size = 3, .padding = 1}, gen);
  require_layer("Conv1d", conv1d, randn<double>({2, 3, 6}, gen));
  BatchNorm2d<double> bn({.num_features = 3});
  require_layer("BatchNorm2d (train)", bn, randn<double>({2, 3, 3, 4}, gen, 0.5, 1.5),
                {.check_in_training = true, .expect_train_eval_differ = true});
  require_layer("BatchNorm2d (eval)", bn, randn<double>({2, 3, 3, 4}, gen), {.expect_train_eval_differ = true});
  // Distinct values a grid apart: finite differences never cross a max.
  MaxPool2d<double> max_pool(3, 2, 1);
  require_layer("MaxPool2d", max_pool, reshape(arange<double>(0, 2 * 2 * 7 * 7) * 0.37 - 20.0, {2, 2, 7, 7}));
  AdaptiveAvgPool2d<double> avg_pool(3, 2);
  require_layer("AdaptiveAvgPool2d 3x2", avg_pool, randn<double>({2, 2, 5, 5}, gen));
}

TEST_CASE("check_layer: attention, transformer layer, residual blocks") {
  Generator gen(13);
  AttentionConfig config{.hidden_size = 8, .num_heads = 2, .attention_dropout = 0.1, .hidden_dropout = 0.1};
  MultiHeadSelfAttention<double> mhsa(config, gen);
  require_layer("MultiHeadSelfAttention", mhsa, randn<double>({2, 5, 8}, gen), {.expect_train_eval_differ = true});
  TransformerLayer<double> layer({.attention = config, .intermediate_size = 12}, gen);
  require_layer("TransformerLayer", layer, randn<double>({2, 5, 8}, gen), {.expect_train_eval_differ = true});
  ResidualBlock<double> block(BlockType::bottleneck, 4, 2, 2, gen);
  require_layer("Bottleneck (train)", block, randn<double>({2, 4, 5, 5}, gen), {.check_in_training = true, .expect_train_eval_differ = true});
}

TEST_CASE("attention_context: the composed ops with the same dropout mask, without keeping the probabilities") {
  Generator gen(21);
  const auto leaf = [&](const Shape& shape) { return randn<double>(shape, gen).requires_grad_(); };
  const TensorD q = leaf({2, 3, 5, 4}), k = leaf({2, 3, 7, 4}), v = leaf({2, 3, 7, 6}), w = randn<double>({2, 3, 5, 6}, gen);
  const double scale = 0.5;
  Dropout<double> composed_drop(0.3, 9), fused_drop(0.3, 9);  // the same mask
  const auto composed = [&] { return matmul(composed_drop(softmax(matmul(q, transpose(k, -1, -2)), -1, scale)), v); };
  const auto fused = [&] { return attention_context(q, k, v, scale, fused_drop); };
  // What each keeps for the backward besides q, k and v while its output lives:
  // the composition keeps the probabilities and their dropout, 2 x (2, 3, 5, 7).
  const auto block = [](std::int64_t values) { return (values * sizeof(double) + 63) / 64 * 64; };  // the allocator's rounding
  const auto run = [&](const auto& op, int kept_probabilities) {
    const std::size_t before = Allocator<cpu>::instance().live_bytes();
    const TensorD y = op();
    CHECK(Allocator<cpu>::instance().live_bytes() - before == block(y.numel()) + kept_probabilities * block(2 * 3 * 5 * 7));
    sum(y * w).backward();
    std::vector<TensorD> result{y.detach(), q.grad(), k.grad(), v.grad()};
    for (const TensorD& t : {q, k, v}) t.zero_grad();
    return result;
  };
  const auto expected = run(composed, 2), got = run(fused, 0);
  CHECK(max(abs(got[0] - expected[0])).item() == 0.0);
  for (std::size_t i = 1; i < got.size(); ++i) {
    CHECK(max(abs(expected[i])).item() > 0.1);  // a gradient to compare
    CHECK(max(abs(got[i] - expected[i])).item() < 1e-12);
  }
  CHECK_THROWS_WITH_AS(attention_context(q, k, transpose(v, -1, -2), scale, fused_drop),
                       "attention_context: q (2, 3, 5, 4), k (2, 3, 7, 4) and v (2, 3, 6, 7) do not match", ShapeError);
}

TEST_CASE("checkpoint: the layer's values, gradients and dropout masks, keeping only its input") {
  Generator gen(31);
  MultiHeadSelfAttention<double> layer({.hidden_size = 8, .num_heads = 2, .attention_dropout = 0.3}, gen);
  const TensorD leaf = randn<double>({2, 6, 8}, gen).requires_grad_(), w = randn<double>({2, 6, 8}, gen);
  Generator& masks = dynamic_cast<Dropout<double>&>(*layer.named_children().back().second).generator();
  const std::uint64_t start = masks.offset();
  // Values, gradients (of the input's producer and of the parameters), the live
  // bytes the forward leaves (output and tape), and where the mask generator ends.
  const auto run = [&](const auto& forward) {
    masks.set_state(masks.seed(), start);
    const TensorD x = leaf * 2.0;  // an intermediate: its producer must get the gradient
    const std::size_t before = Allocator<cpu>::instance().live_bytes();
    const TensorD y = forward(x);
    const std::size_t kept = Allocator<cpu>::instance().live_bytes() - before;
    sum(y * w).backward();
    std::vector<TensorD> values{y.detach(), leaf.grad()};
    for (const auto& p : layer.parameters()) values.push_back(p.grad());
    layer.zero_grad();
    leaf.zero_grad();
    return std::tuple{values, kept, masks.offset()};
  };
  const auto [expected, kept_plain, end_plain] = run([&](const TensorD& x) { return layer(x); });
  const auto [got, kept_checkpointed, end_checkpointed] = run([&](const TensorD& x) { return checkpoint(layer, x); });
  CHECK(end_plain == start + 2 * 2 * 6 * 6);  // one mask over (B, h, N, N) drawn
  CHECK(end_checkpointed == end_plain);       // the recomputation redrew it, then gave the position back
  CHECK(max(abs(got[0] - expected[0])).item() == 0.0);
  REQUIRE(got.size() == expected.size());
  CHECK(max(abs(expected[1])).item() > 0.1);  // a gradient to compare
  for (std::size_t i = 1; i < got.size(); ++i) CHECK(max(abs(got[i] - expected[i])).item() < 1e-12);
  CHECK(kept_checkpointed == 96 * sizeof(double));                // y alone (x existed before)
  CHECK(kept_plain == kept_checkpointed + 3 * 96 * sizeof(double));  // y, q, k and v
  layer.eval();
  require_layer("checkpoint(MultiHeadSelfAttention)", layer, [&](const TensorD& x) { return checkpoint(layer, x); },
                randn<double>({2, 5, 8}, gen), {.expect_train_eval_differ = true});
}

TEST_CASE("Dropout: seeded inverted dropout, identity in eval") {
  Dropout<float> drop(0.25, 7);
  const TensorF x = ones<float>({10000});
  const auto kept = drop(x).to_vector();
  int zeros_seen = 0;
  for (float v : kept) {
    if (v == 0) ++zeros_seen;
    else CHECK(v == doctest::Approx(1 / 0.75));
  }
  CHECK(zeros_seen > 2300);
  CHECK(zeros_seen < 2700);
  Dropout<float> same_seed(0.25, 7);
  CHECK(same_seed(x).to_vector() == kept);
  drop.eval();
  CHECK(drop(x).to_vector() == x.to_vector());
}

namespace {
// y = 3 x with a deliberately broken backward, to show check_layer catches it.
class BrokenScale : public Layer<double> {
 public:
  explicit BrokenScale(bool overwrite) : overwrite_(overwrite) {}
  TensorD forward(const TensorD& x) override {
    TensorD y = map(x.detach(), [](double v) { return 3 * v; });
    if (autograd::needs_grad(x))
      autograd::record(y, [x, overwrite = overwrite_](const TensorD& g) {
        if (overwrite) x.set_grad(g * 3.0);           // right value, but replaces the old gradient
        else autograd::accumulate_grad(x, g * 2.0);  // wrong value
      });
    return y;
  }

 private:
  bool overwrite_;
};
}  // namespace

TEST_CASE("check_layer catches a wrong gradient, an overwriting backward and an unexpected train/eval difference") {
  Generator gen(14);
  const TensorD x = randn<double>({3, 4}, gen);
  BrokenScale wrong(false), overwriting(true);
  const CheckLayerResult wrong_result = check_layer(wrong, x);
  CHECK_FALSE(wrong_result.passed);
  CHECK(wrong_result.max_input_error > 0.5);
  const CheckLayerResult overwrite_result = check_layer(overwriting, x);
  CHECK_FALSE(overwrite_result.passed);
  CHECK(overwrite_result.max_accumulate_error > 0.5);
  CHECK(overwrite_result.max_input_error < 1e-6);
  Dropout<double> drop(0.5, 3);
  const CheckLayerResult dropout_result = check_layer(drop, x);  // not told that dropout differs
  CHECK_FALSE(dropout_result.passed);
  CHECK(dropout_result.train_eval_differ);
}

TEST_CASE("save_state_dict / load_state_dict round trip through safetensors") {
  Generator gen(15);
  ResidualBlock<float> block(BlockType::basic, 4, 8, 2, gen);
  block.train();
  block(randn<float>({2, 4, 6, 6}, gen));  // moves the running stats away from their init
  const std::string path = "nn_state_roundtrip.safetensors";
  save_state_dict(block, path);
  ResidualBlock<float> copy(BlockType::basic, 4, 8, 2, gen);
  load_state_dict(copy, path);
  const auto expected = block.state_dict();
  const auto loaded = copy.state_dict();
  REQUIRE(loaded.size() == expected.size());
  for (const auto& entry : expected)  // no structured binding: the message captures it (clang < 16 cannot)
    CHECK_MESSAGE(loaded.at(entry.first).to_vector() == entry.second.to_vector(), entry.first);
  ResidualBlock<float> other_shape(BlockType::basic, 4, 16, 2, gen);
  CHECK_THROWS_AS(load_state_dict(other_shape, path), ShapeError);
  std::remove(path.c_str());
}

TEST_CASE("conv2d in float (image patches packed by the GEMM) against the float64 im2col path") {
  // Geometries whose GEMM panels cross output rows and samples (small outputs),
  // strides, dilation, padding wider than a row, groups, several samples. With
  // bf16 products (where this build has them) the reference convolves the input
  // and weights rounded to bf16: the patches are rounded as the GEMM packs them.
  struct Case {
    std::int64_t batch, in_c, out_c, height, width, kernel, stride, padding, dilation, groups;
  };
  const Case cases[] = {{2, 3, 8, 11, 13, 3, 1, 1, 1, 1}, {3, 4, 6, 9, 7, 3, 2, 1, 1, 2}, {2, 5, 7, 12, 10, 7, 2, 3, 1, 1},
                        {4, 6, 5, 5, 3, 3, 1, 2, 2, 1},   {2, 4, 4, 6, 6, 1, 2, 0, 1, 1}, {3, 2, 9, 4, 1, 3, 3, 1, 1, 1},
                        {1, 8, 40, 15, 15, 3, 1, 1, 1, 1}, {1, 64, 8, 50, 50, 3, 1, 1, 1, 1}};  // last: 576-deep, 2500 wide (several slices and column blocks)
  Generator gen(17);
  for (const Case& c : cases) {
    INFO("batch ", c.batch, ", channels ", c.in_c, " -> ", c.out_c, ", input ", c.height, "x", c.width, ", kernel ", c.kernel,
         ", stride ", c.stride, ", padding ", c.padding, ", dilation ", c.dilation, ", groups ", c.groups);
    const TensorF x = randn<float>({c.batch, c.in_c, c.height, c.width}, gen);
    const TensorF w = randn<float>({c.out_c, c.in_c / c.groups, c.kernel, c.kernel}, gen);
    const TensorF b = randn<float>({c.out_c}, gen);
    const Window2d window{.stride = {c.stride, c.stride}, .padding = {c.padding, c.padding}, .dilation = {c.dilation, c.dilation}};
    for (const MatmulPrecision precision : {MatmulPrecision::fp32, MatmulPrecision::bf16}) {
      CAPTURE(static_cast<int>(precision));
      const MatmulPrecisionGuard guard(precision);
      const bool rounded = precision == MatmulPrecision::bf16 && bf16_matmul_available;
      const TensorF y = conv2d(x, w, b, window, c.groups);
      const TensorD expected = conv2d(as_double(x, rounded), as_double(w, rounded), as_double(b), window, c.groups);
      CHECK(y.shape() == expected.shape());
      CHECK(relative_error(y, expected) < 1e-6);
    }
  }
}

TEST_CASE("bf16 products keep a transformer layer within 0.1 % of fp32, and change nothing without the kernel") {
  Generator gen(23);
  TransformerLayer<float> layer({.attention = {.hidden_size = 64, .num_heads = 4, .attention_dropout = 0, .hidden_dropout = 0},
                                 .intermediate_size = 256},
                                gen);
  layer.train(false);
  const TensorF x = randn<float>({2, 30, 64}, gen);
  const NoGradGuard no_grad;
  const TensorF fp32 = layer.forward(x);
  const MatmulPrecisionGuard bf16(MatmulPrecision::bf16);
  const double error = relative_error(layer.forward(x), as_double(fp32));
  if (bf16_matmul_available) {
    CHECK(error > 1e-5);  // the products did run in bf16 (fp32 reorderings stay near 1e-7)
    CHECK(error < 1e-3);  // 9e-5 here: rounding errors of 2^-9 average out over the dot products
  } else {
    CHECK(error == 0);
  }
}

TEST_CASE("check_layer: pointwise and chunked convolutions") {
  Generator gen(16);
  // 1x1 stride 1: the direct path (no im2col), with groups and bias.
  Conv2d<double> pointwise({.in_channels = 4, .out_channels = 6, .kernel_size = 1, .groups = 2}, gen);
  require_layer("Conv2d 1x1", pointwise, randn<double>({3, 4, 3, 5}, gen));
  // Large enough that a chunk holds fewer samples than the batch (im2col buffer budget).
  Conv2d<float> big({.in_channels = 64, .out_channels = 2, .kernel_size = 3, .padding = 1}, gen);
  const TensorF x = randn<float>({3, 64, 52, 52}, gen);  // 576 x 2704 per sample: chunks of 2 and 1
  NoGradGuard no_grad;
  const TensorF y = big(x);
  for (std::int64_t n = 0; n < 3; ++n)
    CHECK(relative_error(select(y, 0, n), as_double(big(narrow(x, 0, n, 1)).select(0, 0))) < 1e-6);
}

// A layer of many trivial ops, so that its recomputation grows the tape past its pruning point.
struct ManyOps : Layer<double> {
  TensorD forward(const TensorD& x) override {
    TensorD y = x;
    for (int i = 0; i < 200; ++i) y = y * 1.0;
    return y;
  }
};

TEST_CASE("checkpoint: a recomputation that grows the tape keeps the gradients still waiting on it") {
  const TensorD w = full<double>({1}, 1.0).requires_grad_(), x = full<double>({1}, 2.0).requires_grad_();
  ManyOps layer;
  TensorD out;
  {
    const TensorD h = w * 3.0;  // its gradient waits on the tape while the checkpoint recomputes
    TensorD f = x;
    for (int i = 0; i < 1000; ++i) f = f * 1.0;
    out = sum(h + checkpoint(layer, f));
  }
  out.backward();
  REQUIRE(w.grad().defined());
  CHECK(w.grad().item() == 3.0);
  CHECK(x.grad().item() == 1.0);
}

TEST_CASE("layers: default dropout seeds differ, batch-norm statistics must be contiguous") {
  Dropout<float> a(0.5), b(0.5);  // distinct default seeds: distinct masks
  const TensorF x = ones<float>({64});
  CHECK(a(x).to_vector() != b(x).to_vector());
  const TensorF per_channel = ones<float>({1});
  CHECK_THROWS_AS(batch_norm(zeros<float>({2, 4, 3}), per_channel.expand({4}), zeros<float>({4}), zeros<float>({4}), ones<float>({4}), true, 0.1, 1e-5),
                  ShapeError);
}
