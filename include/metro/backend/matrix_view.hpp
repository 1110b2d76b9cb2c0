#pragma once
// A matrix in memory described by its two strides, as every backend's gemm takes
// it: row-major when col_stride == 1, column-major (e.g. a transposed view) when
// row_stride == 1.
#include <cstdint>

namespace metro::backend {

template <class T>
struct MatrixView {
  const T* data;
  std::int64_t rows, cols, row_stride, col_stride;
};

}  // namespace metro::backend
