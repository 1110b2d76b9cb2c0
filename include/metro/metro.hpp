#pragma once
// Umbrella header: the whole library but metro/train/ (the procedural body as a
// network's template and targets, targets.hpp, and the example programs'
// drivers). Include the area headers instead (metro/tensor.hpp, metro/nn/nn.hpp,
// metro/model/model.hpp...) to compile less.
#include "metro/tensor.hpp"
#include "metro/nn/nn.hpp"
#include "metro/nn/losses.hpp"
#include "metro/nn/optim.hpp"
#include "metro/nn/schedule.hpp"
#include "metro/model/model.hpp"
#include "metro/eval/metrics.hpp"
#include "metro/io/cli.hpp"
#include "metro/body/body_model.hpp"
#include "metro/render/rasterizer.hpp"
#include "metro/data/loader.hpp"
