#pragma once
// Module<T, Device>: the base of every layer, in libtorch's vocabulary. A module
// owns named parameters (trainable tensors) and buffers (state such as BatchNorm's
// running statistics) and named child modules held by shared_ptr. Names are
// hierarchical: "encoder.layer.1.attention.self.query.weight". Modules are composed
// at run time from plain config structs; only T and Device are template parameters.
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "metro/tensor.hpp"

namespace metro::nn {

template <class T, class D = cpu>
class Module {
 public:
  using TensorT = Tensor<T, D>;
  using NamedTensors = std::vector<std::pair<std::string, TensorT>>;
  using StateDict = std::map<std::string, TensorT>;

  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;  // a module is shared through shared_ptr, never copied
  Module& operator=(const Module&) = delete;

  // ---- introspection, in registration order, children after own tensors ----
  NamedTensors named_parameters(bool recurse = true) const { return collect(&Module::parameters_, recurse); }
  NamedTensors named_buffers(bool recurse = true) const { return collect(&Module::buffers_, recurse); }
  std::vector<TensorT> parameters(bool recurse = true) const {
    std::vector<TensorT> out;
    for (auto& [name, t] : named_parameters(recurse)) out.push_back(t);
    return out;
  }
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& named_children() const { return children_; }

  // Parameters and buffers by full name; the tensors share storage with the module.
  StateDict state_dict() const {
    StateDict out;
    for (auto& [name, t] : named_parameters()) out.emplace(name, t.detach());
    for (auto& [name, t] : named_buffers()) out.emplace(name, t.detach());
    return out;
  }

  // Copies `state` into the module's tensors in place (optimizers keep their handles).
  // Strict: every missing, unexpected or wrong-shape name is reported in one error;
  // nothing is copied unless all names match. Non-strict: missing and unexpected names
  // are skipped, a wrong shape still throws.
  void load_state_dict(const StateDict& state, bool strict = true) {
    const StateDict own = state_dict();
    std::string missing, unexpected, wrong_shape;
    for (const auto& [name, t] : own) {
      const auto it = state.find(name);
      if (it == state.end()) missing += " " + name;
      else if (!(it->second.shape() == t.shape()))
        wrong_shape += " " + name + " " + it->second.shape().str() + " (expected " + t.shape().str() + ")";
    }
    for (const auto& [name, t] : state)
      if (!own.contains(name)) unexpected += " " + name;
    if (!wrong_shape.empty() || (strict && (!missing.empty() || !unexpected.empty()))) {
      std::string message = "load_state_dict:";
      if (!missing.empty()) message += " missing keys:" + missing + ";";
      if (!unexpected.empty()) message += " unexpected keys:" + unexpected + ";";
      if (!wrong_shape.empty()) throw ShapeError(message + " wrong shapes:" + wrong_shape);
      throw ValueError(message);
    }
    NoGradGuard no_grad;
    for (const auto& [name, t] : own)
      if (const auto it = state.find(name); it != state.end()) copy_(t, it->second.detach());
  }

  // ---- mode ----
  void train(bool on = true) {
    training_ = on;
    for (auto& [name, child] : children_) child->train(on);
  }
  void eval() { train(false); }
  bool is_training() const noexcept { return training_; }

  // Forgets the gradients of every parameter.
  void zero_grad() {
    for (auto& t : parameters()) t.zero_grad();
  }

 protected:
  // Registers a trainable tensor (requires_grad is switched on) and returns the handle.
  TensorT register_parameter(const std::string& name, TensorT t) {
    check_name(name);
    t.requires_grad_(true);
    parameters_.emplace_back(name, t);
    return t;
  }
  TensorT register_buffer(const std::string& name, TensorT t) {
    check_name(name);
    buffers_.emplace_back(name, t);
    return t;
  }
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> child) {
    check_name(name);
    children_.emplace_back(name, child);
    return child;
  }

 private:
  void check_name(const std::string& name) const {
    if (name.empty() || name.find('.') != std::string::npos)
      throw ValueError("Module: invalid name \"" + name + "\" (non-empty, without '.')");
    const auto taken = [&](const auto& list) {
      for (const auto& entry : list)
        if (entry.first == name) return true;
      return false;
    };
    if (taken(parameters_) || taken(buffers_) || taken(children_)) throw ValueError("Module: name \"" + name + "\" registered twice");
  }

  NamedTensors collect(NamedTensors Module::*list, bool recurse) const {
    NamedTensors out = this->*list;
    if (!recurse) return out;
    for (const auto& [child_name, child] : children_)
      for (auto& [name, t] : child->collect(list, true)) out.emplace_back(child_name + "." + name, t);
    return out;
  }

  NamedTensors parameters_, buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

// A module with one input and one output; what Sequential chains.
template <class T, class D = cpu>
class Layer : public Module<T, D> {
 public:
  virtual Tensor<T, D> forward(const Tensor<T, D>& x) = 0;
  Tensor<T, D> operator()(const Tensor<T, D>& x) { return forward(x); }
};

// Layers applied in order; children are named "0", "1", ... (as torch.nn.Sequential).
template <class T, class D = cpu>
class Sequential : public Layer<T, D> {
 public:
  Sequential() = default;
  explicit Sequential(std::vector<std::shared_ptr<Layer<T, D>>> layers) {
    for (auto& layer : layers) push_back(std::move(layer));
  }
  void push_back(std::shared_ptr<Layer<T, D>> layer) {
    layers_.push_back(this->register_module(std::to_string(layers_.size()), std::move(layer)));
  }
  std::size_t size() const noexcept { return layers_.size(); }
  const std::shared_ptr<Layer<T, D>>& operator[](std::size_t i) const { return layers_.at(i); }

  Tensor<T, D> forward(const Tensor<T, D>& x) override {
    Tensor<T, D> y = x;
    for (auto& layer : layers_) y = layer->forward(y);
    return y;
  }

 private:
  std::vector<std::shared_ptr<Layer<T, D>>> layers_;
};

// Calls visit(m) for `module` and every module below it, parents before children.
template <class T, class D, class Visit>
void for_each_module(Module<T, D>& module, Visit&& visit) {
  visit(module);
  for (const auto& [name, child] : module.named_children()) for_each_module(*child, visit);
}

// Number of trainable scalars.
template <class T, class D>
std::int64_t count_parameters(const Module<T, D>& module) {
  std::int64_t n = 0;
  for (const auto& t : module.parameters()) n += t.numel();
  return n;
}

}  // namespace metro::nn
