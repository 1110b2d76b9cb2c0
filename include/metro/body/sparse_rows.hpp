#pragma once
// A sparse matrix stored row by row (compressed sparse rows) for the body model's
// fixed linear maps: the sampling matrices between the full, mid and coarse meshes
// (METRO Sec. 3.5) and the joint regressor G (J, V) that turns a mesh into joints
// (Sec. 3.4). Only what those need: building from (row, column, value) entries,
// products, and applying one to a list of points.
#include <algorithm>
#include <cstddef>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "metro/core/error.hpp"

namespace metro::body {

struct SparseEntry {
  int row = 0, column = 0;
  float value = 0.0f;
};

class SparseRowMatrix {
 public:
  SparseRowMatrix() = default;
  // (rows, cols) from entries in any order; entries at the same place are summed, in
  // the order given.
  SparseRowMatrix(int rows, int cols, std::vector<SparseEntry> entries) : rows_(rows), cols_(cols) {
    if (rows < 0 || cols < 0) throw ShapeError("SparseRowMatrix: negative size " + std::to_string(rows) + " x " + std::to_string(cols));
    std::stable_sort(entries.begin(), entries.end(), [](const SparseEntry& a, const SparseEntry& b) {
      return a.row != b.row ? a.row < b.row : a.column < b.column;
    });
    row_start_.assign(static_cast<std::size_t>(rows) + 1, 0);
    for (std::size_t k = 0; k < entries.size(); ++k) {
      const SparseEntry& e = entries[k];
      if (e.row < 0 || e.row >= rows || e.column < 0 || e.column >= cols)
        throw ShapeError("SparseRowMatrix: entry (" + std::to_string(e.row) + ", " + std::to_string(e.column) + ") outside " +
                         std::to_string(rows) + " x " + std::to_string(cols));
      if (k > 0 && e.row == entries[k - 1].row && e.column == entries[k - 1].column) {
        values_.back() += e.value;
        continue;
      }
      columns_.push_back(e.column);
      values_.push_back(e.value);
      ++row_start_[static_cast<std::size_t>(e.row) + 1];
    }
    for (int r = 0; r < rows; ++r) row_start_[r + 1] += row_start_[r];
  }

  static SparseRowMatrix Identity(int n) {
    std::vector<SparseEntry> entries;
    for (int i = 0; i < n; ++i) entries.push_back({i, i, 1.0f});
    return {n, n, std::move(entries)};
  }

  int rows() const { return rows_; }
  int cols() const { return cols_; }
  int nonZeros() const { return static_cast<int>(values_.size()); }
  // Row r's stored entries, by increasing column.
  std::span<const int> row_columns(int r) const { return {columns_.data() + row_start_[r], columns_.data() + row_start_[r + 1]}; }
  std::span<const float> row_values(int r) const { return {values_.data() + row_start_[r], values_.data() + row_start_[r + 1]}; }

  // (rows) values, one per row: out[r] = sum_c this(r, c) values[c]. V: float or Vec3f
  // (a per-vertex scalar, or points).
  template <class V>
  std::vector<V> operator*(const std::vector<V>& values) const {
    check_inner("SparseRowMatrix * values", static_cast<int>(values.size()));
    std::vector<V> out(static_cast<std::size_t>(rows_), V{});
    for (int r = 0; r < rows_; ++r)
      for (int k = row_start_[r]; k < row_start_[r + 1]; ++k) out[r] += values_[k] * values[columns_[k]];
    return out;
  }

  // (rows, right.cols()) = this (rows, cols) x right (cols, right.cols()).
  SparseRowMatrix operator*(const SparseRowMatrix& right) const {
    check_inner("SparseRowMatrix * SparseRowMatrix", right.rows_);
    std::vector<SparseEntry> entries;
    for (int r = 0; r < rows_; ++r)
      for (int k = row_start_[r]; k < row_start_[r + 1]; ++k)
        for (int m = right.row_start_[columns_[k]]; m < right.row_start_[columns_[k] + 1]; ++m)
          entries.push_back({r, right.columns_[m], values_[k] * right.values_[m]});
    return {rows_, right.cols_, std::move(entries)};
  }

  // The (rows, cols) matrix, row-major, zeros included.
  std::vector<float> to_dense() const {
    std::vector<float> out(static_cast<std::size_t>(rows_) * static_cast<std::size_t>(cols_), 0.0f);
    for (int r = 0; r < rows_; ++r)
      for (int k = row_start_[r]; k < row_start_[r + 1]; ++k) out[static_cast<std::size_t>(r) * cols_ + columns_[k]] = values_[k];
    return out;
  }

  friend bool operator==(const SparseRowMatrix&, const SparseRowMatrix&) = default;

 private:
  void check_inner(const char* op, int inner) const {
    if (inner != cols_) throw ShapeError(std::string(op) + ": " + std::to_string(rows_) + " x " + std::to_string(cols_) + " times " + std::to_string(inner) + " rows");
  }

  int rows_ = 0, cols_ = 0;
  std::vector<int> row_start_{0};  // (rows + 1): row r's entries are [row_start_[r], row_start_[r + 1])
  std::vector<int> columns_;       // (nnz)
  std::vector<float> values_;      // (nnz)
};

}  // namespace metro::body
