#pragma once
// Weight initialization, seeded through metro::Generator.
//   torch_default: PyTorch's nn.Linear / nn.Conv2d default, kaiming_uniform(a = sqrt 5),
//                  i.e. weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
//   bert:          BERT / METRO (HF `init_weights`): weight ~ N(0, 0.02), bias 0.
//   resnet:        torchvision ResNet: kaiming_normal(fan_out, relu), std sqrt(2 / fan_out), bias 0.
#include <cmath>

#include "metro/tensor.hpp"

namespace metro::nn {

enum class Init { torch_default, bert, resnet };

// A (weight, bias) pair initialized by `scheme`; `bias_shape` empty means no bias.
template <class T, class D>
struct WeightBias {
  Tensor<T, D> weight, bias;
};

template <class T, class D = cpu>
WeightBias<T, D> init_weight_bias(Init scheme, const Shape& weight_shape, const Shape& bias_shape, std::int64_t fan_in,
                                  std::int64_t fan_out, Generator& gen) {
  WeightBias<T, D> out;
  const bool has_bias = !bias_shape.empty();
  if (scheme == Init::torch_default) {
    const T bound = T(1) / std::sqrt(static_cast<T>(fan_in));
    out.weight = rand<T, D>(weight_shape, gen, -bound, bound);
    if (has_bias) out.bias = rand<T, D>(bias_shape, gen, -bound, bound);
    return out;
  }
  const T stddev = scheme == Init::bert ? T(0.02) : std::sqrt(T(2) / static_cast<T>(fan_out));
  out.weight = randn<T, D>(weight_shape, gen, T(0), stddev);
  if (has_bias) out.bias = zeros<T, D>(bias_shape);
  return out;
}

}  // namespace metro::nn
