#pragma once
// The tensor library: Tensor<T, Device>, its ops with autograd, and gradcheck.
#include "metro/core/precision.hpp"
#include "metro/core/tensor.hpp"
#include "metro/ops/common.hpp"
#include "metro/ops/elementwise.hpp"
#include "metro/ops/views.hpp"
#include "metro/ops/reduce.hpp"
#include "metro/ops/matmul.hpp"
#include "metro/ops/index.hpp"
#include "metro/ops/creation.hpp"
#include "metro/ops/print.hpp"
#include "metro/ops/methods.hpp"
#include "metro/autograd/gradcheck.hpp"
