#pragma once
// Comparing modules with the PyTorch fixtures of tools/make_fixtures.py
// (format and cases: tools/fixtures.md). Include after doctest.
#include <algorithm>
#include <cmath>
#include <functional>
#include <string>

#include "metro/nn/nn.hpp"

namespace metro::testing {

inline io::SafeTensorsFile fixture(const std::string& name) {
  return io::load_safetensors(METRO_TEST_DATA_DIR "/fixtures/" + name + ".safetensors");
}

inline TensorD fixture_tensor(const io::SafeTensorsFile& file, const std::string& key) {
  const auto it = file.tensors.find(key);
  REQUIRE_MESSAGE(it != file.tensors.end(), "fixture has no " << key);
  return nn::tensor_from_record<double>(it->second, key);
}

// ||a - b|| / max(||b||, 1e-2), norm-wise, in double. The floor is for gradients
// that are zero in exact math (the key bias: softmax ignores a per-row shift),
// where fp32 rounding leaves ~1e-7 and a pure ratio would be meaningless.
inline double relative_error(const TensorF& actual, const TensorD& expected) {
  REQUIRE_MESSAGE(actual.shape() == expected.shape(), actual.shape().str() << " vs " << expected.shape().str());
  const auto a = actual.to_vector();
  const auto b = expected.to_vector();
  double diff = 0, norm = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff += (a[i] - b[i]) * (a[i] - b[i]), norm += b[i] * b[i];
  return std::sqrt(diff) / std::max(std::sqrt(norm), 1e-2);
}

// Loads the fixture's parameters into `module` (strict), runs `forward` on input.x
// in fp32, feeds loss_weight.y as dL/dy and compares y, dL/dx, every dL/dparam and
// the BatchNorm buffers after the forward. Returns the largest relative error.
inline double check_parity(const std::string& name, nn::Module<float>& module,
                           const std::function<TensorF(const TensorF&)>& forward, double tolerance = 1e-4) {
  const io::SafeTensorsFile file = fixture(name);
  module.load_state_dict(nn::tensors_with_prefix<float>(file, "param."));
  const TensorF x = nn::tensor_from_record<float>(file.tensors.at("input.x"), "input.x").requires_grad_();
  const TensorF y = forward(x);
  double worst = 0;
  const auto compare = [&](const std::string& what, const TensorF& actual, const std::string& key) {
    const double error = relative_error(actual, fixture_tensor(file, key));
    CHECK_MESSAGE(error < tolerance, name << " " << what << ": relative error " << error);
    worst = std::max(worst, error);
  };
  compare("output", y, "output.y");
  sum(y * nn::tensor_from_record<float>(file.tensors.at("loss_weight.y"), "loss_weight.y")).backward();
  compare("input grad", x.grad(), "grad.input.x");
  for (const auto& named : module.named_parameters()) {  // no structured binding: doctest's messages capture it (clang < 16 cannot)
    const std::string& param = named.first;
    const auto& t = named.second;
    REQUIRE_MESSAGE(t.grad().defined(), name << ": no gradient for " << param);
    compare("grad of " + param, t.grad(), "grad.param." + param);
  }
  const auto state = module.state_dict();
  for (const auto& [key, record] : file.tensors)
    if (key.starts_with("buffer_after.")) compare(key, state.at(key.substr(13)), key);
  MESSAGE(name << ": max relative error " << worst);
  return worst;
}

}  // namespace metro::testing
