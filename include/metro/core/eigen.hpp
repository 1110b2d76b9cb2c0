#pragma once
// Eigen, included once for the whole library so users' -Werror builds stay clean:
// Eigen 3.4 has unused variables in its AVX-512 bf16 code, and g++ 12 reports
// the deliberately undefined registers of its own AVX-512 intrinsics as
// uninitialized (GCC bug 105593). Diagnostics are judged where the code is, so
// including those headers under these pragmas silences both. Every header of the
// library takes Eigen from here: the core module (dense matrices and arrays, GEMM)
// and the special functions (erf); the library needs no decomposition or geometry
// module, and leaving them out saves 2 % of a user's compile (include those after
// this header).
#pragma GCC diagnostic push
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wunknown-warning-option"
#endif
#pragma GCC diagnostic ignored "-Wunused-variable"
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
#include <Eigen/Core>
#include <unsupported/Eigen/SpecialFunctions>  // vectorized erf (GELU)
#pragma GCC diagnostic pop
