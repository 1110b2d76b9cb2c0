// The CUDA backend against the CPU backend. Without a device (or driver) every
// device test prints "skipped: no CUDA device" and passes; the error paths run
// everywhere.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "metro/backend/cuda.cuh"
#include "metro/model/checkpoint.hpp"
#include "metro/model/metro_network.hpp"
#include "metro/nn/losses.hpp"
#include "metro/nn/nn.hpp"
#include "metro/nn/optim.hpp"
#include "metro/tensor.hpp"

using namespace metro;

// Ends the test case, passing, when there is no usable device.
#define SKIP_WITHOUT_DEVICE()           \
  if (!cuda_available()) {              \
    MESSAGE("skipped: no CUDA device"); \
    return;                             \
  }

namespace {

// max |got - want| / max |want|, over all elements.
double relative_error(const TensorF& got, const TensorF& want) {
  const std::vector<float> g = got.to_vector(), w = want.to_vector();
  double diff = 0, scale = 0;
  for (std::size_t i = 0; i < w.size(); ++i) {
    diff = std::max(diff, std::abs(static_cast<double>(g[i]) - w[i]));
    scale = std::max(scale, std::abs(static_cast<double>(w[i])));
  }
  return scale == 0 ? diff : diff / scale;
}

// Largest elementwise |got - want| / |want| (|want| clamped away from 0).
double max_elementwise_error(const TensorF& got, const TensorF& want) {
  const std::vector<float> g = got.to_vector(), w = want.to_vector();
  double worst = 0;
  for (std::size_t i = 0; i < w.size(); ++i)
    worst = std::max(worst, std::abs(static_cast<double>(g[i]) - w[i]) / std::max(std::abs(static_cast<double>(w[i])), 1e-30));
  return worst;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("require_cuda throws metro::Error when there is no device") {
  if (cuda_available()) {
    CHECK_NOTHROW(require_cuda());
    return;
  }
  MESSAGE("no CUDA device: checking the error path");
  CHECK_THROWS_AS(require_cuda(), Error);
  try {
    require_cuda();
  } catch (const Error& e) {
    CHECK(contains(e.what(), "no CUDA device: "));
  }
  // Allocating device memory fails with an Error naming cudaMalloc.
  try {
    (void)Tensor<float, cuda>::empty({4});
    FAIL("allocating device memory without a device did not throw");
  } catch (const Error& e) {
    CHECK(contains(e.what(), "cudaMalloc"));
  }
}

TEST_CASE("METRO_CUDA_CHECK and METRO_CUBLAS_CHECK name the call and the message") {
  try {
    METRO_CUDA_CHECK(cudaErrorInvalidValue);
    FAIL("METRO_CUDA_CHECK did not throw");
  } catch (const Error& e) {
    CHECK(contains(e.what(), "cudaErrorInvalidValue failed"));
    CHECK(contains(e.what(), cudaGetErrorString(cudaErrorInvalidValue)));
  }
  try {
    METRO_CUBLAS_CHECK(CUBLAS_STATUS_NOT_INITIALIZED);
    FAIL("METRO_CUBLAS_CHECK did not throw");
  } catch (const Error& e) {
    CHECK(contains(e.what(), "CUBLAS_STATUS_NOT_INITIALIZED failed"));
  }
  CHECK_NOTHROW(METRO_CUDA_CHECK(cudaSuccess));
}

TEST_CASE("host <-> device round trip") {
  SKIP_WITHOUT_DEVICE();
  const TensorF x = randn<float>({37, 53});
  const TensorF back = to_host(to_device(x));
  CHECK(back.shape() == x.shape());
  CHECK(relative_error(back, x) == 0);
  CHECK_THROWS_AS(to_device(transpose(x, 0, 1)), ValueError);
}

TEST_CASE("elementwise add and mul match the CPU") {
  SKIP_WITHOUT_DEVICE();
  for (const Shape& shape : {Shape{37, 53}, Shape{1001}, Shape{3, 5, 7}, Shape{0, 4}}) {
    const TensorF a = randn<float>(shape), b = randn<float>(shape);
    const Tensor<float, cuda> da = to_device(a), db = to_device(b);
    CHECK(max_elementwise_error(to_host(cuda_ops::add(da, db)), add(a, b)) <= 1e-5);
    CHECK(max_elementwise_error(to_host(cuda_ops::mul(da, db)), mul(a, b)) <= 1e-5);
  }
  CHECK_THROWS_AS(cuda_ops::add(to_device(randn<float>({2, 3})), to_device(randn<float>({3, 2}))), ShapeError);
}

TEST_CASE("fp32 GEMM through cuBLAS matches the CPU, odd sizes and transposed operands") {
  SKIP_WITHOUT_DEVICE();
  const TensorF a = randn<float>({37, 53}), b = randn<float>({53, 29});
  const TensorF want = matmul(a, b);  // (37, 29)
  CHECK(relative_error(to_host(cuda_ops::matmul(to_device(a), to_device(b))), want) <= 1e-4);
  // A given as the transpose of a contiguous (53, 37), B as the transpose of a contiguous (29, 53).
  const Tensor<float, cuda> at = to_device(contiguous(transpose(a, 0, 1))), bt = to_device(contiguous(transpose(b, 0, 1)));
  const Tensor<float, cuda> a_view = Tensor<float, cuda>::view_of(at, {37, 53}, {1, 37}, 0);
  const Tensor<float, cuda> b_view = Tensor<float, cuda>::view_of(bt, {53, 29}, {1, 53}, 0);
  CHECK(relative_error(to_host(cuda_ops::matmul(a_view, b_view)), want) <= 1e-4);
  // Single rows and columns: (1, 53) @ (53, 1).
  const TensorF r = randn<float>({1, 53}), c = randn<float>({53, 1});
  CHECK(relative_error(to_host(cuda_ops::matmul(to_device(r), to_device(c))), matmul(r, c)) <= 1e-4);
  CHECK_THROWS_AS(cuda_ops::matmul(to_device(a), to_device(a)), ShapeError);
}

TEST_CASE("the device allocator reuses blocks in steady state") {
  SKIP_WITHOUT_DEVICE();
  auto& alloc = Allocator<cuda>::instance();
  const TensorF a = randn<float>({37, 53}), b = randn<float>({53, 29});
  const Tensor<float, cuda> da = to_device(a), db = to_device(b);
  (void)cuda_ops::add(cuda_ops::matmul(da, db), cuda_ops::matmul(da, db));  // warm-up: fills the cache
  const std::size_t mallocs = alloc.fresh_allocations(), live = alloc.live_bytes();
  alloc.reset_peak();
  for (int step = 0; step < 10; ++step) (void)cuda_ops::add(cuda_ops::matmul(da, db), cuda_ops::matmul(da, db));
  CHECK(alloc.fresh_allocations() == mallocs);
  CHECK(alloc.live_bytes() == live);
  CHECK(alloc.peak_bytes() >= live + 3 * 37 * 29 * sizeof(float));  // two products and their sum at once

  void* p = alloc.allocate(1000);
  alloc.deallocate(p, 1000);
  CHECK(alloc.allocate(1000) == p);  // same rounded size: the cached block comes back
  alloc.deallocate(p, 1000);
  alloc.empty_cache();
  CHECK(alloc.cached_bytes() == 0);
}

// ---- the backend harness -------------------------------------------------------
// Every op runs from the same template on Tensor<float, cpu> and on
// Tensor<float, cuda>, on the same random inputs (odd sizes, non-contiguous
// views, broadcasting). Outputs and the gradients of sum(y * w) (w fixed random
// weights) are compared: elementwise results per element within 1e-5 of the
// CPU's (relative to max(|cpu|, floor * max |cpu|): values far below the
// tensor's scale are judged against that floor, since both backends round
// 1 + erf, 1 - tanh^2, ... with cancellation), reductions and GEMM within 1e-4
// of the largest CPU value.
namespace {

struct Tolerance {
  double rel;
  bool elementwise;
  double floor = 1e-3;
};
constexpr Tolerance kElementwise{1e-5, true};
constexpr Tolerance kReduction{1e-4, false};
constexpr Tolerance kExact{0, false};

double compare(const TensorF& got, const TensorF& want, const Tolerance& tol) {
  const std::vector<float> g = got.to_vector(), w = want.to_vector();
  double scale = 0;
  for (float v : w) scale = std::max(scale, std::abs(static_cast<double>(v)));
  double worst = 0;
  for (std::size_t i = 0; i < w.size(); ++i) {
    const double diff = std::abs(static_cast<double>(g[i]) - w[i]);
    if (std::isnan(g[i]) != std::isnan(w[i])) return std::numeric_limits<double>::infinity();
    const double denominator = tol.elementwise ? std::max(std::abs(static_cast<double>(w[i])), tol.floor * scale) : scale;
    worst = std::max(worst, denominator == 0 ? diff : diff / denominator);
  }
  return worst;
}

// A fresh leaf on device D holding `t`'s values.
template <class D>
Tensor<float, D> on(const TensorF& t) {
  if constexpr (std::is_same_v<D, cpu>)
    return clone(t.detach());
  else
    return to_device(contiguous(t.detach()));
}
template <class D>
Tensor<std::int64_t, D> on_index(const TensorI& t) {
  if constexpr (std::is_same_v<D, cpu>)
    return clone(t);
  else
    return to_device(contiguous(t));
}
// A contiguous host copy.
template <class T, class D>
Tensor<T, cpu> host(const Tensor<T, D>& t) {
  if constexpr (std::is_same_v<D, cpu>)
    return contiguous(t.detach());
  else
    return to_host(contiguous(t.detach()));
}
// The device of a generic lambda's inputs.
template <class Inputs>
using device_of = typename std::decay_t<Inputs>::value_type::device_type;

struct Run {
  TensorF out;
  std::vector<TensorF> grads;  // one per input (undefined for inputs without grad)
};

template <class D, class Op>
Run run_on(const std::vector<TensorF>& inputs, const std::vector<bool>& grad, Op& op) {
  std::vector<Tensor<float, D>> leaves;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    leaves.push_back(on<D>(inputs[i]));
    if (grad[i]) leaves.back().requires_grad_();
  }
  const Tensor<float, D> y = op(leaves);
  Run run{host(y), {}};
  if (y.requires_grad()) {  // (comparisons are not differentiable)
    Generator gen(99);
    const Tensor<float, D> weights = on<D>(randn<float>(y.shape(), gen));
    sum(y * weights).backward();
  }
  for (std::size_t i = 0; i < inputs.size(); ++i)
    run.grads.push_back(grad[i] && leaves[i].grad().defined() ? host(leaves[i].grad()) : TensorF());
  clear_tape();
  return run;
}

// Runs op(inputs) on both backends and compares outputs (out_tol) and input gradients (grad_tol).
template <class Op>
void check_backends(const std::string& name, const std::vector<TensorF>& inputs, const std::vector<bool>& grad, Op op,
                    const Tolerance& out_tol, const Tolerance& grad_tol) {
  const Run want = run_on<cpu>(inputs, grad, op);
  const Run got = run_on<cuda>(inputs, grad, op);
  INFO(name);
  REQUIRE(got.out.shape() == want.out.shape());
  const double out_error = compare(got.out, want.out, out_tol);
  MESSAGE(name << ": output error " << out_error);
  CHECK(out_error <= out_tol.rel);
  for (std::size_t i = 0; i < want.grads.size(); ++i) {
    if (!grad[i]) continue;
    INFO("gradient of input " << i);
    REQUIRE(got.grads[i].defined() == want.grads[i].defined());
    if (!want.grads[i].defined()) continue;
    REQUIRE(got.grads[i].shape() == want.grads[i].shape());
    const double grad_error = compare(got.grads[i], want.grads[i], grad_tol);
    MESSAGE(name << ": gradient " << i << " error " << grad_error);
    CHECK(grad_error <= grad_tol.rel);
  }
}

Generator& harness_generator() {
  static Generator gen(2024);
  return gen;
}
TensorF normal(const Shape& shape) { return randn<float>(shape, harness_generator()); }
TensorF positive(const Shape& shape) { return rand<float>(shape, harness_generator(), 0.5f, 2.0f); }

}  // namespace

TEST_CASE("harness: unary elementwise ops on contiguous, transposed and stepped views") {
  SKIP_WITHOUT_DEVICE();
  // Three layouts of a (7, 13) operand: contiguous, the transpose of a (13, 7), every other column of a (7, 27).
  const std::vector<std::pair<std::string, TensorF>> normals{
      {"contiguous", normal({7, 13})}, {"transposed", normal({13, 7})}, {"stepped", normal({7, 27})}};
  const std::vector<std::pair<std::string, TensorF>> positives{
      {"contiguous", positive({7, 13})}, {"transposed", positive({13, 7})}, {"stepped", positive({7, 27})}};
  auto layout = [](const std::string& kind, const auto& x) {
    if (kind == "transposed") return transpose(x, 0, 1);
    if (kind == "stepped") return slice(x, 1, 1, 27, 2);
    return x;
  };
  for (const auto& entry : normals) {
    const std::string kind = entry.first;
    const TensorF input = entry.second;
    auto check = [&](const std::string& name, auto f, Tolerance out = kElementwise, Tolerance grad = kElementwise) {
      check_backends(name + " (" + kind + ")", {input}, {true}, [&](const auto& x) { return f(layout(kind, x[0])); }, out, grad);
    };
    check("neg", [](const auto& v) { return neg(v); });
    check("exp", [](const auto& v) { return exp(v); });
    check("abs", [](const auto& v) { return abs(v); });
    check("relu", [](const auto& v) { return relu(v); });
    check("tanh", [](const auto& v) { return tanh(v); }, kElementwise, Tolerance{1e-5, true, 1e-2});
    check("sigmoid", [](const auto& v) { return sigmoid(v); });
    check("gelu", [](const auto& v) { return gelu(v); }, Tolerance{1e-5, true, 1e-2}, Tolerance{1e-5, true, 1e-2});
    check("clamp", [](const auto& v) { return clamp(v, -0.5f, 0.7f); });
    check("x * s + t", [](const auto& v) { return v * 2.5f + 1.5f; });
    check("s - x", [](const auto& v) { return 3.0f - v; });
    check("x > 0.25", [](const auto& v) { return gt(v, 0.25f); });
    check("contiguous", [](const auto& v) { return contiguous(v); }, kExact, kExact);
    check("clone", [](const auto& v) { return clone(v); }, kExact, kExact);
  }
  for (const auto& entry : positives) {
    const std::string kind = entry.first;
    const TensorF input = entry.second;
    auto check = [&](const std::string& name, auto f) {
      check_backends(name + " (" + kind + ")", {input}, {true}, [&](const auto& x) { return f(layout(kind, x[0])); },
                     kElementwise, kElementwise);
    };
    check("log", [](const auto& v) { return log(v); });
    check("sqrt", [](const auto& v) { return sqrt(v); });
    check("pow(x, 1.7)", [](const auto& v) { return pow(v, 1.7f); });
    check("2 / x", [](const auto& v) { return 2.0f / v; });
  }
}

TEST_CASE("harness: binary elementwise ops with broadcasting") {
  SKIP_WITHOUT_DEVICE();
  // (5, 1, 7) with (3, 7) -> (5, 3, 7); the gradients of broadcast inputs are sums (reduction tolerance).
  const TensorF a = normal({5, 1, 7}), b = normal({3, 7}), pa = positive({5, 1, 7}), pb = positive({3, 7});
  check_backends("add", {a, b}, {true, true}, [](const auto& x) { return x[0] + x[1]; }, kElementwise, kReduction);
  check_backends("sub", {a, b}, {true, true}, [](const auto& x) { return x[0] - x[1]; }, kElementwise, kReduction);
  check_backends("mul", {a, b}, {true, true}, [](const auto& x) { return x[0] * x[1]; }, kElementwise, kReduction);
  check_backends("div", {a, pb}, {true, true}, [](const auto& x) { return x[0] / x[1]; }, kElementwise, kReduction);
  check_backends("pow", {pa, b}, {true, true}, [](const auto& x) { return pow(x[0], x[1] * 0.5f); }, kElementwise, kReduction);
  check_backends("lt", {a, b}, {false, false}, [](const auto& x) { return lt(x[0], x[1]); }, kExact, kExact);
  check_backends("eq", {a, a}, {false, false}, [](const auto& x) { return eq(x[0], x[1]); }, kExact, kExact);
  // where(cond (5, 3, 1), a (5, 1, 7), b^T-like (3, 7) view)
  const TensorF cond = gt(normal({5, 3, 1}), 0.0f), bt = normal({7, 3});
  check_backends("where", {cond, a, bt}, {false, true, true},
                 [](const auto& x) { return where(x[0], x[1], transpose(x[2], 0, 1)); }, kExact, kReduction);
  // A non-contiguous (transposed) operand broadcast against a stepped one: (9, 6)^T (6, 9) + (1, 9) slice.
  const TensorF c = normal({9, 6}), d = normal({3, 19});
  check_backends("add (transposed + stepped row)", {c, d}, {true, true},
                 [](const auto& x) { return transpose(x[0], 0, 1) + slice(narrow(x[1], 0, 1, 1), 1, 0, 18, 2); }, kElementwise,
                 kReduction);
}

TEST_CASE("harness: in-place updates, views, joins") {
  SKIP_WITHOUT_DEVICE();
  const TensorF a = normal({6, 5}), b = normal({5, 6}), c = normal({6, 3}), e = normal({4, 1, 5});
  check_backends("copy_ into a transposed view", {a, b}, {false, false},
                 [](const auto& x) {
                   auto out = zeros_like(x[1]);
                   copy_(transpose(out, 0, 1), x[0]);
                   auto view = transpose(out, 0, 1);
                   add_(view, x[0]);
                   return out;
                 },
                 kExact, kExact);
  check_backends("cat of a view, a slice and a tensor along dim 1", {a, b, c}, {true, true, true},
                 [](const auto& x) {
                   using Parts = std::vector<std::decay_t<decltype(x[0])>>;
                   return cat(Parts{x[0], narrow(transpose(x[1], 0, 1), 1, 1, 4), x[2]}, 1);
                 }, kExact, kExact);
  check_backends("stack along dim 2", {a, a}, {true, true},
                 [](const auto& x) {
                   using Parts = std::vector<std::decay_t<decltype(x[0])>>;
                   return stack(Parts{x[0], x[1] * 2.0f}, 2);
                 }, kExact, kElementwise);
  check_backends("expand * slice, select, reshape of a permute", {e, a}, {true, true},
                 [](const auto& x) {
                   const auto expanded = expand(x[0], {4, 6, 5}) * unsqueeze(x[1], 0);
                   return reshape(permute(expanded, {2, 0, 1}), {5, 24}) + unsqueeze(select(x[1], 1, 2), 0).sum();
                 },
                 kElementwise, kReduction);
}

TEST_CASE("harness: creation on the device matches the CPU exactly") {
  SKIP_WITHOUT_DEVICE();
  CHECK(compare(host(full<float, cuda>({3, 5}, 2.5f)), full<float>({3, 5}, 2.5f), kExact) == 0);
  CHECK(compare(host(zeros<float, cuda>({7})), zeros<float>({7}), kExact) == 0);
  CHECK(compare(host(ones<float, cuda>({2, 3, 4})), ones<float>({2, 3, 4}), kExact) == 0);
  CHECK(compare(host(arange<float, cuda>(1.0f, 9.5f, 0.75f)), arange<float>(1.0f, 9.5f, 0.75f), kExact) == 0);
  CHECK(compare(host(linspace<float, cuda>(-1.0f, 2.0f, 11)), linspace<float>(-1.0f, 2.0f, 11), kExact) == 0);
  CHECK(compare(host(eye<float, cuda>(5)), eye<float>(5), kExact) == 0);
  CHECK(compare(host(tensor<float, cuda>({{1, 2, 3}, {4, 5, 6}})), tensor<float>({{1, 2, 3}, {4, 5, 6}}), kExact) == 0);
  Generator g1(5), g2(5);
  CHECK(compare(host(randn<float, cuda>({33, 17}, g1)), randn<float>({33, 17}, g2), kExact) == 0);
  CHECK(compare(host(rand<float, cuda>({101}, g1)), rand<float>({101}, g2), kExact) == 0);
  CHECK(compare(host(bernoulli<float, cuda>({64}, 0.3, g1)), bernoulli<float>({64}, 0.3, g2), kExact) == 0);
  const Tensor<float, cuda> x = to_device(tensor<float>({{1, 2, 3}, {4, 5, 6}}));
  CHECK(x.at({1, 2}) == 6.0f);
  CHECK(sum(x).item() == 21.0f);
  CHECK(transpose(x, 0, 1).to_vector() == std::vector<float>{1, 4, 2, 5, 3, 6});
  Tensor<float, cuda> y = to_device(normal({4, 4}));
  fill_(y, 1.25f);
  CHECK(compare(host(y), full<float>({4, 4}, 1.25f), kExact) == 0);
}

TEST_CASE("harness: reductions and softmax") {
  SKIP_WITHOUT_DEVICE();
  const TensorF a = normal({37, 53}), b = normal({5, 6, 7}), wide = normal({3, 5001}), tall = normal({4099, 3});
  auto all = [](const auto& x) { return sum(x[0]); };
  check_backends("sum (all)", {a}, {true}, all, kReduction, kReduction);
  check_backends("sum (wide rows)", {wide}, {true}, [](const auto& x) { return sum(x[0], {1}); }, kReduction, kReduction);
  check_backends("sum (tall columns)", {tall}, {true}, [](const auto& x) { return sum(x[0], {0}); }, kReduction, kReduction);
  check_backends("sum dim 1, keepdim", {b}, {true}, [](const auto& x) { return sum(x[0], {1}, true); }, kReduction, kReduction);
  check_backends("sum dims {0, 2} (not adjacent)", {b}, {true}, [](const auto& x) { return sum(x[0], {0, 2}); }, kReduction,
                 kReduction);
  check_backends("sum of a transposed view", {a}, {true}, [](const auto& x) { return sum(transpose(x[0], 0, 1), {1}); },
                 kReduction, kReduction);
  check_backends("mean", {b}, {true}, [](const auto& x) { return mean(x[0], {-1}); }, kReduction, kReduction);
  check_backends("var", {b}, {true}, [](const auto& x) { return var(x[0], {0, 1}); }, kReduction, kReduction);
  check_backends("norm", {a}, {true}, [](const auto& x) { return norm(x[0], {1}, true); }, kReduction, kReduction);
  check_backends("max values", {b}, {true}, [](const auto& x) { return max(x[0], 1).values; }, kExact, kExact);
  check_backends("min values (keepdim)", {b}, {true}, [](const auto& x) { return min(x[0], 2, true).values; }, kExact, kExact);
  check_backends("max (all)", {a}, {true}, [](const auto& x) { return max(x[0]); }, kExact, kExact);
  {
    const Tensor<float, cuda> db = to_device(b);
    CHECK(host(argmax(db, 1)).to_vector() == argmax(b, 1).to_vector());
    CHECK(host(argmin(db, 0)).to_vector() == argmin(b, 0).to_vector());
    CHECK(host(max(db, 2).indices).to_vector() == max(b, 2).indices.to_vector());
  }
  const TensorF s = normal({6, 37}), big = normal({3, 1000}) * 4.0f;
  check_backends("softmax (last dim, scaled)", {s}, {true}, [](const auto& x) { return softmax(x[0], -1, 0.3f); }, kElementwise,
                 kReduction);
  check_backends("softmax (dim 0)", {s}, {true}, [](const auto& x) { return softmax(x[0], 0); }, kElementwise, kReduction);
  check_backends("softmax (1000 wide)", {big}, {true}, [](const auto& x) { return softmax(x[0], 1); }, kElementwise, kReduction);
  check_backends("log_softmax", {s}, {true}, [](const auto& x) { return log_softmax(x[0], 1, 2.0f); }, kReduction, kReduction);
  check_backends("log_softmax of a transposed view", {s}, {true},
                 [](const auto& x) { return log_softmax(transpose(x[0], 0, 1), 1); }, kReduction, kReduction);
}

TEST_CASE("harness: matmul, batched matmul, linear, feed_forward") {
  SKIP_WITHOUT_DEVICE();
  const TensorF a = normal({37, 53}), b = normal({53, 29}), at = normal({53, 37}), bt = normal({29, 53});
  check_backends("matmul", {a, b}, {true, true}, [](const auto& x) { return matmul(x[0], x[1]); }, kReduction, kReduction);
  check_backends("matmul of transposed views", {at, bt}, {true, true},
                 [](const auto& x) { return matmul(transpose(x[0], 0, 1), transpose(x[1], 0, 1)); }, kReduction, kReduction);
  check_backends("matmul of a stepped (copied) view", {normal({37, 106}), b}, {true, true},
                 [](const auto& x) { return matmul(slice(x[0], 1, 0, 106, 2), x[1]); }, kReduction, kReduction);
  check_backends("batched matmul with broadcast batch dims", {normal({4, 1, 9, 11}), normal({3, 11, 5})}, {true, true},
                 [](const auto& x) { return matmul(x[0], x[1]); }, kReduction, kReduction);
  check_backends("batched matmul, attention-like (q k^T)", {normal({2, 3, 10, 8}), normal({2, 3, 10, 8})}, {true, true},
                 [](const auto& x) { return matmul(x[0], transpose(x[1], -1, -2)); }, kReduction, kReduction);
  check_backends("(..., n, k) @ (k, m) folded", {normal({2, 3, 9, 11}), normal({11, 5})}, {true, true},
                 [](const auto& x) { return matmul(x[0], x[1]); }, kReduction, kReduction);
  check_backends("vector @ matrix", {normal({53}), b}, {true, true}, [](const auto& x) { return matmul(x[0], x[1]); }, kReduction,
                 kReduction);
  check_backends("matrix @ vector", {a, normal({53})}, {true, true}, [](const auto& x) { return matmul(x[0], x[1]); }, kReduction,
                 kReduction);
  check_backends("vector . vector", {normal({53}), normal({53})}, {true, true}, [](const auto& x) { return matmul(x[0], x[1]); },
                 kReduction, kReduction);
  const TensorF x3 = normal({2, 7, 19}), w = normal({13, 19}), bias = normal({13});
  check_backends("linear with bias", {x3, w, bias}, {true, true, true},
                 [](const auto& x) { return linear(x[0], x[1], x[2]); }, kReduction, kReduction);
  check_backends("linear without bias", {x3, w}, {true, true}, [](const auto& x) { return linear(x[0], x[1]); }, kReduction,
                 kReduction);
  check_backends("feed_forward", {x3, normal({23, 19}), normal({23}), normal({11, 23}), normal({11})}, {true, true, true, true, true},
                 [](const auto& x) { return feed_forward(x[0], x[1], x[2], x[3], x[4]); }, kReduction, kReduction);
  check_backends("matmul with an empty inner dim", {normal({3, 0}), normal({0, 4})}, {false, false},
                 [](const auto& x) { return matmul(x[0], x[1]); }, kExact, kExact);
}

TEST_CASE("harness: gather, scatter_add, index_select") {
  SKIP_WITHOUT_DEVICE();
  Generator gen(11);
  const TensorF x = normal({6, 9, 5});
  const TensorI index = randint<std::int64_t>(0, 9, {6, 4, 5}, gen);  // duplicates along dim 1
  check_backends("gather dim 1", {x}, {true},
                 [&](const auto& in) { return gather(in[0], 1, on_index<device_of<decltype(in)>>(index)); }, kExact, kReduction);
  const TensorF src = normal({6, 4, 5});
  check_backends("scatter_add dim 1 (duplicate indices)", {x, src}, {true, true},
                 [&](const auto& in) { return scatter_add(in[0], 1, on_index<device_of<decltype(in)>>(index), in[1]); }, kReduction,
                 kExact);
  const TensorI rows = tensor<std::int64_t>({4, 0, 4, 2, 5, 5, 1});
  check_backends("index_select dim 0", {x}, {true},
                 [&](const auto& in) { return index_select(in[0], 0, on_index<device_of<decltype(in)>>(rows)); }, kExact, kReduction);
  check_backends("index_select dim 2 of a transposed view", {x}, {true},
                 [&](const auto& in) {
                   return index_select(transpose(in[0], 0, 2), 2, on_index<device_of<decltype(in)>>(rows));
                 },
                 kExact, kReduction);
  CHECK_THROWS_AS(gather(to_device(x), 1, to_device(tensor<std::int64_t>({9}).expand({6, 1, 5}).contiguous())), ShapeError);
}

// ---- the layers (nn/, model/) on both backends --------------------------------
// Layers whose parameters come from a seeded Generator get the same values on
// both devices (random fills are drawn on the host and copied); dropout masks
// are counter-based, so the same seed gives the same mask on both.
namespace {

// The parameters of the module built on each device, for comparing their gradients.
struct ParamSink {
  std::vector<Tensor<float, cpu>> on_cpu;
  std::vector<Tensor<float, cuda>> on_cuda;
  template <class D>
  void keep(const std::vector<Tensor<float, D>>& params) {
    if constexpr (std::is_same_v<D, cpu>)
      on_cpu = params;
    else
      on_cuda = params;
  }
  void compare_grads(const std::string& name, const Tolerance& tol) const {
    REQUIRE(on_cpu.size() == on_cuda.size());
    for (std::size_t i = 0; i < on_cpu.size(); ++i) {
      INFO(name << ": parameter " << i << " " << on_cpu[i].shape().str());
      REQUIRE(on_cpu[i].grad().defined() == on_cuda[i].grad().defined());
      if (!on_cpu[i].grad().defined()) continue;
      const double error = compare(host(on_cuda[i].grad()), host(on_cpu[i].grad()), tol);
      MESSAGE(name << ": parameter " << i << " gradient error " << error);
      CHECK(error <= tol.rel);
    }
  }
};

// A (B, J + V, 1) keep mask drawn on the host, the same on both devices.
template <class D>
Tensor<float, D> same_mask(std::int64_t batch, std::int64_t joints, std::int64_t vertices, std::uint64_t seed) {
  Generator gen(seed);
  return model::sample_token_keep_mask<float, D>(batch, joints, vertices, 0.3, gen);
}

}  // namespace

TEST_CASE("layers: conv2d (padded, strided, dilated, grouped, 1x1, no bias, one sample)") {
  SKIP_WITHOUT_DEVICE();
  struct Case {
    std::string name;
    Shape x, w;
    nn::Window2d window;
    std::int64_t groups;
    bool bias;
  };
  const std::vector<Case> cases{
      {"3x3 pad 1", {3, 5, 11, 9}, {7, 5, 3, 3}, {{}, {1, 1}, {1, 1}, {1, 1}}, 1, true},
      {"3x3 stride 2 pad 1", {2, 5, 13, 10}, {6, 5, 3, 3}, {{}, {2, 2}, {1, 1}, {1, 1}}, 1, true},
      {"7x7 stride 2 pad 3 (stem-like)", {2, 3, 23, 19}, {8, 3, 7, 7}, {{}, {2, 2}, {3, 3}, {1, 1}}, 1, false},
      {"3x3 dilation 2, stride (1, 2)", {2, 4, 12, 13}, {5, 4, 3, 3}, {{}, {1, 2}, {2, 1}, {2, 2}}, 1, true},
      {"grouped 3x3 (3 groups)", {2, 6, 9, 11}, {9, 2, 3, 3}, {{}, {1, 1}, {1, 1}, {1, 1}}, 3, true},
      {"1x1 pointwise", {3, 7, 5, 6}, {11, 7, 1, 1}, {{}, {1, 1}, {0, 0}, {1, 1}}, 1, true},
      {"1x1 stride 2 (downsample)", {3, 7, 9, 8}, {5, 7, 1, 1}, {{}, {2, 2}, {0, 0}, {1, 1}}, 1, false},
      {"one sample, 3x3 pad 1", {1, 4, 10, 7}, {6, 4, 3, 3}, {{}, {1, 1}, {1, 1}, {1, 1}}, 1, true},
  };
  for (const Case& c : cases) {
    std::vector<TensorF> inputs{normal(c.x), normal(c.w)};
    if (c.bias) inputs.push_back(normal({c.w[0]}));
    const std::vector<bool> grad(inputs.size(), true);
    check_backends("conv2d " + c.name, inputs, grad,
                   [&](const auto& in) {
                     using D = device_of<decltype(in)>;
                     return conv2d(in[0], in[1], c.bias ? in[2] : Tensor<float, D>(), c.window, c.groups);
                   },
                   kReduction, kReduction);
  }
  // Conv1d (METRO's grid-to-token mixing) through the module.
  ParamSink params;
  check_backends("Conv1d module", {normal({2, 9, 17})}, {true},
                 [&](const auto& in) {
                   using D = device_of<decltype(in)>;
                   Generator gen(3);
                   nn::Conv1d<float, D> conv(nn::Conv2dConfig{9, 13, 1}, gen);
                   params.keep(conv.parameters());
                   return conv.forward(in[0]);
                 },
                 kReduction, kReduction);
  params.compare_grads("Conv1d module", kReduction);
}

TEST_CASE("layers: batch_norm in training (running stats) and eval, layer_norm") {
  SKIP_WITHOUT_DEVICE();
  for (const bool training : {true, false}) {
    const std::string mode = training ? "training" : "eval";
    std::vector<TensorF> stats;  // running mean and var after the call: CPU, then CUDA
    check_backends("batch_norm " + mode, {normal({3, 5, 7, 9}), positive({5}), normal({5}), normal({5}), positive({5})},
                   {true, true, true, false, false},
                   [&](const auto& in) {
                     const auto y = nn::batch_norm(in[0], in[1], in[2], in[3], in[4], training, 0.1, 1e-5);
                     stats.push_back(host(in[3]));
                     stats.push_back(host(in[4]));
                     return y;
                   },
                   kReduction, kReduction);
    REQUIRE(stats.size() == 4);
    CHECK(compare(stats[2], stats[0], kReduction) <= kReduction.rel);
    CHECK(compare(stats[3], stats[1], kReduction) <= kReduction.rel);
  }
  check_backends("layer_norm", {normal({3, 7, 37}), positive({37}), normal({37})}, {true, true, true},
                 [](const auto& in) { return nn::layer_norm(in[0], in[1], in[2], 1e-12); }, kReduction, kReduction);
  check_backends("layer_norm of a transposed view", {normal({37, 11}), positive({11}), normal({11})}, {true, true, true},
                 [](const auto& in) { return nn::layer_norm(transpose(in[0], 0, 1), in[1], in[2], 1e-5); }, kReduction,
                 kReduction);
}

TEST_CASE("layers: max_pool2d and adaptive_avg_pool2d") {
  SKIP_WITHOUT_DEVICE();
  const TensorF x = normal({2, 3, 11, 13});
  check_backends("max_pool2d 3/2/1", {x}, {true}, [](const auto& in) { return nn::max_pool2d(in[0], 3, 2, 1); }, kExact, kExact);
  check_backends("max_pool2d 2/2/0", {x}, {true}, [](const auto& in) { return nn::max_pool2d(in[0], 2, 2, 0); }, kExact, kExact);
  check_backends("adaptive_avg_pool2d 3x4", {x}, {true}, [](const auto& in) { return nn::adaptive_avg_pool2d(in[0], 3, 4); },
                 kReduction, kReduction);
  check_backends("adaptive_avg_pool2d 1x1 (global)", {x}, {true},
                 [](const auto& in) { return nn::adaptive_avg_pool2d(in[0], 1, 1); }, kReduction, kReduction);
}

TEST_CASE("layers: dropout masks are the same on both devices") {
  SKIP_WITHOUT_DEVICE();
  check_backends("dropout p 0.3", {normal({7, 129})}, {true},
                 [](const auto& in) {
                   Generator gen(17);
                   return nn::dropout(in[0], 0.3, true, gen);
                 },
                 kExact, kExact);
  check_backends("dropout of a transposed view", {normal({9, 31})}, {true},
                 [](const auto& in) {
                   Generator gen(18);
                   return nn::dropout(transpose(in[0], 0, 1), 0.5, true, gen);
                 },
                 kExact, kExact);
  check_backends("token keep mask", {normal({3, 12, 5})}, {true},
                 [](const auto& in) {
                   using D = device_of<decltype(in)>;
                   return model::apply_token_mask(in[0], same_mask<D>(3, 4, 8, 5), 0.01f);
                 },
                 kElementwise, kElementwise);
}

TEST_CASE("layers: Linear, Embedding, attention and a BERT layer (with dropout)") {
  SKIP_WITHOUT_DEVICE();
  {
    ParamSink params;
    check_backends("Linear module", {normal({2, 5, 19})}, {true},
                   [&](const auto& in) {
                     using D = device_of<decltype(in)>;
                     Generator gen(4);
                     nn::Linear<float, D> layer(nn::LinearConfig{19, 13}, gen);
                     params.keep(layer.parameters());
                     return layer.forward(in[0]);
                   },
                   kReduction, kReduction);
    params.compare_grads("Linear module", kReduction);
  }
  {
    ParamSink params;
    const TensorI ids = tensor<std::int64_t>({3, 0, 7, 3, 9, 1});
    check_backends("Embedding lookup", {normal({2, 3})}, {true},
                   [&](const auto& in) {
                     using D = device_of<decltype(in)>;
                     Generator gen(5);
                     nn::Embedding<float, D> table(nn::EmbeddingConfig{11, 6}, gen);
                     params.keep(table.parameters());
                     return table.forward(on_index<D>(ids)) * sum(in[0]);
                   },
                   kReduction, kReduction);
    params.compare_grads("Embedding lookup", kReduction);
  }
  for (const bool training : {false, true}) {
    const std::string mode = training ? " (training, dropout 0.1)" : " (eval)";
    const nn::AttentionConfig attention{24, 4, 0.1, 0.1, 1e-12, nn::Init::bert};
    ParamSink self_params, layer_params;
    check_backends("MultiHeadSelfAttention" + mode, {normal({2, 13, 24})}, {true},
                   [&](const auto& in) {
                     using D = device_of<decltype(in)>;
                     Generator gen(6);
                     nn::MultiHeadSelfAttention<float, D> layer(attention, gen);
                     layer.train(training);
                     self_params.keep(layer.parameters());
                     return layer.forward(in[0]);
                   },
                   kReduction, kReduction);
    self_params.compare_grads("MultiHeadSelfAttention" + mode, kReduction);
    check_backends("TransformerLayer" + mode, {normal({2, 13, 24})}, {true},
                   [&](const auto& in) {
                     using D = device_of<decltype(in)>;
                     Generator gen(7);
                     nn::TransformerLayer<float, D> layer(nn::TransformerLayerConfig{attention, 37}, gen);
                     layer.train(training);
                     layer_params.keep(layer.parameters());
                     return layer.forward(in[0]);
                   },
                   kReduction, kReduction);
    layer_params.compare_grads("TransformerLayer" + mode, kReduction);
  }
}

TEST_CASE("layers: a ResNet (basic blocks) and a METRO encoder block") {
  SKIP_WITHOUT_DEVICE();
  {
    ParamSink params;
    check_backends("ResNet basic {1, 1}", {normal({2, 3, 33, 31})}, {true},
                   [&](const auto& in) {
                     using D = device_of<decltype(in)>;
                     Generator gen(8);
                     nn::ResNet<float, D> net(nn::ResNetConfig{nn::BlockType::basic, {1, 1}, 8, 3}, gen);
                     net.train(true);
                     params.keep(net.parameters());
                     return net.forward(in[0]);
                   },
                   kReduction, kReduction);
    params.compare_grads("ResNet basic {1, 1}", kReduction);
  }
  {
    ParamSink params;
    check_backends("MetroEncoderBlock (dropout 0.1)", {normal({2, 17, 21})}, {true},
                   [&](const auto& in) {
                     using D = device_of<decltype(in)>;
                     Generator gen(9);
                     model::MetroEncoderBlock<float, D> block(model::EncoderBlockConfig{21, 32, 5, 2, 4, 48}, 64, 0.1, gen);
                     block.train(true);
                     params.keep(block.parameters());
                     return block.forward(in[0]);
                   },
                   kReduction, kReduction);
    params.compare_grads("MetroEncoderBlock (dropout 0.1)", kReduction);
  }
}

TEST_CASE("layers: METRO losses") {
  SKIP_WITHOUT_DEVICE();
  const TensorF gate = tensor<float>({1, 0, 1});
  check_backends("gated_l1_loss", {normal({3, 9, 3}), normal({3, 9, 3}), gate}, {true, false, false},
                 [](const auto& in) { return nn::gated_l1_loss(in[0], in[1], in[2]); }, kReduction, kReduction);
  check_backends("gated_mse_loss", {normal({3, 9, 3}), normal({3, 9, 3}), gate}, {true, false, false},
                 [](const auto& in) { return nn::gated_mse_loss(in[0], in[1], in[2]); }, kReduction, kReduction);
  check_backends("keypoint_3d_loss", {normal({3, 14, 3}), positive({3, 14, 4}), gate}, {true, false, false},
                 [](const auto& in) { return nn::keypoint_3d_loss(in[0], in[1], in[2]); }, kReduction, kReduction);
  check_backends("keypoint_2d_loss of a projection", {normal({3, 14, 3}), normal({3, 3}), positive({3, 14, 3}), gate},
                 {true, true, false, false},
                 [](const auto& in) { return nn::keypoint_2d_loss(nn::orthographic_projection(in[0], in[1]), in[2], in[3]); },
                 kReduction, kReduction);
  check_backends("gated_l1_loss, no sample selected", {normal({3, 9, 3}), normal({3, 9, 3}), zeros<float>({3})},
                 {true, false, false}, [](const auto& in) { return nn::gated_l1_loss(in[0], in[1], in[2]); }, kExact, kExact);
}

TEST_CASE("layers: Adam, AdamW and SGD steps, grad_norm and clip_grad_norm") {
  SKIP_WITHOUT_DEVICE();
  const std::vector<TensorF> values{normal({7, 13}), normal({29})}, grads{normal({7, 13}), normal({29})};
  // Runs `steps` optimizer steps from the same values and gradients (gradient k scaled by 1 + k) on device D.
  const auto run = [&](auto device, auto make, int steps) {
    using D = decltype(device);
    std::vector<Tensor<float, D>> params;
    for (const auto& v : values) params.push_back(on<D>(v).requires_grad_());
    auto optimizer = make(params);
    for (int k = 0; k < steps; ++k) {
      for (std::size_t i = 0; i < params.size(); ++i) params[i].set_grad(on<D>(grads[i] * static_cast<float>(1 + k)));
      optimizer->step();
    }
    std::vector<TensorF> out;
    for (const auto& p : params) out.push_back(host(p));
    return out;
  };
  const auto check = [&](const std::string& name, auto make_cpu, auto make_cuda) {
    const std::vector<TensorF> want = run(cpu{}, make_cpu, 3), got = run(cuda{}, make_cuda, 3);
    for (std::size_t i = 0; i < want.size(); ++i) {
      const double error = compare(got[i], want[i], kElementwise);
      MESSAGE(name << ": parameter " << i << " error " << error);
      CHECK(error <= kElementwise.rel);
    }
  };
  const nn::AdamOptions adam{1e-2, 0.9, 0.999, 1e-8, 0};
  const nn::AdamOptions adamw{1e-2, 0.9, 0.999, 1e-8, 1e-2};
  const nn::SGDOptions sgd{1e-2, 0.9, 0, 1e-4, true};
  check("Adam", [&](auto p) { return std::make_unique<nn::Adam<float, cpu>>(p, adam); },
        [&](auto p) { return std::make_unique<nn::Adam<float, cuda>>(p, adam); });
  check("AdamW", [&](auto p) { return std::make_unique<nn::AdamW<float, cpu>>(p, adamw); },
        [&](auto p) { return std::make_unique<nn::AdamW<float, cuda>>(p, adamw); });
  check("SGD (Nesterov)", [&](auto p) { return std::make_unique<nn::SGD<float, cpu>>(p, sgd); },
        [&](auto p) { return std::make_unique<nn::SGD<float, cuda>>(p, sgd); });
  check("SGD (plain)", [&](auto p) { return std::make_unique<nn::SGD<float, cpu>>(p, nn::SGDOptions{}); },
        [&](auto p) { return std::make_unique<nn::SGD<float, cuda>>(p, nn::SGDOptions{}); });
  // grad_norm and clip_grad_norm over a large gradient (several of the CPU's blocks).
  const TensorF big = normal({40000}), small = normal({17});
  std::vector<Tensor<float, cpu>> cpu_params{on<cpu>(big).requires_grad_(), on<cpu>(small).requires_grad_()};
  std::vector<Tensor<float, cuda>> cuda_params{on<cuda>(big).requires_grad_(), on<cuda>(small).requires_grad_()};
  for (std::size_t i = 0; i < 2; ++i) {
    cpu_params[i].set_grad(on<cpu>(i == 0 ? big : small));
    cuda_params[i].set_grad(on<cuda>(i == 0 ? big : small));
  }
  const double norm_cpu = nn::grad_norm(cpu_params), norm_cuda = nn::grad_norm(cuda_params);
  MESSAGE("grad_norm: cpu " << norm_cpu << ", cuda " << norm_cuda);
  CHECK(std::abs(norm_cuda - norm_cpu) <= 1e-9 * norm_cpu);
  CHECK(std::abs(nn::clip_grad_norm(cuda_params, 1.0) - nn::clip_grad_norm(cpu_params, 1.0)) <= 1e-9 * norm_cpu);
  CHECK(compare(host(cuda_params[0].grad()), host(cpu_params[0].grad()), kElementwise) <= kElementwise.rel);
  CHECK(nn::all_finite(cuda_params));
}

// The small METRO (tests/consumer/main.cpp's configuration) trains 20 Adam steps
// on each device from the same weights, images and targets; dropout (0.1) and
// masked vertex modeling (30%) draw the same masks on both. The losses agree.
TEST_CASE("model: the small METRO trains 20 steps on both devices and the losses agree") {
  SKIP_WITHOUT_DEVICE();
  model::MetroConfig config = model::small(20, {40, 80}, 64);
  config.num_joints = 14;
  const auto train = [&](auto device) {
    using D = decltype(device);
    Generator gen(0);
    model::MetroNetwork<float, D> net(config, gen);
    Generator data(1);
    net.set_template(on<D>(randn<float>({14, 3}, data)), on<D>(randn<float>({20, 3}, data)));
    net.set_fixed_upsampling(on<D>(randn<float>({80, 40}, data)));  // small() keeps its last upsampling fixed
    net.train(true);
    nn::Adam<float, D> adam(net.parameters(), nn::AdamOptions{1e-4});
    std::vector<double> losses;
    for (int step = 0; step < 20; ++step) {
      const auto images = on<D>(randn<float>({2, 3, 64, 64}, data));
      const auto full = on<D>(randn<float>({2, 80, 3}, data) * 0.3f);
      const auto joints = on<D>(randn<float>({2, 14, 3}, data) * 0.3f);
      const auto out = net.forward(images);
      const auto loss = mean(abs(out.full_vertices - full)) + mean((out.joints - joints) * (out.joints - joints)) +
                        mean(out.camera * out.camera) * 0.01f;
      adam.zero_grad();
      loss.backward();
      nn::clip_grad_norm(net.parameters(), 10.0);
      adam.step();
      losses.push_back(loss.item());
    }
    clear_tape();
    return losses;
  };
  const std::vector<double> want = train(cpu{}), got = train(cuda{});
  REQUIRE(got.size() == want.size());
  for (std::size_t step = 0; step < want.size(); ++step) {
    const double error = std::abs(got[step] - want[step]) / std::abs(want[step]);
    MESSAGE("step " << step << ": loss cpu " << want[step] << ", cuda " << got[step] << ", relative difference " << error);
    CHECK(error <= 1e-3);
  }
  CHECK(want.back() < want.front());
}

TEST_CASE("model: a checkpoint written on one device loads on the other, weights and Adam state exact") {
  SKIP_WITHOUT_DEVICE();
  model::MetroConfig config = model::small(20, {40, 80}, 64);
  config.num_joints = 14;
  // One Adam step on device D, then a checkpoint of the weights and the moments.
  const auto step_and_save = [&](auto device, const std::string& path) {
    using D = decltype(device);
    Generator gen(3);
    model::MetroNetwork<float, D> net(config, gen);
    net.set_template(on<D>(randn<float>({14, 3}, gen)), on<D>(randn<float>({20, 3}, gen)));
    net.set_fixed_upsampling(on<D>(randn<float>({80, 40}, gen)));
    nn::Adam<float, D> adam(net.parameters(), nn::AdamOptions{1e-3});
    sum(net.forward(on<D>(randn<float>({2, 3, 64, 64}, gen))).full_vertices).backward();
    adam.step();
    clear_tape();
    model::save_checkpoint(path, net, &adam);
    std::map<std::string, std::vector<float>> state;
    for (const auto& [name, t] : net.state_dict()) state.emplace("model." + name, t.to_vector());
    for (const auto& [name, t] : adam.state().tensors) state.emplace("optimizer." + name, t.to_vector());
    return state;
  };
  // The checkpoint loaded into a fresh network and Adam on device D.
  const auto load = [&](auto device, const std::string& path) {
    using D = decltype(device);
    Generator other(4);
    model::MetroNetwork<float, D> net(config, other);
    nn::Adam<float, D> adam(net.parameters(), nn::AdamOptions{1e-3});
    model::load_checkpoint(path, net, &adam);
    std::map<std::string, std::vector<float>> state;
    for (const auto& [name, t] : net.state_dict()) state.emplace("model." + name, t.to_vector());
    for (const auto& [name, t] : adam.state().tensors) state.emplace("optimizer." + name, t.to_vector());
    CHECK(adam.state().step == 1);
    return state;
  };
  const std::string from_cuda = "/tmp/metro_test_cuda_checkpoint.safetensors", from_cpu = "/tmp/metro_test_cpu_checkpoint.safetensors";
  const auto written_on_cuda = step_and_save(cuda{}, from_cuda);
  const auto written_on_cpu = step_and_save(cpu{}, from_cpu);
  CHECK(load(cpu{}, from_cuda) == written_on_cuda);
  CHECK(load(cuda{}, from_cpu) == written_on_cpu);
  CHECK(written_on_cuda.size() == written_on_cpu.size());
  CHECK(written_on_cuda.count("optimizer.exp_avg.0") == 1);
}
