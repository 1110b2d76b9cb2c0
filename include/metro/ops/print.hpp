#pragma once
// Human-readable printing: nested brackets like NumPy, long dims elided.
#include <iomanip>
#include <ostream>
#include <sstream>

#include "metro/ops/views.hpp"

namespace metro {

namespace detail {
template <class T, class D>
void print_block(std::ostream& os, const Tensor<T, D>& t, int depth) {
  constexpr std::int64_t kEdge = 3, kMaxFull = 8;
  const std::int64_t n = t.shape()[0];
  os << '[';
  for (std::int64_t i = 0; i < n; ++i) {
    if (n > kMaxFull && i == kEdge) {
      os << "...";
      i = n - kEdge - 1;
      os << (t.dim() == 1 ? ", " : ",\n" + std::string(static_cast<std::size_t>(depth + 1), ' '));
      continue;
    }
    const Tensor<T, D> item = select(t.detach(), 0, i);
    if (t.dim() == 1) {
      os << item.item();
    } else {
      print_block(os, item, depth + 1);
    }
    if (i + 1 < n) os << (t.dim() == 1 ? ", " : ",\n" + std::string(static_cast<std::size_t>(depth + 1), ' '));
  }
  os << ']';
}
}  // namespace detail

template <class T, class D>
std::ostream& operator<<(std::ostream& os, const Tensor<T, D>& t) {
  if (!t.defined()) return os << "tensor(undefined)";
  std::ostringstream body;
  body << std::setprecision(5);
  if (t.dim() == 0) body << t.item();
  else detail::print_block(body, t, 7);
  os << "tensor(" << body.str() << ", shape=" << t.shape().str();
  if (t.requires_grad()) os << ", requires_grad";
  return os << ')';
}

}  // namespace metro
