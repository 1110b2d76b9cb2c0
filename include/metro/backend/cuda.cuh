#pragma once
// The CUDA backend: error checks, device detection, a caching device allocator,
// host <-> device copies, and Kernels<cuda>, the same kernel interface as
// Kernels<cpu> (backend/cpu.hpp), so the ops in metro/ops/ and their autograd
// run on Tensor<T, cuda> from the same templates: strided elementwise `map`
// (broadcasting, any strides) over __host__ __device__ functors (METRO_HD, the
// same functors the CPU runs in its OpenMP loops), reductions, row softmax,
// GELU, gather / scatter_add and GEMM through cuBLAS.
//
// Only .cu translation units include this header; the CPU headers never
// include CUDA headers. Everything runs on the current device and on the
// legacy default stream, so all work is ordered and a block freed to the
// cache may be handed out again at once.
//
// The layers in metro/nn (conv im2col / col2im, norms, pooling, dropout,
// optimizers) run their per-row / per-channel / per-plane METRO_HD bodies
// through for_each, one GPU thread per index (correct, not yet tuned). Random
// numbers are drawn on the host and copied, except dropout masks, which each
// thread evaluates from the same counter-based (seed, index) as the CPU.
// Index checks (gather, scatter_add) copy the index to the host. These kernels
// have been compiled with nvcc but not yet run on a GPU.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "metro/backend/cpu.hpp"
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
  static Allocator& instance() {  // never destroyed, as Allocator<cpu>
    static Allocator* allocator = new Allocator;
    return *allocator;
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

// Threads per block of every kernel below, and the most blocks a grid-stride launch uses.
inline constexpr int kThreads = 256;
inline constexpr std::int64_t kMaxBlocks = std::int64_t{1} << 16;

// Blocks for n independent elements (grid-stride loops cover the rest).
inline unsigned grid_for(std::int64_t n) {
  return static_cast<unsigned>(std::min<std::int64_t>((n + kThreads - 1) / kThreads, kMaxBlocks));
}

// The geometry of a map, passed by value to the kernel: K = 1 + N operands
// (the output first), dims merged on the host by make_loop_plan (cpu.hpp).
template <std::size_t K>
struct MapGeometry {
  int rank;
  std::int64_t sizes[Shape::kMaxRank];
  std::int64_t strides[K][Shape::kMaxRank];
};

// The N input pointers (one unused slot when N == 0).
template <class T, std::size_t N>
struct MapInputs {
  const T* p[N > 0 ? N : 1];
};

// out[i] = f(in_0[i], ..., in_{N-1}[i]) over n elements, every operand contiguous.
template <class T, class Out, std::size_t N, class F, std::size_t... K>
__global__ void map_contiguous_kernel(std::int64_t n, Out* out, MapInputs<T, N> in, F f, std::index_sequence<K...>) {
  (void)in;
  const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) out[i] = f(in.p[K][i]...);
}

// The same over a strided loop nest: element i's index along each merged dim
// gives every operand's offset (broadcast inputs have stride 0).
template <class T, class Out, std::size_t N, class F, std::size_t... K>
__global__ void map_strided_kernel(std::int64_t n, MapGeometry<N + 1> g, Out* out, MapInputs<T, N> in, F f,
                                   std::index_sequence<K...>) {
  (void)in;
  const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    std::int64_t offset[N + 1] = {};
    std::int64_t rest = i;
    for (int d = g.rank - 1; d >= 0; --d) {
      const std::int64_t index = rest % g.sizes[d];
      rest /= g.sizes[d];
      for (std::size_t k = 0; k < N + 1; ++k) offset[k] += index * g.strides[k][d];
    }
    out[offset[0]] = f(in.p[K][offset[K + 1]]...);
  }
}

// Sums `values` (one per thread of the block) into values[0]; every thread must call it.
template <class T>
__device__ void block_sum(T* values) {
  const int tid = static_cast<int>(threadIdx.x);
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if (tid < s) values[tid] += values[tid + s];
    __syncthreads();
  }
}
template <class T>
__device__ void block_max(T* values) {
  const int tid = static_cast<int>(threadIdx.x);
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if (tid < s && values[tid + s] > values[tid]) values[tid] = values[tid + s];
    __syncthreads();
  }
}

// (outer, reduced, 1) -> (outer): one block per row, a fixed tree of partial sums.
template <class T>
__global__ void sum_rows_kernel(const T* in, T* out, std::int64_t rows, std::int64_t n) {
  __shared__ T partial[kThreads];
  for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* row = in + r * n;
    T acc = T(0);
    for (std::int64_t i = threadIdx.x; i < n; i += kThreads) acc += row[i];
    partial[threadIdx.x] = acc;
    block_sum(partial);
    if (threadIdx.x == 0) out[r] = partial[0];
    __syncthreads();
  }
}

// (outer, reduced, inner) -> (outer, inner), inner > 1: one thread per output,
// adding the reduced axis in order (the CPU's order).
template <class T>
__global__ void sum_middle_kernel(const T* in, T* out, std::int64_t outer, std::int64_t reduced, std::int64_t inner) {
  const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t t = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < outer * inner; t += step) {
    const T* src = in + t / inner * reduced * inner + t % inner;
    T acc = T(0);
    for (std::int64_t r = 0; r < reduced; ++r) acc += src[r * inner];
    out[t] = acc;
  }
}

// Largest (or smallest) value over the middle axis and the index of its first occurrence, as the CPU.
template <class T>
__global__ void extremum_middle_kernel(const T* in, T* values, std::int64_t* indices, std::int64_t outer, std::int64_t reduced,
                                       std::int64_t inner, bool largest) {
  const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t t = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < outer * inner; t += step) {
    const T* src = in + t / inner * reduced * inner + t % inner;
    T best = src[0];
    std::int64_t best_index = 0;
    for (std::int64_t r = 1; r < reduced; ++r) {
      const T v = src[r * inner];
      if (largest ? v > best : v < best) best = v, best_index = r;
    }
    values[t] = best;
    if (indices) indices[t] = best_index;
  }
}

// Softmax (or log-softmax) of scale * row, one block per row of n.
template <class T>
__global__ void softmax_rows_kernel(const T* in, T* out, std::int64_t rows, std::int64_t n, T scale, bool log) {
  __shared__ T shared[kThreads];
  for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* x = in + r * n;
    T* y = out + r * n;
    T m = -std::numeric_limits<T>::infinity();
    for (std::int64_t i = threadIdx.x; i < n; i += kThreads) m = x[i] * scale > m ? x[i] * scale : m;
    shared[threadIdx.x] = m;
    block_max(shared);
    const T max = shared[0];
    __syncthreads();
    T acc = T(0);
    for (std::int64_t i = threadIdx.x; i < n; i += kThreads) acc += std::exp(x[i] * scale - max);
    shared[threadIdx.x] = acc;
    block_sum(shared);
    const T total = shared[0];
    __syncthreads();
    if (log) {
      const T shift = std::log(total) + max;
      for (std::int64_t i = threadIdx.x; i < n; i += kThreads) y[i] = x[i] * scale - shift;
    } else {
      const T inverse = T(1) / total;
      for (std::int64_t i = threadIdx.x; i < n; i += kThreads) y[i] = std::exp(x[i] * scale - max) * inverse;
    }
  }
}

// gx = scale * y * (gy - sum(gy * y)) (softmax), gx = scale * (gy - exp(y) * sum(gy)) (log-softmax), one block per row.
template <class T>
__global__ void softmax_rows_backward_kernel(const T* y, const T* gy, T* gx, std::int64_t rows, std::int64_t n, T scale, bool log) {
  __shared__ T shared[kThreads];
  for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* yr = y + r * n;
    const T* g = gy + r * n;
    T* out = gx + r * n;
    T acc = T(0);
    for (std::int64_t i = threadIdx.x; i < n; i += kThreads) acc += log ? g[i] : g[i] * yr[i];
    shared[threadIdx.x] = acc;
    block_sum(shared);
    const T total = shared[0];
    __syncthreads();
    for (std::int64_t i = threadIdx.x; i < n; i += kThreads)
      out[i] = log ? scale * (g[i] - std::exp(yr[i]) * total) : scale * yr[i] * (g[i] - total);
  }
}

// GELU (erf form) and its derivative, as Kernels<cpu>::gelu / gelu_backward.
template <class T>
struct GeluForward {
  __device__ T operator()(T v) const { return T(0.5) * v * (T(1) + std::erf(v * T(0.70710678118654752440))); }
};
template <class T>
struct GeluBackward {
  __device__ T operator()(T v, T g) const {
    const T cdf = T(0.5) * (T(1) + std::erf(v * T(0.70710678118654752440)));
    const T pdf = std::exp(T(-0.5) * v * v) * T(0.39894228040143267794);
    return g * (cdf + v * pdf);
  }
};

// out[o, j, i] = src[o, index[o, j, i], i]
template <class T>
__global__ void gather_kernel(const T* src, const std::int64_t* index, T* out, std::int64_t outer, std::int64_t src_size,
                              std::int64_t index_size, std::int64_t inner) {
  const std::int64_t n = outer * index_size * inner, step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t t = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < n; t += step)
    out[t] = src[(t / (index_size * inner) * src_size + index[t]) * inner + t % inner];
}

// dst[o, index[o, j, i], i] += src[o, j, i], with atomics (duplicate indices add
// in an unspecified order: not bitwise reproducible, unlike the CPU's serial loop).
template <class T>
__global__ void scatter_add_kernel(T* dst, const std::int64_t* index, const T* src, std::int64_t outer, std::int64_t dst_size,
                                   std::int64_t index_size, std::int64_t inner) {
  const std::int64_t n = outer * index_size * inner, step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t t = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < n; t += step)
    atomicAdd(dst + (t / (index_size * inner) * dst_size + index[t]) * inner + t % inner, src[t]);
}

// f(i) for i < count, grid-stride: the layers' per-index bodies (Kernels<cuda>::for_each).
template <class F>
__global__ void for_each_kernel(std::int64_t count, F f) {
  const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += step) f(i);
}

// partial[b] = sum of x^2 (in double) over block b of `block` values: one thread block per value block.
template <class T>
__global__ void sum_of_squares_kernel(const T* x, std::int64_t n, std::int64_t block, double* partial, std::int64_t blocks) {
  __shared__ double shared[kThreads];
  for (std::int64_t b = blockIdx.x; b < blocks; b += gridDim.x) {
    const std::int64_t begin = b * block, end = begin + block < n ? begin + block : n;
    double acc = 0;
    for (std::int64_t i = begin + threadIdx.x; i < end; i += kThreads) acc += static_cast<double>(x[i]) * static_cast<double>(x[i]);
    shared[threadIdx.x] = acc;
    block_sum(shared);
    if (threadIdx.x == 0) partial[b] = shared[0];
    __syncthreads();
  }
}

// c[r * ldc + j] = row[j] for index i = r * n + j of an (m x n) block of C: the
// bias a GEMM then accumulates onto (Kernels<cuda>::gemm_bias).
template <class T>
struct RepeatRow {
  const T* row;
  T* c;
  std::int64_t n, ldc;
  __device__ void operator()(std::int64_t i) const { c[i / n * ldc + i % n] = row[i % n]; }
};

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

  // ---- elementwise ----

  // out[i] = f(in_0[i], ..., in_{N-1}[i]) for every index of `shape`; every
  // operand is a strided view of that shape (broadcast inputs have stride 0).
  // f is a functor whose operator() is METRO_HD (__host__ __device__), the
  // same one Kernels<cpu>::map runs; dims are merged as on the CPU, and a fully
  // contiguous map skips the index arithmetic.
  template <class T, class Out, std::size_t N, class F>
  static void map(const Shape& shape, Out* out, const Strides& out_strides, const std::array<const T*, N>& in,
                  const std::array<const Strides*, N>& in_strides, F f) {
    const std::int64_t n = shape.numel();
    if (n == 0) return;
    std::array<const Strides*, N + 1> all{&out_strides};
    for (std::size_t k = 0; k < N; ++k) all[k + 1] = in_strides[k];
    const LoopPlan<N + 1> plan = make_loop_plan<N + 1>(shape, all);
    detail::MapInputs<T, N> inputs{};
    for (std::size_t k = 0; k < N; ++k) inputs.p[k] = in[k];
    bool unit = plan.rank == 1;
    for (std::size_t k = 0; k < N + 1 && unit; ++k) unit = plan.strides[k][0] == 1;
    if (unit) {
      detail::map_contiguous_kernel<T, Out, N><<<detail::grid_for(n), detail::kThreads>>>(n, out, inputs, f, std::make_index_sequence<N>{});
    } else {
      detail::MapGeometry<N + 1> geometry{};
      geometry.rank = plan.rank;
      for (int d = 0; d < plan.rank; ++d) {
        const auto sd = static_cast<std::size_t>(d);
        geometry.sizes[d] = plan.sizes[sd];
        for (std::size_t k = 0; k < N + 1; ++k) geometry.strides[k][d] = plan.strides[k][sd];
      }
      detail::map_strided_kernel<T, Out, N><<<detail::grid_for(n), detail::kThreads>>>(n, geometry, out, inputs, f,
                                                                                      std::make_index_sequence<N>{});
    }
    METRO_CUDA_CHECK(cudaGetLastError());
  }

  // GELU, erf form, over n contiguous values, and its backward gx = gy (Phi(x) + x phi(x)).
  template <class T>
  static void gelu(const T* x, T* y, std::int64_t n) {
    if (n == 0) return;
    detail::map_contiguous_kernel<T, T, 1><<<detail::grid_for(n), detail::kThreads>>>(
        n, y, detail::MapInputs<T, 1>{{x}}, detail::GeluForward<T>{}, std::make_index_sequence<1>{});
    METRO_CUDA_CHECK(cudaGetLastError());
  }
  template <class T>
  static void gelu_backward(const T* x, const T* gy, T* gx, std::int64_t n) {
    if (n == 0) return;
    detail::map_contiguous_kernel<T, T, 2><<<detail::grid_for(n), detail::kThreads>>>(
        n, gx, detail::MapInputs<T, 2>{{x, gy}}, detail::GeluBackward<T>{}, std::make_index_sequence<2>{});
    METRO_CUDA_CHECK(cudaGetLastError());
  }

  // ---- reductions ----

  // Sums a contiguous (outer, reduced, inner) block over its middle axis into
  // (outer, inner). The order of additions depends only on the sizes: a
  // reduction over the last axis (inner == 1) is a fixed tree per row, any
  // other adds the reduced axis in order, as the CPU does.
  template <class T>
  static void sum_middle(const T* in, T* out, std::int64_t outer, std::int64_t reduced, std::int64_t inner) {
    if (outer * inner == 0) return;
    if (inner == 1)
      detail::sum_rows_kernel<<<static_cast<unsigned>(std::min(outer, detail::kMaxBlocks)), detail::kThreads>>>(in, out, outer, reduced);
    else
      detail::sum_middle_kernel<<<detail::grid_for(outer * inner), detail::kThreads>>>(in, out, outer, reduced, inner);
    METRO_CUDA_CHECK(cudaGetLastError());
  }

  // Maximum (or minimum, when `largest` is false) over the middle axis with the index of the first extremum.
  template <class T>
  static void extremum_middle(const T* in, T* values, std::int64_t* indices, std::int64_t outer, std::int64_t reduced,
                              std::int64_t inner, bool largest) {
    if (outer * inner == 0) return;
    detail::extremum_middle_kernel<<<detail::grid_for(outer * inner), detail::kThreads>>>(in, values, indices, outer, reduced, inner,
                                                                                          largest);
    METRO_CUDA_CHECK(cudaGetLastError());
  }

  // Softmax of each contiguous row of length n (scaled by `scale` first), numerically stable; one block per row.
  template <class T>
  static void softmax_rows(const T* in, T* out, std::int64_t rows, std::int64_t n, T scale, bool log) {
    if (rows == 0 || n == 0) return;
    detail::softmax_rows_kernel<<<static_cast<unsigned>(std::min(rows, detail::kMaxBlocks)), detail::kThreads>>>(in, out, rows, n,
                                                                                                             scale, log);
    METRO_CUDA_CHECK(cudaGetLastError());
  }
  // Backward of softmax rows: gx = scale * y * (gy - sum(gy * y)); of log-softmax rows: gx = scale * (gy - softmax * sum(gy)).
  template <class T>
  static void softmax_rows_backward(const T* y, const T* gy, T* gx, std::int64_t rows, std::int64_t n, T scale, bool log) {
    if (rows == 0 || n == 0) return;
    detail::softmax_rows_backward_kernel<<<static_cast<unsigned>(std::min(rows, detail::kMaxBlocks)), detail::kThreads>>>(
        y, gy, gx, rows, n, scale, log);
    METRO_CUDA_CHECK(cudaGetLastError());
  }

  // ---- indexing ----

  // Along `dim` of contiguous tensors viewed as (outer, size, inner):
  // gather:      out[o, j, i] = src[o, index[o, j, i], i]           (index has out's shape)
  // scatter_add: dst[o, index[o, j, i], i] += src[o, j, i]          (index has src's shape)
  // Indices are validated by the caller. scatter_add uses atomicAdd (float, double).
  template <class T>
  static void gather(const T* src, const std::int64_t* index, T* out, std::int64_t outer, std::int64_t src_size,
                     std::int64_t index_size, std::int64_t inner) {
    const std::int64_t n = outer * index_size * inner;
    if (n == 0) return;
    detail::gather_kernel<<<detail::grid_for(n), detail::kThreads>>>(src, index, out, outer, src_size, index_size, inner);
    METRO_CUDA_CHECK(cudaGetLastError());
  }
  template <class T>
  static void scatter_add(T* dst, const std::int64_t* index, const T* src, std::int64_t outer, std::int64_t dst_size,
                          std::int64_t index_size, std::int64_t inner) {
    const std::int64_t n = outer * index_size * inner;
    if (n == 0) return;
    detail::scatter_add_kernel<<<detail::grid_for(n), detail::kThreads>>>(dst, index, src, outer, dst_size, index_size, inner);
    METRO_CUDA_CHECK(cudaGetLastError());
  }

  // ---- index loops for the layers (nn/) ----

  // f(i) for every i in [0, count), one thread per index (grid-stride); f is the
  // METRO_HD functor Kernels<cpu>::for_each runs in its OpenMP loops. `grain`
  // is the CPU's piece size and is not used here.
  template <class F>
  static void for_each(std::int64_t count, std::int64_t /*grain*/, F f) {
    if (count <= 0) return;
    detail::for_each_kernel<<<detail::grid_for(count), detail::kThreads>>>(count, f);
    METRO_CUDA_CHECK(cudaGetLastError());
  }
  template <class F>
  static void for_each_simd(std::int64_t count, std::int64_t grain, F f) {
    for_each(count, grain, f);
  }

  // Sum of x^2 over n contiguous device values, in double: the CPU's blocks of
  // Kernels<cpu>::kSquaresBlock values (each a fixed tree here), combined on the host in order.
  template <class T>
  static double sum_of_squares(const T* x, std::int64_t n) {
    if (n <= 0) return 0;
    constexpr std::int64_t block = Kernels<cpu>::kSquaresBlock;
    const std::int64_t blocks = (n + block - 1) / block;
    Tensor<double, cuda> partial = Tensor<double, cuda>::empty({blocks});
    detail::sum_of_squares_kernel<<<static_cast<unsigned>(std::min(blocks, detail::kMaxBlocks)), detail::kThreads>>>(
        x, n, block, partial.data(), blocks);
    METRO_CUDA_CHECK(cudaGetLastError());
    std::vector<double> host(static_cast<std::size_t>(blocks));
    copy_to_host(host.data(), partial.data(), blocks);
    double total = 0;
    for (double p : host) total += p;
    return total;
  }

  // ---- host <-> device (synchronous; used by to_vector, item, from_vector, random fills) ----
  template <class T>
  static void copy_to_host(T* host, const T* device, std::int64_t n) {
    if (n > 0) METRO_CUDA_CHECK(cudaMemcpy(host, device, sizeof(T) * static_cast<std::size_t>(n), cudaMemcpyDeviceToHost));
  }
  template <class T>
  static void copy_from_host(T* device, const T* host, std::int64_t n) {
    if (n > 0) METRO_CUDA_CHECK(cudaMemcpy(device, host, sizeof(T) * static_cast<std::size_t>(n), cudaMemcpyHostToDevice));
  }

  // ---- GEMM ----

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
    if (k == 0) {  // an empty sum: C = 0 (or C unchanged); cuBLAS would reject the leading dimensions
      if (!accumulate) METRO_CUDA_CHECK(cudaMemset2D(c, sizeof(T) * static_cast<std::size_t>(ldc), 0, sizeof(T) * static_cast<std::size_t>(n),
                                                     static_cast<std::size_t>(m)));
      return;
    }
    const detail::BlasOperand ba = detail::blas_operand(a.rows, a.cols, a.row_stride, a.col_stride);
    const detail::BlasOperand bb = detail::blas_operand(b.rows, b.cols, b.row_stride, b.col_stride);
    const int ld = detail::blas_int(std::max<std::int64_t>(ldc, n), "ldc");
    detail::blas_gemm(bb.op, ba.op, n, m, k, T(1), b.data, bb.ld, a.data, ba.ld, accumulate ? T(1) : T(0), c, ld);
  }

  // C (m x n) = A B + 1 bias^T, bias (n) added to every row, as Kernels<cpu>::gemm_bias:
  // C starts as the bias, repeated, and cuBLAS accumulates the product onto it.
  template <class T>
  static void gemm_bias(const MatrixView<T>& a, const MatrixView<T>& b, const T* bias, T* c, std::int64_t ldc) {
    for_each(a.rows * b.cols, 0, detail::RepeatRow<T>{bias, c, b.cols, ldc});
    gemm(a, b, c, ldc, true);
  }

  // Runs `batch` independent products, product(i) calling gemm, one after another
  // on the stream (each a cuBLAS call; a strided-batched call is a later step).
  template <class T, class Product>
  static void batched(std::int64_t batch, std::int64_t /*flops_each*/, Product&& product) {
    for (std::int64_t i = 0; i < batch; ++i) product(i);
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
