#pragma once
// Out-of-line definitions of Tensor's member shortcuts, element access and backward().
// Element access reads host memory on the CPU and copies from the device elsewhere.
#include <string>
#include <type_traits>
#include <vector>

#include "metro/ops/creation.hpp"

namespace metro {

template <class T, class D>
void Tensor<T, D>::backward() const {
  if (!requires_grad()) throw AutogradError("backward: tensor " + shape().str() + " does not require grad");
  if (numel() != 1) throw AutogradError("backward: needs a tensor with one element, got shape " + shape().str());
  NoGradGuard no_grad;
  autograd::accumulate_grad(*this, ones<T, D>(shape()));
  autograd::tape().run_backward();
}

template <class T, class D>
std::vector<T> Tensor<T, D>::to_vector() const {
  const Tensor c = metro::contiguous(detach());
  if constexpr (std::is_same_v<D, cpu>) {
    return std::vector<T>(c.data(), c.data() + c.numel());
  } else {
    std::vector<T> values(static_cast<std::size_t>(c.numel()));
    backend::copy_to_host<D>(values.data(), c.data(), c.numel());
    return values;
  }
}

template <class T, class D>
T Tensor<T, D>::item() const {
  if (numel() != 1) throw ShapeError("item: tensor of shape " + shape().str() + " has " + std::to_string(numel()) + " elements");
  if constexpr (std::is_same_v<D, cpu>) {
    return *data();
  } else {
    T value{};
    backend::copy_to_host<D>(&value, data(), 1);
    return value;
  }
}

template <class T, class D>
T Tensor<T, D>::at(std::initializer_list<std::int64_t> index) const {
  if (static_cast<int>(index.size()) != dim())
    throw ShapeError("at: " + std::to_string(index.size()) + " indices for shape " + shape().str());
  std::int64_t offset = 0;
  int d = 0;
  for (std::int64_t i : index) {
    if (i < 0 || i >= shape()[d]) throw ShapeError("at: index " + std::to_string(i) + " out of range for " + shape().str());
    offset += i * strides()[static_cast<std::size_t>(d++)];
  }
  if constexpr (std::is_same_v<D, cpu>) {
    return data()[offset];
  } else {
    T value{};
    backend::copy_to_host<D>(&value, data() + offset, 1);
    return value;
  }
}

template <class T, class D> Tensor<T, D> Tensor<T, D>::contiguous() const { return metro::contiguous(*this); }
template <class T, class D> Tensor<T, D> Tensor<T, D>::clone() const { return metro::clone(*this); }
template <class T, class D> Tensor<T, D> Tensor<T, D>::reshape(const Shape& s) const { return metro::reshape(*this, s); }
template <class T, class D> Tensor<T, D> Tensor<T, D>::permute(const std::vector<int>& o) const { return metro::permute(*this, o); }
template <class T, class D> Tensor<T, D> Tensor<T, D>::transpose(int a, int b) const { return metro::transpose(*this, a, b); }
template <class T, class D> Tensor<T, D> Tensor<T, D>::narrow(int d, std::int64_t s, std::int64_t n) const { return metro::narrow(*this, d, s, n); }
template <class T, class D> Tensor<T, D> Tensor<T, D>::select(int d, std::int64_t i) const { return metro::select(*this, d, i); }
template <class T, class D> Tensor<T, D> Tensor<T, D>::expand(const Shape& s) const { return metro::expand(*this, s); }
template <class T, class D> Tensor<T, D> Tensor<T, D>::squeeze(int d) const { return metro::squeeze(*this, d); }
template <class T, class D> Tensor<T, D> Tensor<T, D>::unsqueeze(int d) const { return metro::unsqueeze(*this, d); }
template <class T, class D> Tensor<T, D> Tensor<T, D>::flatten(int s, int e) const { return metro::flatten(*this, s, e); }
template <class T, class D> Tensor<T, D> Tensor<T, D>::sum(const std::vector<int>& d, bool k) const { return metro::sum(*this, d, k); }
template <class T, class D> Tensor<T, D> Tensor<T, D>::mean(const std::vector<int>& d, bool k) const { return metro::mean(*this, d, k); }

}  // namespace metro
