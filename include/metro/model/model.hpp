#pragma once
// The METRO model (namespace metro::model).
#include "metro/model/config.hpp"
#include "metro/model/encoder_block.hpp"
#include "metro/model/masking.hpp"
#include "metro/model/metro_network.hpp"
#include "metro/model/checkpoint.hpp"
