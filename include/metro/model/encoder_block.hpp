#pragma once
// One METRO transformer encoder block (paper Sec. 3.2, official METRO_Encoder + head):
//
//   x (B, N, in) -> img_embedding Linear(in -> hidden) + position_embeddings[0:N]
//                -> dropout -> BERT layers (post-LN, hidden) -> cls_head Linear(hidden -> out)
//                + residual Linear(in -> out) of x                         -> (B, N, out)
//
// The residual Linear is in the official code, not in the paper's description.
// Names follow the official checkpoint: img_embedding.*, position_embeddings.weight,
// encoder.layer.<i>.*, cls_head.*, residual.*.
#include <memory>
#include <string>

#include "metro/model/config.hpp"
#include "metro/nn/nn.hpp"

namespace metro::model {

// The stack of BERT layers, named "layer.<i>" as in HuggingFace's BertEncoder.
template <class T, class D = cpu>
class BertEncoder : public nn::Layer<T, D> {
 public:
  BertEncoder(const nn::TransformerLayerConfig& config, std::int64_t layers, Generator& gen) {
    layers_ = this->register_module("layer", std::make_shared<nn::Sequential<T, D>>());
    for (std::int64_t i = 0; i < layers; ++i) {
      auto layer = std::make_shared<nn::TransformerLayer<T, D>>(config, gen);
      transformer_layers_.push_back(layer);
      layers_->push_back(layer);
    }
  }
  Tensor<T, D> forward(const Tensor<T, D>& x) override { return layers_->forward(x); }
  const std::vector<std::shared_ptr<nn::TransformerLayer<T, D>>>& layers() const noexcept { return transformer_layers_; }

 private:
  std::shared_ptr<nn::Sequential<T, D>> layers_;
  std::vector<std::shared_ptr<nn::TransformerLayer<T, D>>> transformer_layers_;
};

template <class T, class D = cpu>
class MetroEncoderBlock : public nn::Layer<T, D> {
 public:
  MetroEncoderBlock(const EncoderBlockConfig& config, std::int64_t position_rows, double dropout, Generator& gen = default_generator())
      : config_(config) {
    using nn::Init, nn::LinearConfig;
    img_embedding_ = this->register_module("img_embedding", std::make_shared<nn::Linear<T, D>>(LinearConfig{config.in, config.hidden, true, Init::bert}, gen));
    position_embeddings_ = this->register_module("position_embeddings", std::make_shared<nn::Embedding<T, D>>(nn::EmbeddingConfig{position_rows, config.hidden}, gen));
    dropout_ = this->register_module("dropout", std::make_shared<nn::Dropout<T, D>>(dropout, nn::fresh_seed(gen)));
    const nn::TransformerLayerConfig layer{{config.hidden, config.heads, dropout, dropout, 1e-12, Init::bert, config.checkpoint_self_attention},
                                           config.intermediate};
    encoder_ = this->register_module("encoder", std::make_shared<BertEncoder<T, D>>(layer, config.layers, gen));
    cls_head_ = this->register_module("cls_head", std::make_shared<nn::Linear<T, D>>(LinearConfig{config.hidden, config.out, true, Init::bert}, gen));
    residual_ = this->register_module("residual", std::make_shared<nn::Linear<T, D>>(LinearConfig{config.in, config.out, true, Init::bert}, gen));
  }

  // (B, N, in) -> (B, N, out)
  Tensor<T, D> forward(const Tensor<T, D>& x) override {
    if (x.dim() != 3 || x.shape()[2] != config_.in)
      throw ShapeError("MetroEncoderBlock: expected (B, N, " + std::to_string(config_.in) + "), got " + x.shape().str());
    const std::int64_t tokens = x.shape()[1];
    if (tokens > position_embeddings_->weight().shape()[0])
      throw ShapeError("MetroEncoderBlock: " + std::to_string(tokens) + " tokens exceed the position table of " +
                       position_embeddings_->weight().shape().str());
    const Tensor<T, D> embedded = img_embedding_->forward(x) + position_embeddings_->first_rows(tokens);  // (B, N, hidden)
    const Tensor<T, D> hidden = encoder_->forward(dropout_->forward(embedded));                           // (B, N, hidden)
    return cls_head_->forward(hidden) + residual_->forward(x);                                            // (B, N, out)
  }

  const EncoderBlockConfig& config() const noexcept { return config_; }
  const BertEncoder<T, D>& encoder() const noexcept { return *encoder_; }

 private:
  EncoderBlockConfig config_;
  std::shared_ptr<nn::Linear<T, D>> img_embedding_, cls_head_, residual_;
  std::shared_ptr<nn::Embedding<T, D>> position_embeddings_;
  std::shared_ptr<nn::Dropout<T, D>> dropout_;
  std::shared_ptr<BertEncoder<T, D>> encoder_;
};

}  // namespace metro::model
