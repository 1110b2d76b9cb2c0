// The CUDA backend against the CPU backend. Without a device (or driver) every
// device test prints "skipped: no CUDA device" and passes; the error paths run
// everywhere.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "metro/backend/cuda.cuh"
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
