#pragma once
// The post-LN BERT layer of the official METRO encoder (HuggingFace BERT names):
//
//   TransformerLayer              "attention.*", "intermediate.*", "output.*"
//     Attention                   "self.*", "output.*"
//       MultiHeadSelfAttention    "query", "key", "value"
//       ResidualOutput            "dense", "LayerNorm": LayerNorm(dropout(dense(h)) + residual)
//     Intermediate                "dense": gelu_erf(dense(a))
//     ResidualOutput              "dense", "LayerNorm"
//
// METRO Sec. 3.1: self-attention without a mask (all tokens attend to all tokens).
#include <cmath>
#include <memory>

#include "metro/nn/activation.hpp"
#include "metro/nn/linear.hpp"
#include "metro/nn/norm.hpp"

namespace metro::nn {

struct AttentionConfig {
  std::int64_t hidden_size = 0, num_heads = 1;
  double attention_dropout = 0.1;  // on the attention probabilities
  double hidden_dropout = 0.1;     // after each output dense
  double layer_norm_eps = 1e-12;
  Init init = Init::bert;
};

struct TransformerLayerConfig {
  AttentionConfig attention;
  std::int64_t intermediate_size = 0;
};

// matmul(dropout(probs), v) for attention probabilities probs (B, h, N, N) and
// values v (B, h, N, d). In training the dropped probabilities are not kept for
// the backward (probs already is, by softmax): the backward redraws the same mask.
template <class T, class D>
Tensor<T, D> dropout_matmul(const Tensor<T, D>& probs, const Tensor<T, D>& v, Dropout<T, D>& drop) {
  if (!drop.is_training() || drop.p() == 0) return matmul(probs, v);
  const Tensor<T, D> p = contiguous(probs.detach());
  const std::uint64_t seed = drop.generator().seed();
  const std::uint64_t first = drop.generator().reserve(static_cast<std::uint64_t>(p.numel()));
  const auto dropped = [p, seed, first, rate = drop.p()] {
    Tensor<T, D> out = empty<T, D>(p.shape());
    detail::apply_dropout_mask<T, D>(p.data(), out.data(), p.numel(), seed, first, rate);
    return out;
  };
  Tensor<T, D> y = metro::detail::matmul_forward(dropped(), v.detach());
  if (autograd::needs_grad(probs, v))
    autograd::record(y, [tp = autograd::grad_target(probs), v, dropped, seed, first, rate = drop.p()](const Tensor<T, D>& g) {
      if (v.requires_grad()) autograd::accumulate_grad(v, metro::detail::matmul_forward(transpose(dropped(), -1, -2), g));
      if (tp.requires_grad()) {
        Tensor<T, D> g_dropped = contiguous(metro::detail::matmul_forward(g, transpose(v.detach(), -1, -2)));
        detail::apply_dropout_mask<T, D>(g_dropped.data(), g_dropped.data(), g_dropped.numel(), seed, first, rate);
        autograd::accumulate_grad(tp, g_dropped);
      }
    });
  return y;
}

// softmax(Q K^T / sqrt(d)) V over h heads of size d = H / h; (B, N, H) -> (B, N, H).
template <class T, class D = cpu>
class MultiHeadSelfAttention : public Layer<T, D> {
 public:
  explicit MultiHeadSelfAttention(const AttentionConfig& config, Generator& gen = default_generator())
      : config_(config) {
    if (config.num_heads <= 0 || config.hidden_size % config.num_heads != 0)
      throw ValueError("MultiHeadSelfAttention: hidden size " + std::to_string(config.hidden_size) +
                       " is not a multiple of the head count " + std::to_string(config.num_heads));
    const LinearConfig projection{config.hidden_size, config.hidden_size, true, config.init};
    query_ = this->register_module("query", std::make_shared<Linear<T, D>>(projection, gen));
    key_ = this->register_module("key", std::make_shared<Linear<T, D>>(projection, gen));
    value_ = this->register_module("value", std::make_shared<Linear<T, D>>(projection, gen));
    dropout_ = this->register_module("dropout", std::make_shared<Dropout<T, D>>(config.attention_dropout, fresh_seed(gen)));
  }

  Tensor<T, D> forward(const Tensor<T, D>& x) override {
    if (x.dim() != 3 || x.shape()[2] != config_.hidden_size)
      throw ShapeError("MultiHeadSelfAttention: expected (B, N, " + std::to_string(config_.hidden_size) + "), got " + x.shape().str());
    const std::int64_t batch = x.shape()[0], tokens = x.shape()[1], heads = config_.num_heads;
    const std::int64_t head_size = config_.hidden_size / heads;
    // (B, N, H) -> (B, N, h, d) -> (B, h, N, d); head j holds features j*d .. j*d+d-1.
    const auto split_heads = [&](const Tensor<T, D>& t) { return permute(reshape(t, {batch, tokens, heads, head_size}), {0, 2, 1, 3}); };
    const Tensor<T, D> q = split_heads(query_->forward(x)), k = split_heads(key_->forward(x)), v = split_heads(value_->forward(x));
    const T scale = T(1) / std::sqrt(static_cast<T>(head_size));
    Tensor<T, D> probs = softmax(matmul(q, transpose(k, -1, -2)), -1, scale);  // (B, h, N, N)
    if (keep_attention_) last_attention_ = probs.detach();
    const Tensor<T, D> context = dropout_matmul(probs, v, *dropout_);  // (B, h, N, d)
    return reshape(permute(context, {0, 2, 1, 3}), {batch, tokens, config_.hidden_size});
  }

  // Keep the probabilities of each forward for last_attention() (attention pictures).
  void keep_attention(bool on) { keep_attention_ = on, last_attention_ = Tensor<T, D>(); }
  // (B, heads, N, N) of the last forward; undefined unless keep_attention(true).
  const Tensor<T, D>& last_attention() const noexcept { return last_attention_; }

 private:
  AttentionConfig config_;
  std::shared_ptr<Linear<T, D>> query_, key_, value_;
  std::shared_ptr<Dropout<T, D>> dropout_;
  bool keep_attention_ = false;
  Tensor<T, D> last_attention_;
};

// LayerNorm(dropout(dense(h)) + residual): BERT's SelfOutput and Output.
template <class T, class D = cpu>
class ResidualOutput : public Module<T, D> {
 public:
  ResidualOutput(std::int64_t in_features, const AttentionConfig& config, Generator& gen) {
    dense_ = this->register_module("dense", std::make_shared<Linear<T, D>>(LinearConfig{in_features, config.hidden_size, true, config.init}, gen));
    norm_ = this->register_module("LayerNorm", std::make_shared<LayerNorm<T, D>>(LayerNormConfig{config.hidden_size, config.layer_norm_eps}));
    dropout_ = this->register_module("dropout", std::make_shared<Dropout<T, D>>(config.hidden_dropout, fresh_seed(gen)));
  }
  // h (B, N, in), residual (B, N, H) -> (B, N, H)
  Tensor<T, D> forward(const Tensor<T, D>& h, const Tensor<T, D>& residual) { return finish(dense_->forward(h), residual); }
  // The same on gelu(h), BERT's Output after the Intermediate, without keeping
  // gelu(h) on the tape (gelu_linear recomputes it in the backward).
  Tensor<T, D> forward_after_gelu(const Tensor<T, D>& h, const Tensor<T, D>& residual) {
    return finish(gelu_linear(h, dense_->weight(), dense_->bias()), residual);
  }

 private:
  Tensor<T, D> finish(const Tensor<T, D>& dense_out, const Tensor<T, D>& residual) {
    return norm_->forward(dropout_->forward(dense_out) + residual);
  }

  std::shared_ptr<Linear<T, D>> dense_;
  std::shared_ptr<LayerNorm<T, D>> norm_;
  std::shared_ptr<Dropout<T, D>> dropout_;
};

// BERT's BertAttention: self-attention, then dense + dropout + residual + LayerNorm.
template <class T, class D = cpu>
class Attention : public Layer<T, D> {
 public:
  explicit Attention(const AttentionConfig& config, Generator& gen = default_generator()) {
    self_ = this->register_module("self", std::make_shared<MultiHeadSelfAttention<T, D>>(config, gen));
    output_ = this->register_module("output", std::make_shared<ResidualOutput<T, D>>(config.hidden_size, config, gen));
  }
  // (B, N, H) -> (B, N, H)
  Tensor<T, D> forward(const Tensor<T, D>& x) override { return output_->forward(self_->forward(x), x); }
  MultiHeadSelfAttention<T, D>& self_attention() noexcept { return *self_; }

 private:
  std::shared_ptr<MultiHeadSelfAttention<T, D>> self_;
  std::shared_ptr<ResidualOutput<T, D>> output_;
};

// gelu_erf(dense(a)), (B, N, H) -> (B, N, I).
template <class T, class D = cpu>
class Intermediate : public Layer<T, D> {
 public:
  Intermediate(std::int64_t hidden, std::int64_t intermediate, Init init, Generator& gen) {
    dense_ = this->register_module("dense", std::make_shared<Linear<T, D>>(LinearConfig{hidden, intermediate, true, init}, gen));
  }
  Tensor<T, D> forward(const Tensor<T, D>& x) override { return gelu(pre_activation(x)); }
  // dense(x), the GELU's input (B, N, I).
  Tensor<T, D> pre_activation(const Tensor<T, D>& x) { return dense_->forward(x); }

 private:
  std::shared_ptr<Linear<T, D>> dense_;
};

// One post-LN BERT layer (HF BertLayer), (B, N, H) -> (B, N, H):
//   a = Attention(x);  y = LayerNorm(dropout(dense(gelu(dense_i(a)))) + a)
template <class T, class D = cpu>
class TransformerLayer : public Layer<T, D> {
 public:
  explicit TransformerLayer(const TransformerLayerConfig& config, Generator& gen = default_generator()) {
    const AttentionConfig& a = config.attention;
    if (config.intermediate_size <= 0) throw ValueError("TransformerLayer: intermediate_size must be positive");
    attention_ = this->register_module("attention", std::make_shared<Attention<T, D>>(a, gen));
    intermediate_ = this->register_module("intermediate", std::make_shared<Intermediate<T, D>>(a.hidden_size, config.intermediate_size, a.init, gen));
    output_ = this->register_module("output", std::make_shared<ResidualOutput<T, D>>(config.intermediate_size, a, gen));
  }
  Tensor<T, D> forward(const Tensor<T, D>& x) override {
    const Tensor<T, D> a = attention_->forward(x);  // (B, N, H)
    last_attention_output_ = a.detach();
    return output_->forward_after_gelu(intermediate_->pre_activation(a), a);  // the tape keeps no gelu output
  }
  MultiHeadSelfAttention<T, D>& self_attention() noexcept { return attention_->self_attention(); }
  // The attention sub-block's output `a` of the last forward (B, N, H), for debugging.
  const Tensor<T, D>& last_attention_output() const noexcept { return last_attention_output_; }

 private:
  std::shared_ptr<Attention<T, D>> attention_;
  std::shared_ptr<Intermediate<T, D>> intermediate_;
  std::shared_ptr<ResidualOutput<T, D>> output_;
  Tensor<T, D> last_attention_output_;
};

}  // namespace metro::nn
