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
// METRO Sec. 3.2: self-attention without a mask (all tokens attend to all tokens).
#include <cmath>
#include <memory>
#include <vector>

#include "metro/nn/activation.hpp"
#include "metro/nn/checkpoint.hpp"
#include "metro/nn/linear.hpp"
#include "metro/nn/norm.hpp"

namespace metro::nn {

struct AttentionConfig {
  std::int64_t hidden_size = 0, num_heads = 1;
  double attention_dropout = 0.1;  // on the attention probabilities
  double hidden_dropout = 0.1;     // after each output dense
  double layer_norm_eps = 1e-12;
  Init init = Init::bert;
  // Recompute the self-attention (the q, k, v projections and the attention) in
  // the backward instead of keeping q, k and v (nn::checkpoint): 3 of the 8
  // (B, N, H) tensors a layer keeps, 44 MB per layer at batch 8 with 445 tokens
  // and H = 1024, for about 6% more time in a METRO training step.
  bool checkpoint_self_attention = true;
};

struct TransformerLayerConfig {
  AttentionConfig attention;
  std::int64_t intermediate_size = 0;
};

// dropout(softmax(scale q k^T)) v for q, k, v (B, h, N, d) -> (B, h, N, d), the
// attention of every head (METRO Sec. 3.2, as BERT's self-attention). One op that
// keeps only q, k and v on the tape: the backward recomputes the (B, h, N, N)
// probabilities (one batched GEMM and a softmax) and redraws the dropout mask, where
// the composed ops would keep the probabilities, 25 MB per layer at batch 8 with
// 445 tokens and 4 heads. The forward needs one (B, h, N, N) buffer, the backward
// two. `probs`, when given, receives the probabilities.
template <class T, class D>
Tensor<T, D> attention_context(const Tensor<T, D>& q, const Tensor<T, D>& k, const Tensor<T, D>& v, T scale, Dropout<T, D>& drop,
                               Tensor<T, D>* probs = nullptr) {
  const auto lead = [](const Tensor<T, D>& t) { return std::vector<std::int64_t>(t.shape().begin(), t.shape().end() - 2); };
  if (q.dim() < 2 || k.dim() != q.dim() || v.dim() != q.dim() || !(lead(k) == lead(q)) || !(lead(v) == lead(q)) ||
      k.shape().back() != q.shape().back() || v.shape()[v.dim() - 2] != k.shape()[k.dim() - 2])
    throw ShapeError("attention_context: q " + q.shape().str() + ", k " + k.shape().str() + " and v " + v.shape().str() + " do not match");
  const auto probabilities = [q = q.detach(), k = k.detach(), scale] {
    Tensor<T, D> p = metro::detail::matmul_forward(q, transpose(k, -1, -2));  // (B, h, N, N), softmax in place
    const std::int64_t n = p.shape().back();
    backend::Kernels<D>::softmax_rows(p.data(), p.data(), p.numel() / n, n, scale, false);
    return p;
  };
  Tensor<T, D> p = probabilities();
  const bool dropping = drop.is_training() && drop.p() > 0;
  const std::uint64_t seed = drop.generator().seed();
  const std::uint64_t first = dropping ? drop.generator().reserve(static_cast<std::uint64_t>(p.numel())) : 0;
  // dropout(t), in place when t may be overwritten, else into a copy.
  const auto dropped = [dropping, seed, first, rate = drop.p()](Tensor<T, D> t, bool in_place) {
    if (!dropping) return t;
    if (!in_place) t = clone(t);
    detail::apply_dropout_mask<T, D>(t.data(), t.data(), t.numel(), seed, first, rate);
    return t;
  };
  if (probs) *probs = p;
  p = dropped(p, !probs);
  Tensor<T, D> y = metro::detail::matmul_forward(p, v.detach());
  if (autograd::needs_grad(q, k, v))
    autograd::record(y, [q, k, v, scale, probabilities, dropped](const Tensor<T, D>& g) {
      Tensor<T, D> p = probabilities();  // (B, h, N, N)
      if (q.requires_grad() || k.requires_grad()) {
        // dL/d dropout(p), then dL/dp, then dL/d(q k^T), in place
        Tensor<T, D> gs = dropped(contiguous(metro::detail::matmul_forward(g, transpose(v.detach(), -1, -2))), true);
        const std::int64_t n = p.shape().back();
        backend::Kernels<D>::softmax_rows_backward(p.data(), gs.data(), gs.data(), p.numel() / n, n, scale, false);
        if (q.requires_grad()) autograd::accumulate_grad(q, metro::detail::matmul_forward(gs, k.detach()));
        if (k.requires_grad()) autograd::accumulate_grad(k, metro::detail::matmul_forward(transpose(gs, -1, -2), q.detach()));
      }
      if (v.requires_grad()) autograd::accumulate_grad(v, metro::detail::matmul_forward(transpose(dropped(p, true), -1, -2), g));
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
    const Tensor<T, D> context = attention_context(q, k, v, scale, *dropout_, keep_attention_ ? &last_attention_ : nullptr);  // (B, h, N, d)
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

// gelu_erf(dense(a)), (B, N, H) -> (B, N, I).
template <class T, class D = cpu>
class Intermediate : public Layer<T, D> {
 public:
  Intermediate(std::int64_t hidden, std::int64_t intermediate, Init init, Generator& gen) {
    dense_ = this->register_module("dense", std::make_shared<Linear<T, D>>(LinearConfig{hidden, intermediate, true, init}, gen));
  }
  Tensor<T, D> forward(const Tensor<T, D>& x) override { return gelu(dense_->forward(x)); }
  const Linear<T, D>& dense() const noexcept { return *dense_; }

 private:
  std::shared_ptr<Linear<T, D>> dense_;
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
  // BERT's Output after its Intermediate, LayerNorm(dropout(dense(intermediate(a))) + a)
  // for a (B, N, H), through feed_forward: the tape keeps no (B, N, I) tensor.
  Tensor<T, D> forward_after(const Intermediate<T, D>& intermediate, const Tensor<T, D>& a) {
    const Linear<T, D>& inner = intermediate.dense();
    return finish(feed_forward(a, inner.weight(), inner.bias(), dense_->weight(), dense_->bias()), a);
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
  explicit Attention(const AttentionConfig& config, Generator& gen = default_generator())
      : checkpoint_self_(config.checkpoint_self_attention) {
    self_ = this->register_module("self", std::make_shared<MultiHeadSelfAttention<T, D>>(config, gen));
    output_ = this->register_module("output", std::make_shared<ResidualOutput<T, D>>(config.hidden_size, config, gen));
  }
  // (B, N, H) -> (B, N, H)
  Tensor<T, D> forward(const Tensor<T, D>& x) override {
    return output_->forward(checkpoint_self_ ? checkpoint(*self_, x) : self_->forward(x), x);
  }
  MultiHeadSelfAttention<T, D>& self_attention() noexcept { return *self_; }

 private:
  bool checkpoint_self_;
  std::shared_ptr<MultiHeadSelfAttention<T, D>> self_;
  std::shared_ptr<ResidualOutput<T, D>> output_;
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
    return output_->forward_after(*intermediate_, a);
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
