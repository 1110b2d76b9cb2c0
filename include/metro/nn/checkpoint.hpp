#pragma once
// Activation checkpointing (Chen et al. 2016, "Training Deep Nets with Sublinear
// Memory Cost"; PyTorch's torch.utils.checkpoint): y = layer(x) with the tape
// keeping only x. The forward runs without recording; the backward runs
// layer.forward(x) again, recording, with the same dropout masks, and seeds the
// recomputed output with y's gradient. The tape runs the entries just recorded
// next (they are the newest), so the gradients reach x and the layer's
// parameters before anything older runs. The layer's activations then live only
// during its own backward, for the price of a second forward.
#include <cstdint>
#include <utility>
#include <vector>

#include "metro/nn/activation.hpp"
#include "metro/nn/module.hpp"

namespace metro::nn {

namespace detail {

// The mask generators of every Dropout in a module tree and their positions.
template <class T, class D>
std::vector<std::pair<Generator*, std::uint64_t>> dropout_positions(Module<T, D>& module) {
  std::vector<std::pair<Generator*, std::uint64_t>> positions;
  for_each_module(module, [&](Module<T, D>& m) {
    if (auto* drop = dynamic_cast<Dropout<T, D>*>(&m)) positions.emplace_back(&drop->generator(), drop->generator().offset());
  });
  return positions;
}

inline void restore_positions(const std::vector<std::pair<Generator*, std::uint64_t>>& positions) {
  for (const auto& [gen, offset] : positions) gen->set_state(gen->seed(), offset);
}

}  // namespace detail

// layer(x), recomputed in the backward instead of kept (see above). The layer
// must outlive the backward.
template <class T, class D>
Tensor<T, D> checkpoint(Layer<T, D>& layer, const Tensor<T, D>& x) {
  bool needs_grad = x.requires_grad();
  for (const auto& p : layer.parameters()) needs_grad = needs_grad || p.requires_grad();
  if (!autograd::grad_enabled() || !needs_grad) return layer.forward(x);
  const auto positions = detail::dropout_positions(layer);  // where the masks of this forward start
  Tensor<T, D> y;
  {
    NoGradGuard no_grad;
    y = layer.forward(x);
  }
  autograd::record(y, [&layer, x, positions](const Tensor<T, D>& g) {
    const auto now = detail::dropout_positions(layer);
    detail::restore_positions(positions);
    Tensor<T, D> again;
    {
      GradModeGuard recording(true);
      again = layer.forward(x);
    }
    detail::restore_positions(now);
    autograd::accumulate_grad(again, g);
  });
  return y;
}

}  // namespace metro::nn
