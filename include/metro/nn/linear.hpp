#pragma once
// Linear (y = x W^T + b, W (out, in) as PyTorch) and Embedding (a lookup table).
#include <memory>

#include "metro/nn/init.hpp"
#include "metro/nn/module.hpp"

namespace metro::nn {

struct LinearConfig {
  std::int64_t in_features = 0, out_features = 0;
  bool bias = true;
  Init init = Init::torch_default;
};

template <class T, class D = cpu>
class Linear : public Layer<T, D> {
 public:
  explicit Linear(const LinearConfig& config, Generator& gen = default_generator()) : config_(config) {
    if (config.in_features <= 0 || config.out_features <= 0)
      throw ValueError("Linear: feature counts must be positive, got " + std::to_string(config.in_features) + " -> " +
                       std::to_string(config.out_features));
    auto init = init_weight_bias<T, D>(config.init, {config.out_features, config.in_features},
                                       config.bias ? Shape{config.out_features} : Shape{}, config.in_features,
                                       config.out_features, gen);
    weight_ = this->register_parameter("weight", init.weight);
    if (config.bias) bias_ = this->register_parameter("bias", init.bias);
  }

  // (..., in) -> (..., out)
  Tensor<T, D> forward(const Tensor<T, D>& x) override { return linear(x, weight_, bias_); }

  const LinearConfig& config() const noexcept { return config_; }
  const Tensor<T, D>& weight() const noexcept { return weight_; }
  const Tensor<T, D>& bias() const noexcept { return bias_; }

 private:
  LinearConfig config_;
  Tensor<T, D> weight_, bias_;
};

struct EmbeddingConfig {
  std::int64_t num_embeddings = 0, embedding_dim = 0;
  Init init = Init::bert;  // BERT's N(0, 0.02); torch_default gives PyTorch's N(0, 1)
};

template <class T, class D = cpu>
class Embedding : public Module<T, D> {
 public:
  explicit Embedding(const EmbeddingConfig& config, Generator& gen = default_generator()) : config_(config) {
    if (config.num_embeddings <= 0 || config.embedding_dim <= 0) throw ValueError("Embedding: sizes must be positive");
    const T stddev = config.init == Init::bert ? T(0.02) : T(1);
    weight_ = this->register_parameter("weight", randn<T, D>({config.num_embeddings, config.embedding_dim}, gen, T(0), stddev));
  }

  // ids (...) of int64 in [0, num_embeddings) -> (..., embedding_dim)
  Tensor<T, D> forward(const Tensor<std::int64_t, D>& ids) const {
    Shape out = ids.shape();
    out.push_back(config_.embedding_dim);
    return reshape(index_select(weight_, 0, flatten(ids)), out);
  }
  // The first `count` rows, (count, embedding_dim): position embeddings 0..count-1.
  Tensor<T, D> first_rows(std::int64_t count) const { return narrow(weight_, 0, 0, count); }

  const Tensor<T, D>& weight() const noexcept { return weight_; }

 private:
  EmbeddingConfig config_;
  Tensor<T, D> weight_;
};

}  // namespace metro::nn
