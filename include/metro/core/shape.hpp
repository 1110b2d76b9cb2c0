#pragma once
// Shape: the runtime dimensions of a tensor (rank 0 to 8), kept inline (no heap).
#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "metro/core/error.hpp"

namespace metro {

class Shape {
 public:
  static constexpr int kMaxRank = 8;

  Shape() = default;
  Shape(std::initializer_list<std::int64_t> dims) { assign(dims.begin(), dims.end()); }
  explicit Shape(const std::vector<std::int64_t>& dims) { assign(dims.begin(), dims.end()); }

  int size() const noexcept { return rank_; }
  bool empty() const noexcept { return rank_ == 0; }
  std::int64_t operator[](int i) const noexcept { return dims_[static_cast<std::size_t>(i)]; }
  std::int64_t& operator[](int i) noexcept { return dims_[static_cast<std::size_t>(i)]; }
  std::int64_t back() const noexcept { return dims_[static_cast<std::size_t>(rank_ - 1)]; }
  const std::int64_t* begin() const noexcept { return dims_.data(); }
  const std::int64_t* end() const noexcept { return dims_.data() + rank_; }

  void push_back(std::int64_t d) {
    if (rank_ == kMaxRank) throw ShapeError("Shape: rank above " + std::to_string(kMaxRank));
    dims_[static_cast<std::size_t>(rank_++)] = d;
  }
  void insert(int pos, std::int64_t d) {
    push_back(0);
    for (int i = rank_ - 1; i > pos; --i) dims_[static_cast<std::size_t>(i)] = dims_[static_cast<std::size_t>(i - 1)];
    dims_[static_cast<std::size_t>(pos)] = d;
  }
  void erase(int pos) {
    for (int i = pos; i + 1 < rank_; ++i) dims_[static_cast<std::size_t>(i)] = dims_[static_cast<std::size_t>(i + 1)];
    --rank_;
  }

  std::int64_t numel() const noexcept {
    std::int64_t n = 1;
    for (auto d : *this) n *= d;
    return n;
  }
  std::vector<std::int64_t> to_vector() const { return {begin(), end()}; }

  friend bool operator==(const Shape& a, const Shape& b) noexcept {
    if (a.rank_ != b.rank_) return false;
    for (int i = 0; i < a.rank_; ++i)
      if (a[i] != b[i]) return false;
    return true;
  }

  // "(2, 3, 4)"; a scalar prints as "()".
  std::string str() const {
    std::string s = "(";
    for (int i = 0; i < rank_; ++i) s += (i ? ", " : "") + std::to_string(dims_[static_cast<std::size_t>(i)]);
    return s + ")";
  }

 private:
  template <class It>
  void assign(It first, It last) {
    for (; first != last; ++first) {
      // -1 is allowed here: reshape and expand read it as "infer" / "keep".
      if (*first < -1) throw ShapeError("Shape: negative dimension " + std::to_string(*first));
      push_back(*first);
    }
  }

  std::array<std::int64_t, kMaxRank> dims_{};
  int rank_ = 0;
};

// The number of elements of `shape`; ShapeError (naming `op`) on a negative
// dimension or a product that overflows int64.
inline std::int64_t checked_numel(const Shape& shape, const char* op) {
  std::int64_t n = 1;
  for (auto d : shape)
    if (d < 0 || __builtin_mul_overflow(n, d, &n))
      throw ShapeError(std::string(op) + ": shape " + shape.str() + (d < 0 ? " has a negative dimension" : " has more than 2^63 elements"));
  return n;
}

// Strides are element counts per dimension, stored the same way as a shape
// (they may be 0 for broadcast dimensions).
using Strides = std::array<std::int64_t, Shape::kMaxRank>;

inline Strides contiguous_strides(const Shape& shape) {
  Strides s{};
  std::int64_t step = 1;
  for (int i = shape.size() - 1; i >= 0; --i) {
    s[static_cast<std::size_t>(i)] = step;
    step *= shape[i];
  }
  return s;
}

// Normalizes a possibly negative dimension index; `op` names the caller in the error.
inline int wrap_dim(int dim, int rank, const char* op) {
  const int r = rank == 0 ? 1 : rank;
  if (dim < -r || dim >= r)
    throw ShapeError(std::string(op) + ": dim " + std::to_string(dim) + " out of range for rank " + std::to_string(rank));
  return dim < 0 ? dim + r : dim;
}

// NumPy broadcasting of two shapes.
inline Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const int rank = a.size() > b.size() ? a.size() : b.size();
  Shape out;
  for (int i = 0; i < rank; ++i) {
    const int ia = i - (rank - a.size()), ib = i - (rank - b.size());
    const std::int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
    if (da != db && da != 1 && db != 1)
      throw ShapeError(std::string(op) + ": shapes " + a.str() + " and " + b.str() + " cannot be broadcast (dim " +
                       std::to_string(i) + ": " + std::to_string(da) + " vs " + std::to_string(db) + ")");
    out.push_back(da == 1 ? db : da);
  }
  return out;
}

}  // namespace metro
