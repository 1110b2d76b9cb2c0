#pragma once
// Umbrella header: everything in the library.
#include "metro/tensor.hpp"
