#pragma once
// Tensor<T, Device>: a shape, strides and an offset over reference-counted
// storage. Copies of a Tensor are handles to the same tensor; views (reshape,
// permute, slice, expand...) share the storage. The ops live in metro/ops/.
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "metro/autograd/tape.hpp"
#include "metro/core/allocator.hpp"
#include "metro/core/device.hpp"
#include "metro/core/error.hpp"
#include "metro/core/shape.hpp"

namespace metro {

template <class T, class Device = cpu>
class Tensor;

namespace detail {

// A block of device memory holding `size` elements.
template <class T, class Device>
class Storage {
 public:
  explicit Storage(std::int64_t size)
      : size_(size), data_(static_cast<T*>(Allocator<Device>::instance().allocate(bytes()))) {}
  ~Storage() { Allocator<Device>::instance().deallocate(data_, bytes()); }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  T* data() const noexcept { return data_; }
  std::int64_t size() const noexcept { return size_; }

 private:
  std::size_t bytes() const noexcept { return static_cast<std::size_t>(size_) * sizeof(T); }
  std::int64_t size_;
  T* data_;
};

// What autograd knows about a tensor that requires grad.
template <class T, class Device>
struct AutogradMeta {
  Tensor<T, Device> grad;    // accumulated gradient, undefined until backward reaches the tensor
  bool is_leaf = true;       // created by the user (parameters), not by an op
  bool retain_grad = false;  // keep the gradient of a non-leaf after backward
  bool on_tape = false;      // a non-leaf whose backward is still recorded (autograd/tape.hpp)
};

template <class T, class Device>
struct TensorImpl {
  std::shared_ptr<Storage<T, Device>> storage;
  Shape shape;
  Strides strides{};
  std::int64_t offset = 0;
  std::shared_ptr<AutogradMeta<T, Device>> autograd;  // null unless the tensor requires grad
};

}  // namespace detail

template <class T, class Device>
class Tensor {
 public:
  using value_type = T;
  using device_type = Device;

  Tensor() = default;  // an undefined tensor (no storage)

  // A new contiguous tensor with uninitialized contents.
  static Tensor empty(const Shape& shape) {
    return Tensor(std::make_shared<detail::Storage<T, Device>>(checked_numel(shape, "empty")), shape, contiguous_strides(shape), 0);
  }

  // A view of `base`'s storage with its own geometry; it does not require grad
  // (the differentiable view ops attach autograd themselves).
  static Tensor view_of(const Tensor& base, const Shape& shape, const Strides& strides, std::int64_t offset) {
    return Tensor(base.impl().storage, shape, strides, offset);
  }

  bool defined() const noexcept { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  int dim() const { return impl().shape.size(); }
  std::int64_t size(int d) const { return impl().shape[wrap_dim(d, dim(), "size")]; }
  std::int64_t numel() const { return impl().shape.numel(); }
  const Strides& strides() const { return impl().strides; }
  std::int64_t stride(int d) const { return impl().strides[static_cast<std::size_t>(wrap_dim(d, dim(), "stride"))]; }
  std::int64_t offset() const { return impl().offset; }
  T* data() const { return impl().storage->data() + impl().offset; }  // the element at index (0, ..., 0)

  bool is_contiguous() const {
    std::int64_t expected = 1;
    for (int i = dim() - 1; i >= 0; --i) {
      if (shape()[i] != 1 && strides()[static_cast<std::size_t>(i)] != expected) return false;
      expected *= shape()[i];
    }
    return true;
  }
  // Two handles to the same tensor object (not merely the same storage).
  bool is_same(const Tensor& other) const noexcept { return impl_ == other.impl_; }
  bool shares_storage_with(const Tensor& other) const { return impl().storage == other.impl().storage; }
  // True when nothing else can observe this tensor's memory: then an op may overwrite it.
  bool uniquely_owned() const {
    return impl_.use_count() == 1 && impl_->storage.use_count() == 1 && impl_->offset == 0 && is_contiguous() &&
           impl_->storage->size() == numel();
  }

  // ---- autograd ----
  bool requires_grad() const noexcept { return impl_ && impl_->autograd != nullptr; }
  bool is_leaf() const noexcept { return !requires_grad() || impl_->autograd->is_leaf; }
  Tensor& requires_grad_(bool enabled = true) {
    if (enabled && !requires_grad()) impl().autograd = std::make_shared<detail::AutogradMeta<T, Device>>();
    if (!enabled) impl().autograd.reset();
    return *this;
  }
  Tensor grad() const { return requires_grad() ? impl_->autograd->grad : Tensor(); }
  void set_grad(Tensor g) const { meta("set_grad").grad = std::move(g); }
  void zero_grad() const {
    if (requires_grad()) impl_->autograd->grad = Tensor();
  }
  void retain_grad() const { meta("retain_grad").retain_grad = true; }
  // The same data with no autograd history.
  Tensor detach() const { return view_of(*this, shape(), strides(), offset()); }
  void backward() const;  // metro/ops/autograd_ops.hpp

  // ---- element access (host memory) ----
  T item() const;
  std::vector<T> to_vector() const;
  T at(std::initializer_list<std::int64_t> index) const;

  // ---- shortcuts for the free functions in metro/ops (defined there) ----
  Tensor contiguous() const;
  Tensor clone() const;
  Tensor reshape(const Shape& shape) const;
  Tensor view(const Shape& shape) const { return reshape(shape); }
  Tensor permute(const std::vector<int>& order) const;
  Tensor transpose(int d0, int d1) const;
  Tensor narrow(int d, std::int64_t start, std::int64_t length) const;
  Tensor select(int d, std::int64_t index) const;
  Tensor expand(const Shape& shape) const;
  Tensor squeeze(int d) const;
  Tensor unsqueeze(int d) const;
  Tensor flatten(int start = 0, int end = -1) const;
  Tensor sum(const std::vector<int>& dims = {}, bool keepdim = false) const;
  Tensor mean(const std::vector<int>& dims = {}, bool keepdim = false) const;

  // ---- for the ops and the backends ----
  detail::TensorImpl<T, Device>& impl() const {
    if (!impl_) throw ValueError("Tensor: use of an undefined tensor");
    return *impl_;
  }
  detail::AutogradMeta<T, Device>& meta(const char* op) const {
    if (!requires_grad()) throw AutogradError(std::string(op) + ": tensor does not require grad");
    return *impl_->autograd;
  }
  std::shared_ptr<detail::AutogradMeta<T, Device>> meta_ptr() const { return impl_ ? impl_->autograd : nullptr; }

 private:
  Tensor(std::shared_ptr<detail::Storage<T, Device>> storage, const Shape& shape, const Strides& strides, std::int64_t offset)
      : impl_(std::make_shared<detail::TensorImpl<T, Device>>(
            detail::TensorImpl<T, Device>{std::move(storage), shape, strides, offset, nullptr})) {}

  std::shared_ptr<detail::TensorImpl<T, Device>> impl_;
};

using TensorF = Tensor<float, cpu>;
using TensorD = Tensor<double, cpu>;
using TensorI = Tensor<std::int64_t, cpu>;

}  // namespace metro
