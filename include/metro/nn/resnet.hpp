#pragma once
// ResNet backbones (He et al. 2016) with torchvision's v1.5 names and semantics
// (the stride sits on the 3x3 conv of a Bottleneck). METRO (Sec. 4) uses the
// ResNet-50 trunk without its classifier: the last feature grid (B, 2048, H/32, W/32).
#include <memory>
#include <vector>

#include "metro/nn/activation.hpp"
#include "metro/nn/norm.hpp"
#include "metro/nn/pool.hpp"

namespace metro::nn {

enum class BlockType { basic, bottleneck };

inline std::int64_t block_expansion(BlockType type) { return type == BlockType::basic ? 1 : 4; }

namespace detail {
template <class T, class D>
std::shared_ptr<Conv2d<T, D>> resnet_conv(std::int64_t in, std::int64_t out, std::int64_t kernel, std::int64_t stride, Generator& gen) {
  return std::make_shared<Conv2d<T, D>>(
      Conv2dConfig{in, out, kernel, stride, kernel / 2, 1, 1, false, Init::resnet}, gen);
}
template <class T, class D>
std::shared_ptr<BatchNorm2d<T, D>> resnet_bn(std::int64_t channels) {
  return std::make_shared<BatchNorm2d<T, D>>(BatchNormConfig{channels, 1e-5, 0.1});
}
}  // namespace detail

// One residual block; "downsample" (1x1 conv + BN) exists when the shape changes.
//   basic:      relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)),        3x3, 3x3
//   bottleneck: relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x)))))))) + shortcut(x)),  1x1, 3x3 (stride), 1x1
template <class T, class D = cpu>
class ResidualBlock : public Layer<T, D> {
 public:
  ResidualBlock(BlockType type, std::int64_t inplanes, std::int64_t planes, std::int64_t stride, Generator& gen = default_generator()) {
    using detail::resnet_bn, detail::resnet_conv;
    const std::int64_t out = planes * block_expansion(type);
    if (type == BlockType::basic) {
      add(resnet_conv<T, D>(inplanes, planes, 3, stride, gen), resnet_bn<T, D>(planes));
      add(resnet_conv<T, D>(planes, planes, 3, 1, gen), resnet_bn<T, D>(planes));
    } else {
      add(resnet_conv<T, D>(inplanes, planes, 1, 1, gen), resnet_bn<T, D>(planes));
      add(resnet_conv<T, D>(planes, planes, 3, stride, gen), resnet_bn<T, D>(planes));
      add(resnet_conv<T, D>(planes, out, 1, 1, gen), resnet_bn<T, D>(out));
    }
    if (stride != 1 || inplanes != out) {
      auto shortcut = std::make_shared<Sequential<T, D>>();
      shortcut->push_back(resnet_conv<T, D>(inplanes, out, 1, stride, gen));
      shortcut->push_back(resnet_bn<T, D>(out));
      downsample_ = this->register_module("downsample", shortcut);
    }
  }

  // (N, inplanes, H, W) -> (N, planes * expansion, H / stride, W / stride)
  Tensor<T, D> forward(const Tensor<T, D>& x) override {
    Tensor<T, D> out = x;
    for (std::size_t i = 0; i < convs_.size(); ++i) {
      out = norms_[i]->forward(convs_[i]->forward(out));
      if (i + 1 < convs_.size()) out = relu(out);
    }
    return relu(out + (downsample_ ? downsample_->forward(x) : x));
  }

 private:
  void add(std::shared_ptr<Conv2d<T, D>> conv, std::shared_ptr<BatchNorm2d<T, D>> norm) {
    const std::string index = std::to_string(convs_.size() + 1);
    convs_.push_back(this->register_module("conv" + index, std::move(conv)));
    norms_.push_back(this->register_module("bn" + index, std::move(norm)));
  }

  std::vector<std::shared_ptr<Conv2d<T, D>>> convs_;
  std::vector<std::shared_ptr<BatchNorm2d<T, D>>> norms_;
  std::shared_ptr<Sequential<T, D>> downsample_;
};

struct ResNetConfig {
  BlockType block = BlockType::bottleneck;
  std::vector<std::int64_t> layers{3, 4, 6, 3};  // blocks per stage
  std::int64_t base_width = 64;                  // stem channels and first-stage planes; doubles per stage
  std::int64_t in_channels = 3;
};

// The trunk: conv1 7x7/2, bn1, relu, maxpool 3x3/2, layer1..layerK (stride 1, 2, 2, ...).
// (N, 3, H, W) -> (N, C, H / 2^(K+1), W / 2^(K+1)); for 4 stages that is H/32.
template <class T, class D = cpu>
class ResNet : public Layer<T, D> {
 public:
  explicit ResNet(const ResNetConfig& config, Generator& gen = default_generator()) : config_(config) {
    if (config.layers.empty() || config.base_width <= 0) throw ValueError("ResNet: needs at least one stage and a positive width");
    conv1_ = this->register_module("conv1", std::make_shared<Conv2d<T, D>>(
        Conv2dConfig{config.in_channels, config.base_width, 7, 2, 3, 1, 1, false, Init::resnet}, gen));
    bn1_ = this->register_module("bn1", detail::resnet_bn<T, D>(config.base_width));
    std::int64_t inplanes = config.base_width;
    for (std::size_t stage = 0; stage < config.layers.size(); ++stage) {
      auto blocks = std::make_shared<Sequential<T, D>>();
      const std::int64_t planes = config.base_width << stage, stride = stage == 0 ? 1 : 2;
      for (std::int64_t b = 0; b < config.layers[stage]; ++b) {
        blocks->push_back(std::make_shared<ResidualBlock<T, D>>(config.block, inplanes, planes, b == 0 ? stride : 1, gen));
        inplanes = planes * block_expansion(config.block);
      }
      stages_.push_back(this->register_module("layer" + std::to_string(stage + 1), blocks));
    }
    out_channels_ = inplanes;
  }

  Tensor<T, D> forward(const Tensor<T, D>& x) override {
    Tensor<T, D> out = max_pool2d(relu(bn1_->forward(conv1_->forward(x))), 3, 2, 1);  // (N, w, H/4, W/4)
    for (auto& stage : stages_) out = stage->forward(out);
    return out;  // (N, out_channels, H/32, W/32) for four stages
  }
  std::int64_t out_channels() const noexcept { return out_channels_; }

 private:
  ResNetConfig config_;
  std::shared_ptr<Conv2d<T, D>> conv1_;
  std::shared_ptr<BatchNorm2d<T, D>> bn1_;
  std::vector<std::shared_ptr<Sequential<T, D>>> stages_;
  std::int64_t out_channels_ = 0;
};

// torchvision presets (trunks only, no fc).
template <class T, class D = cpu>
std::shared_ptr<ResNet<T, D>> resnet18(Generator& gen = default_generator()) {
  return std::make_shared<ResNet<T, D>>(ResNetConfig{BlockType::basic, {2, 2, 2, 2}}, gen);
}
template <class T, class D = cpu>
std::shared_ptr<ResNet<T, D>> resnet34(Generator& gen = default_generator()) {
  return std::make_shared<ResNet<T, D>>(ResNetConfig{BlockType::basic, {3, 4, 6, 3}}, gen);
}
template <class T, class D = cpu>
std::shared_ptr<ResNet<T, D>> resnet50(Generator& gen = default_generator()) {
  return std::make_shared<ResNet<T, D>>(ResNetConfig{BlockType::bottleneck, {3, 4, 6, 3}}, gen);
}

}  // namespace metro::nn
