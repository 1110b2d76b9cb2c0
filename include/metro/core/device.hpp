#pragma once
// Device tags. The backend is a compile-time template parameter: Tensor<float, cpu>
// runs on the CPU (Eigen + OpenMP), Tensor<float, cuda> on an NVIDIA GPU (cuda.cuh).

#if defined(__CUDACC__)
#define METRO_HD __host__ __device__
#else
#define METRO_HD
#endif

// METRO_SIMD(clauses): `#pragma omp simd clauses` on the host, nothing in device
// code, for the loops inside METRO_HD functors (nn layers' per-row bodies).
#if defined(__CUDA_ARCH__)
#define METRO_SIMD(...)
#else
#define METRO_PRAGMA_(x) _Pragma(#x)
#define METRO_SIMD(...) METRO_PRAGMA_(omp simd __VA_ARGS__)
#endif

namespace metro {

struct cpu {
  static constexpr const char* name = "cpu";
};
struct cuda {
  static constexpr const char* name = "cuda";
};

}  // namespace metro
