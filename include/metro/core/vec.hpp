#pragma once
// Small fixed-size vectors and square matrices (points, normals, rotations) for the
// body, rendering, data and metrics code. Plain structs with loops over N <= 4: the
// compiler unrolls them, and, unlike Eigen's expression templates, they cost next to
// nothing to compile in every translation unit that includes the library. Member
// names follow Eigen's (x(), dot(), norm(), cwiseMin(), Identity()...), so code reads
// the same. Memory layout: N consecutive T, so a std::vector<Vec3f> of V points is a
// row-major (V, 3) float array (what Tensor, Eigen::Map and the file formats see).
#include <cmath>
#include <concepts>
#include <cstdlib>

namespace metro {

template <class T, int N>
struct Vec {
  T v[N]{};

  constexpr Vec() = default;
  template <class... Ts>
    requires(sizeof...(Ts) == N && N > 1 && (std::convertible_to<Ts, T> && ...))
  constexpr Vec(Ts... values) : v{static_cast<T>(values)...} {}

  static constexpr Vec Zero() { return {}; }
  static constexpr Vec Constant(T value) {
    Vec out;
    for (T& x : out.v) x = value;
    return out;
  }
  static constexpr Vec Ones() { return Constant(T(1)); }
  static constexpr Vec Unit(int axis) {
    Vec out;
    out.v[axis] = T(1);
    return out;
  }
  static constexpr Vec UnitX() { return Unit(0); }
  static constexpr Vec UnitY() { return Unit(1); }
  static constexpr Vec UnitZ() { return Unit(2); }

  static constexpr int size() { return N; }
  constexpr T* data() { return v; }
  constexpr const T* data() const { return v; }
  constexpr T& operator[](int i) { return v[i]; }
  constexpr const T& operator[](int i) const { return v[i]; }
  constexpr T& operator()(int i) { return v[i]; }
  constexpr const T& operator()(int i) const { return v[i]; }
  constexpr T& x() { return v[0]; }
  constexpr T& y() { return v[1]; }
  constexpr T& z()
    requires(N >= 3)
  {
    return v[2];
  }
  constexpr const T& x() const { return v[0]; }
  constexpr const T& y() const { return v[1]; }
  constexpr const T& z() const
    requires(N >= 3)
  {
    return v[2];
  }

  template <class U>
  constexpr Vec<U, N> cast() const {
    Vec<U, N> out;
    for (int i = 0; i < N; ++i) out.v[i] = static_cast<U>(v[i]);
    return out;
  }

  constexpr T dot(const Vec& o) const {
    T sum{};
    for (int i = 0; i < N; ++i) sum += v[i] * o.v[i];
    return sum;
  }
  constexpr T squaredNorm() const { return dot(*this); }
  T norm() const { return std::sqrt(squaredNorm()); }
  // Unit vector in the same direction; the zero vector stays zero (as in Eigen).
  Vec normalized() const {
    const T n = norm();
    return n > T(0) ? *this / n : *this;
  }
  void normalize() { *this = normalized(); }
  constexpr Vec cross(const Vec& o) const
    requires(N == 3)
  {
    return {v[1] * o.v[2] - v[2] * o.v[1], v[2] * o.v[0] - v[0] * o.v[2], v[0] * o.v[1] - v[1] * o.v[0]};
  }

  constexpr T sum() const {
    T s{};
    for (T x : v) s += x;
    return s;
  }
  constexpr T minCoeff() const {
    T m = v[0];
    for (T x : v) m = x < m ? x : m;
    return m;
  }
  constexpr T maxCoeff() const {
    T m = v[0];
    for (T x : v) m = x > m ? x : m;
    return m;
  }
  // Element by element: f(this[i], o[i]).
  template <class F>
  constexpr Vec zip(const Vec& o, F f) const {
    Vec out;
    for (int i = 0; i < N; ++i) out.v[i] = f(v[i], o.v[i]);
    return out;
  }
  constexpr Vec cwiseMin(const Vec& o) const { return zip(o, [](T a, T b) { return b < a ? b : a; }); }
  constexpr Vec cwiseMax(const Vec& o) const { return zip(o, [](T a, T b) { return b > a ? b : a; }); }
  constexpr Vec cwiseProduct(const Vec& o) const { return zip(o, [](T a, T b) { return a * b; }); }
  constexpr Vec cwiseQuotient(const Vec& o) const { return zip(o, [](T a, T b) { return a / b; }); }
  Vec cwiseAbs() const { return zip(*this, [](T a, T) { return std::abs(a); }); }

  constexpr Vec& operator+=(const Vec& o) { return *this = zip(o, [](T a, T b) { return a + b; }); }
  constexpr Vec& operator-=(const Vec& o) { return *this = zip(o, [](T a, T b) { return a - b; }); }
  constexpr Vec& operator*=(T s) {
    for (T& x : v) x *= s;
    return *this;
  }
  constexpr Vec& operator/=(T s) {
    for (T& x : v) x /= s;
    return *this;
  }
  friend constexpr Vec operator+(Vec a, const Vec& b) { return a += b; }
  friend constexpr Vec operator-(Vec a, const Vec& b) { return a -= b; }
  friend constexpr Vec operator-(Vec a) { return a *= T(-1); }
  friend constexpr Vec operator*(Vec a, T s) { return a *= s; }
  friend constexpr Vec operator*(T s, Vec a) { return a *= s; }
  friend constexpr Vec operator/(Vec a, T s) { return a /= s; }
  friend constexpr bool operator==(const Vec&, const Vec&) = default;
};

static_assert(sizeof(Vec<float, 3>) == 3 * sizeof(float), "Vec<T, N> is N packed T");

using Vec2f = Vec<float, 2>;
using Vec3f = Vec<float, 3>;
using Vec3d = Vec<double, 3>;
using Vec4d = Vec<double, 4>;
using Vec3i = Vec<int, 3>;

// An N x N matrix, stored row by row.
template <class T, int N>
struct Mat {
  Vec<T, N> rows[N]{};

  static constexpr Mat Zero() { return {}; }
  static constexpr Mat Identity() { return Diagonal(Vec<T, N>::Ones()); }
  static constexpr Mat Diagonal(const Vec<T, N>& d) {
    Mat out;
    for (int i = 0; i < N; ++i) out.rows[i][i] = d[i];
    return out;
  }
  // The matrix whose columns are the given vectors.
  template <class... Cols>
    requires(sizeof...(Cols) == N)
  static constexpr Mat FromColumns(const Cols&... columns) {
    return Mat{{columns...}}.transpose();
  }

  constexpr T& operator()(int i, int j) { return rows[i][j]; }
  constexpr const T& operator()(int i, int j) const { return rows[i][j]; }
  constexpr Vec<T, N>& row(int i) { return rows[i]; }
  constexpr const Vec<T, N>& row(int i) const { return rows[i]; }
  constexpr Vec<T, N> col(int j) const {
    Vec<T, N> out;
    for (int i = 0; i < N; ++i) out[i] = rows[i][j];
    return out;
  }

  constexpr Mat transpose() const {
    Mat out;
    for (int i = 0; i < N; ++i) out.rows[i] = col(i);
    return out;
  }
  constexpr T trace() const {
    T sum{};
    for (int i = 0; i < N; ++i) sum += rows[i][i];
    return sum;
  }
  constexpr T determinant() const
    requires(N == 3)
  {
    return rows[0].dot(rows[1].cross(rows[2]));
  }
  template <class U>
  constexpr Mat<U, N> cast() const {
    Mat<U, N> out;
    for (int i = 0; i < N; ++i) out.rows[i] = rows[i].template cast<U>();
    return out;
  }

  constexpr Mat& operator+=(const Mat& o) {
    for (int i = 0; i < N; ++i) rows[i] += o.rows[i];
    return *this;
  }
  constexpr Mat& operator-=(const Mat& o) {
    for (int i = 0; i < N; ++i) rows[i] -= o.rows[i];
    return *this;
  }
  constexpr Mat& operator*=(T s) {
    for (auto& r : rows) r *= s;
    return *this;
  }
  friend constexpr Mat operator+(Mat a, const Mat& b) { return a += b; }
  friend constexpr Mat operator-(Mat a, const Mat& b) { return a -= b; }
  friend constexpr Mat operator*(Mat a, T s) { return a *= s; }
  friend constexpr Mat operator*(T s, Mat a) { return a *= s; }
  friend constexpr Vec<T, N> operator*(const Mat& a, const Vec<T, N>& x) {
    Vec<T, N> out;
    for (int i = 0; i < N; ++i) out[i] = a.rows[i].dot(x);
    return out;
  }
  friend constexpr Mat operator*(const Mat& a, const Mat& b) {
    Mat out;
    for (int i = 0; i < N; ++i)
      for (int k = 0; k < N; ++k) out.rows[i] += a.rows[i][k] * b.rows[k];
    return out;
  }
  friend constexpr bool operator==(const Mat&, const Mat&) = default;
};

using Mat3f = Mat<float, 3>;
using Mat3d = Mat<double, 3>;
using Mat4d = Mat<double, 4>;

// a b^T.
template <class T, int N>
constexpr Mat<T, N> outer(const Vec<T, N>& a, const Vec<T, N>& b) {
  Mat<T, N> out;
  for (int i = 0; i < N; ++i) out.rows[i] = a[i] * b;
  return out;
}

}  // namespace metro
