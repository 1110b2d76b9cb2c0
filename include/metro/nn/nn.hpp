#pragma once
// The neural-network layers (namespace metro::nn).
#include "metro/nn/activation.hpp"
#include "metro/nn/attention.hpp"
#include "metro/nn/check_layer.hpp"
#include "metro/nn/checkpoint.hpp"
#include "metro/nn/init.hpp"
#include "metro/nn/linear.hpp"
#include "metro/nn/module.hpp"
#include "metro/nn/norm.hpp"
#include "metro/nn/state.hpp"
#include "metro/nn/conv.hpp"
#include "metro/nn/pool.hpp"
#include "metro/nn/resnet.hpp"
