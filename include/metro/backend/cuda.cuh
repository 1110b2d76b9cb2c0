#pragma once
// The CUDA backend, first slice: error checks, device detection, a caching
// device allocator (so Tensor<T, cuda> storage works), host <-> device copies,
// a contiguous elementwise binary kernel (add, mul) and GEMM through cuBLAS.
//
// Only .cu translation units include this header; the CPU headers never
// include CUDA headers. Everything runs on the current device and on the
// legacy default stream, so all work is ordered and a block freed to the
// cache may be handed out again at once.
//
// Not yet: the ops in metro/ops/ (and their autograd) do not run on
// Tensor<T, cuda>; they call Kernels<D>::map with host lambdas and read
// data() on the host. Use the functions in metro::cuda_ops below.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "metro/backend/matrix_view.hpp"
#include "metro/core/allocator.hpp"
#include "metro/core/device.hpp"
#include "metro/core/error.hpp"
#include "metro/core/shape.hpp"
#include "metro/core/tensor.hpp"

// Throws metro::Error naming the call, the place and the CUDA / cuBLAS message.
#define METRO_CUDA_CHECK(call) ::metro::detail::cuda_check((call), #call, __FILE__, __LINE__)
#define METRO_CUBLAS_CHECK(call) ::metro::detail::cublas_check((call), #call, __FILE__, __LINE__)

namespace metro {

namespace detail {

inline std::string failure_prefix(const char* call, const char* file, int line) {
  return std::string(call) + " failed (" + file + ":" + std::to_string(line) + "): ";
}

inline void cuda_check(cudaError_t status, const char* call, const char* file, int line) {
  if (status == cudaSuccess) return;
  cudaGetLastError();  // clear the error so later calls do not report it again
  throw Error(failure_prefix(call, file, line) + cudaGetErrorName(status) + ": " + cudaGetErrorString(status));
}

inline void cublas_check(cublasStatus_t status, const char* call, const char* file, int line) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  throw Error(failure_prefix(call, file, line) + cublasGetStatusName(status) + ": " + cublasGetStatusString(status));
}

// Whether a device is usable, probed once; `reason` says why not.
struct CudaProbe {
  bool available = false;
  std::string reason;
};

inline const CudaProbe& cuda_probe() noexcept {
  static const CudaProbe probe = []() noexcept {
    int count = 0;
    const cudaError_t status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess) {
      cudaGetLastError();
      return CudaProbe{false, std::string(cudaGetErrorName(status)) + ": " + cudaGetErrorString(status)};
    }
    if (count == 0) return CudaProbe{false, "cudaGetDeviceCount found 0 devices"};
    return CudaProbe{true, ""};
  }();
  return probe;
}

}  // namespace detail

// True when a CUDA device and a driver that supports this runtime are present.
inline bool cuda_available() noexcept { return detail::cuda_probe().available; }

// Throws metro::Error("no CUDA device: <reason>") unless cuda_available().
inline void require_cuda() {
  if (!cuda_available()) throw Error("no CUDA device: " + detail::cuda_probe().reason);
}

namespace detail {

// Device memory for CachingAllocator: cudaMalloc / cudaFree on the current device.
struct DeviceMemory {
  static constexpr std::size_t kAlignment = 512;
  static void* acquire(std::size_t bytes) noexcept {
    void* p = nullptr;
    const cudaError_t status = cudaMalloc(&p, bytes);
    if (status == cudaSuccess) return p;
    cudaGetLastError();  // clear it, so later calls do not report it again
    last_failure() = status;
    return nullptr;
  }
  // Errors are ignored: at exit the runtime may already be unloaded.
  static void release(void* p) noexcept { cudaFree(p); }
  [[noreturn]] static void out_of_memory(std::size_t bytes) {
    cuda_check(last_failure(), ("cudaMalloc(" + std::to_string(bytes) + " bytes)").c_str(), __FILE__, __LINE__);
    throw Error("cudaMalloc(" + std::to_string(bytes) + " bytes) failed");
  }
  static cudaError_t& last_failure() noexcept {
    thread_local cudaError_t status = cudaSuccess;
    return status;
  }
};

}  // namespace detail

// The caching device allocator (core/allocator.hpp): a training step that repeats
// the same shapes calls cudaMalloc only in its first iteration.
template <>
class Allocator<cuda> : public detail::CachingAllocator<detail::DeviceMemory> {
 public:
  static Allocator& instance() {
    static Allocator allocator;
    return allocator;
  }

 private:
  Allocator() : CachingAllocator(std::size_t{16} << 30) {}  // cache up to 16 GiB
};

// ---- host <-> device copies (synchronous) ----

// A contiguous device copy of a host tensor (any layout). Autograd is not carried over.
template <class T>
Tensor<T, cuda> to_device(const Tensor<T, cpu>& host) {
  if (!host.is_contiguous()) throw ValueError("to_device: tensor " + host.shape().str() + " is not contiguous; call contiguous() first");
  Tensor<T, cuda> dev = Tensor<T, cuda>::empty(host.shape());
  METRO_CUDA_CHECK(cudaMemcpy(dev.data(), host.data(), sizeof(T) * static_cast<std::size_t>(host.numel()), cudaMemcpyHostToDevice));
  return dev;
}

// A contiguous host copy of a contiguous device tensor.
template <class T>
Tensor<T, cpu> to_host(const Tensor<T, cuda>& dev) {
  if (!dev.is_contiguous()) throw ValueError("to_host: device tensor " + dev.shape().str() + " is not contiguous");
  Tensor<T, cpu> host = Tensor<T, cpu>::empty(dev.shape());
  METRO_CUDA_CHECK(cudaMemcpy(host.data(), dev.data(), sizeof(T) * static_cast<std::size_t>(dev.numel()), cudaMemcpyDeviceToHost));
  return host;
}

namespace backend {

template <class Device>
struct Kernels;

// Elementwise functors for Kernels<cuda>::binary.
struct AddOp {
  template <class T>
  __device__ T operator()(T a, T b) const { return a + b; }
};
struct MulOp {
  template <class T>
  __device__ T operator()(T a, T b) const { return a * b; }
};

namespace detail {

// out[i] = f(a[i], b[i]) for i < n, grid-stride loop.
template <class T, class F>
__global__ void binary_kernel(std::int64_t n, T* out, const T* a, const T* b, F f) {
  const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) out[i] = f(a[i], b[i]);
}

inline int blas_int(std::int64_t v, const char* what) {
  if (v < 0 || v > INT_MAX) throw ValueError(std::string("cuda gemm: ") + what + " " + std::to_string(v) + " does not fit cuBLAS's int");
  return static_cast<int>(v);
}

// The process-wide cuBLAS handle. CUBLAS_DEFAULT_MATH: fp32 GEMM stays fp32
// (no TF32 tensor cores) unless NVIDIA_TF32_OVERRIDE says otherwise.
inline cublasHandle_t blas_handle() {
  static const cublasHandle_t handle = [] {
    metro::require_cuda();
    cublasHandle_t h = nullptr;
    METRO_CUBLAS_CHECK(cublasCreate(&h));
    METRO_CUBLAS_CHECK(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH));
    return h;
  }();  // never destroyed: the runtime may be unloaded before static destructors run
  return handle;
}

inline void blas_gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha, const float* a, int lda,
                      const float* b, int ldb, float beta, float* c, int ldc) {
  METRO_CUBLAS_CHECK(cublasSgemm(blas_handle(), ta, tb, m, n, k, &alpha, a, lda, b, ldb, &beta, c, ldc));
}
inline void blas_gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, double alpha, const double* a, int lda,
                      const double* b, int ldb, double beta, double* c, int ldc) {
  METRO_CUBLAS_CHECK(cublasDgemm(blas_handle(), ta, tb, m, n, k, &alpha, a, lda, b, ldb, &beta, c, ldc));
}

// How cuBLAS (column-major) reads a row-major matrix view X: its memory read
// column-major is X^T, so `op` is N for a row-major view and T for a
// column-major one (a transpose); `ld` is the stride between those columns.
struct BlasOperand {
  cublasOperation_t op;
  int ld;
};

inline BlasOperand blas_operand(std::int64_t rows, std::int64_t cols, std::int64_t row_stride, std::int64_t col_stride) {
  // A dimension of extent 1 never moves the index, so its stride does not matter.
  if ((col_stride == 1 || cols == 1) && (rows == 1 || row_stride >= cols))
    return {CUBLAS_OP_N, blas_int(rows == 1 ? std::max<std::int64_t>(cols, 1) : row_stride, "leading dimension")};
  if ((row_stride == 1 || rows == 1) && (cols == 1 || col_stride >= rows))
    return {CUBLAS_OP_T, blas_int(cols == 1 ? std::max<std::int64_t>(rows, 1) : col_stride, "leading dimension")};
  throw ValueError("cuda gemm: a matrix view with strides (" + std::to_string(row_stride) + ", " + std::to_string(col_stride) +
                   ") is neither row- nor column-major; make it contiguous first");
}

}  // namespace detail

template <>
struct Kernels<cuda> {
  static constexpr int kBlock = 256;

  // out[i] = f(a[i], b[i]) for n contiguous elements; f a __device__ functor (AddOp, MulOp).
  template <class T, class F>
  static void binary(std::int64_t n, T* out, const T* a, const T* b, F f) {
    if (n == 0) return;
    const std::int64_t blocks = std::min<std::int64_t>((n + kBlock - 1) / kBlock, 65535);
    detail::binary_kernel<<<static_cast<unsigned>(blocks), kBlock>>>(n, out, a, b, f);
    METRO_CUDA_CHECK(cudaGetLastError());
  }

  // A matrix in device memory (backend/matrix_view.hpp): row-major when
  // col_stride == 1, column-major (e.g. a transpose) when row_stride == 1.
  template <class T>
  using MatrixView = backend::MatrixView<T>;

  // C (m x n, row-major, leading dimension ldc) = A (m x k) B (k x n) (+ C when accumulate), fp32 or fp64.
  // cuBLAS is column-major, and C's memory read column-major is C^T (n x m),
  // so it computes C^T = B^T A^T: B goes first.
  template <class T>
  static void gemm(const MatrixView<T>& a, const MatrixView<T>& b, T* c, std::int64_t ldc, bool accumulate) {
    if (a.cols != b.rows) throw ShapeError("cuda gemm: inner dims " + std::to_string(a.cols) + " != " + std::to_string(b.rows));
    const int m = detail::blas_int(a.rows, "rows"), n = detail::blas_int(b.cols, "cols"), k = detail::blas_int(a.cols, "depth");
    if (m == 0 || n == 0) return;
    const detail::BlasOperand ba = detail::blas_operand(a.rows, a.cols, a.row_stride, a.col_stride);
    const detail::BlasOperand bb = detail::blas_operand(b.rows, b.cols, b.row_stride, b.col_stride);
    const int ld = detail::blas_int(std::max<std::int64_t>(ldc, n), "ldc");
    detail::blas_gemm(bb.op, ba.op, n, m, k, T(1), b.data, bb.ld, a.data, ba.ld, accumulate ? T(1) : T(0), c, ld);
  }
};

}  // namespace backend

// Device-only versions of a few ops, without autograd, until the ops in
// metro/ops/ dispatch to Kernels<cuda>.
namespace cuda_ops {

namespace detail {
template <class T, class F>
Tensor<T, cuda> binary(const Tensor<T, cuda>& a, const Tensor<T, cuda>& b, F f, const char* op) {
  if (!(a.shape() == b.shape())) throw ShapeError(std::string("cuda_ops::") + op + ": shapes " + a.shape().str() + " and " + b.shape().str() + " differ");
  if (!a.is_contiguous() || !b.is_contiguous()) throw ValueError(std::string("cuda_ops::") + op + ": operands must be contiguous");
  Tensor<T, cuda> y = Tensor<T, cuda>::empty(a.shape());
  backend::Kernels<cuda>::binary(y.numel(), y.data(), a.data(), b.data(), f);
  return y;
}

template <class T>
typename backend::Kernels<cuda>::template MatrixView<T> matrix_view(const Tensor<T, cuda>& m) {
  return {m.data(), m.shape()[0], m.shape()[1], m.strides()[0], m.strides()[1]};
}
}  // namespace detail

// a + b, a * b: same shapes, contiguous.
template <class T>
Tensor<T, cuda> add(const Tensor<T, cuda>& a, const Tensor<T, cuda>& b) {
  return detail::binary(a, b, backend::AddOp{}, "add");
}
template <class T>
Tensor<T, cuda> mul(const Tensor<T, cuda>& a, const Tensor<T, cuda>& b) {
  return detail::binary(a, b, backend::MulOp{}, "mul");
}

// (m, k) @ (k, n) -> (m, n); each operand row-major or column-major (a transposed view).
template <class T>
Tensor<T, cuda> matmul(const Tensor<T, cuda>& a, const Tensor<T, cuda>& b) {
  if (a.dim() != 2 || b.dim() != 2 || a.shape()[1] != b.shape()[0])
    throw ShapeError("cuda_ops::matmul: " + a.shape().str() + " @ " + b.shape().str() + " (2-D operands only)");
  Tensor<T, cuda> y = Tensor<T, cuda>::empty({a.shape()[0], b.shape()[1]});
  backend::Kernels<cuda>::gemm(detail::matrix_view(a), detail::matrix_view(b), y.data(), b.shape()[1], false);
  return y;
}

}  // namespace cuda_ops

}  // namespace metro
