#pragma once
// Device tags. The backend is a compile-time template parameter: Tensor<float, cpu>
// runs on the CPU (Eigen + OpenMP), Tensor<float, cuda> on an NVIDIA GPU (cuda.cuh).

#if defined(__CUDACC__)
#define METRO_HD __host__ __device__
#else
#define METRO_HD
#endif

namespace metro {

struct cpu {
  static constexpr const char* name = "cpu";
};
struct cuda {
  static constexpr const char* name = "cuda";
};

}  // namespace metro
