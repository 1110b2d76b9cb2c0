#pragma once
// The configuration of a METRO network and its named presets. Every size of the
// network comes from here and from the template mesh; nothing is hard-coded.
//
//   paper_body  Sec. 4 / official code, ResNet-50 variant: 224x224 input, 7x7x2048 grid,
//               14 joints + 431 coarse vertices, blocks 2051->1024->512, 512->256->128,
//               128->128->3 (4 layers, 4 heads, intermediate 3072), upsampling 431->1723->6890.
//   paper_hand  21 joints + 195 vertices, pooled global feature, blocks 2051->1024->512,
//               512->256->128, 128->64->3 (intermediate 4x hidden), upsampling 195->778, MVM off.
//   small       trainable on 2 CPU cores: 3-stage ResNet (stride 16, 128 channels),
//               128x128 or smaller input, 14 joints + 108 vertex tokens (the body's
//               fourth level), one layer per block (hidden 128/64/32), upsampling
//               108->431->6890 (train::small_config sizes it from the body).
#include <string>
#include <vector>

#include "metro/io/json.hpp"
#include "metro/nn/resnet.hpp"

namespace metro::model {

// One transformer encoder block (Sec. 3.2): Linear(in -> hidden), `layers` BERT
// layers of width `hidden`, then Linear(hidden -> out) plus a residual Linear(in -> out).
struct EncoderBlockConfig {
  std::int64_t in = 0, hidden = 0, out = 0;
  std::int64_t layers = 4, heads = 4, intermediate = 3072;
  // Recompute each layer's self-attention in the backward (nn::checkpoint) instead
  // of keeping q, k and v: paper_body's training step at batch 8 peaks 0.2 GB
  // lower for about 6% more time. Values and gradients are the same either way.
  bool checkpoint_self_attention = true;
};

// How image features become tokens.
//   grid:   the backbone's H x W grid cells mixed into N tokens by Conv1d(H*W -> N, 1)
//           (official body network);
//   global: the average-pooled feature copied to every token (the paper, and the hand network).
enum class TokenMode { grid, global };

struct MetroConfig {
  std::string preset = "custom";
  nn::ResNetConfig backbone;
  std::int64_t image_size = 224;
  TokenMode token_mode = TokenMode::grid;
  std::int64_t num_joints = 14;
  std::int64_t num_coarse_vertices = 431;
  std::vector<std::int64_t> upsample_sizes{1723, 6890};  // coarse -> ... -> full mesh
  // false: the last upsampling step is a fixed buffer `fixed_upsampling` (set it to the
  // body's barycentric matrix, train::init_upsampling_from_body), not a learned Linear.
  bool learned_full_upsampling = true;
  std::vector<EncoderBlockConfig> blocks;
  std::int64_t position_embeddings = 512;  // rows of each block's position table (as BERT)
  double dropout = 0.1;                    // embeddings, attention probabilities, hidden states
  bool camera_from_all_tokens = false;     // hand: camera head over joints + vertices
  std::int64_t camera_hidden = 250;
  double mvm_ratio = 0.3;                  // Sec. 3.3; 0 disables masking
  double mask_value = 0.01;                // a masked token's whole input vector

  std::int64_t num_tokens() const { return num_joints + num_coarse_vertices; }
  std::int64_t num_full_vertices() const { return upsample_sizes.empty() ? num_coarse_vertices : upsample_sizes.back(); }
  // Channels of the backbone's last grid (BasicBlock x1, Bottleneck x4 expansion).
  std::int64_t feature_channels() const {
    return (backbone.base_width << (backbone.layers.size() - 1)) * nn::block_expansion(backbone.block);
  }
  // The backbone downsamples by 4 (stem) and 2 per stage after the first.
  std::int64_t backbone_stride() const { return std::int64_t{4} << (backbone.layers.size() - 1); }
  std::int64_t grid_size() const { return image_size / backbone_stride(); }  // a multiple: MetroNetwork checks
};

// Three blocks whose widths shrink to xyz: in -> hidden[i] -> out[i], out[i] feeds block i+1.
inline std::vector<EncoderBlockConfig> reducing_blocks(std::int64_t in, const std::vector<std::int64_t>& hidden,
                                                       const std::vector<std::int64_t>& out, std::int64_t layers,
                                                       std::int64_t heads, const std::vector<std::int64_t>& intermediate) {
  std::vector<EncoderBlockConfig> blocks;
  for (std::size_t i = 0; i < hidden.size(); ++i) {
    blocks.push_back({in, hidden[i], out[i], layers, heads, intermediate[i]});
    in = out[i];
  }
  return blocks;
}

inline MetroConfig paper_body() {
  MetroConfig c;
  c.preset = "paper_body";
  c.backbone = nn::ResNetConfig{nn::BlockType::bottleneck, {3, 4, 6, 3}, 64, 3};
  c.blocks = reducing_blocks(3 + c.feature_channels(), {1024, 256, 128}, {512, 128, 3}, 4, 4, {3072, 3072, 3072});
  return c;
}

inline MetroConfig paper_hand() {
  MetroConfig c = paper_body();
  c.preset = "paper_hand";
  c.token_mode = TokenMode::global;
  c.num_joints = 21;
  c.num_coarse_vertices = 195;
  c.upsample_sizes = {778};
  c.blocks = reducing_blocks(3 + c.feature_channels(), {1024, 256, 64}, {512, 128, 3}, 4, 4, {4096, 1024, 256});
  c.camera_from_all_tokens = true;
  c.camera_hidden = 150;
  c.mvm_ratio = 0;
  return c;
}

// For 2 CPU cores. The template sizes come from the mesh it is trained with. Where
// the time goes decides the shape: attention is quadratic in the tokens and the
// last upsampling is a (full x mid) weight, so both levels sit one step coarser
// than the paper's; the backbone stops at stride 16 so a 64 px input still gives
// a 4x4 grid of cells to the tokens. The mid -> full upsampling stays at the body's
// barycentric matrix: learned in a 10-minute run, its 3 M weights drift apart and
// the full mesh comes out spiky.
inline MetroConfig small(std::int64_t num_coarse_vertices, std::vector<std::int64_t> upsample_sizes, std::int64_t image_size = 128) {
  MetroConfig c;
  c.preset = "small";
  c.image_size = image_size;
  c.backbone = nn::ResNetConfig{nn::BlockType::basic, {1, 1, 1}, 32, 3};
  c.num_coarse_vertices = num_coarse_vertices;
  c.upsample_sizes = std::move(upsample_sizes);
  c.learned_full_upsampling = false;
  c.blocks = reducing_blocks(3 + c.feature_channels(), {128, 64, 32}, {64, 32, 3}, 1, 4, {256, 128, 64});
  for (auto& block : c.blocks) block.checkpoint_self_attention = false;  // small activations: keep them, save the time
  c.camera_hidden = 64;
  return c;
}

// ---- JSON, for checkpoint metadata --------------------------------------------

inline io::json::Value to_json(const MetroConfig& c) {
  using io::json::Array, io::json::Object, io::json::Value;
  const auto ints = [](const std::vector<std::int64_t>& v) {
    Array a;
    for (auto x : v) a.emplace_back(x);
    return Value(a);
  };
  Array blocks;
  for (const auto& b : c.blocks)
    blocks.emplace_back(Object{{"in", b.in}, {"hidden", b.hidden}, {"out", b.out}, {"layers", b.layers}, {"heads", b.heads},
                               {"intermediate", b.intermediate}, {"checkpoint_self_attention", b.checkpoint_self_attention}});
  return Object{{"preset", c.preset},
                {"backbone", Object{{"block", c.backbone.block == nn::BlockType::basic ? "basic" : "bottleneck"},
                                    {"layers", ints(c.backbone.layers)},
                                    {"base_width", c.backbone.base_width},
                                    {"in_channels", c.backbone.in_channels}}},
                {"image_size", c.image_size},
                {"token_mode", c.token_mode == TokenMode::grid ? "grid" : "global"},
                {"num_joints", c.num_joints},
                {"num_coarse_vertices", c.num_coarse_vertices},
                {"upsample_sizes", ints(c.upsample_sizes)},
                {"learned_full_upsampling", c.learned_full_upsampling},
                {"blocks", Value(blocks)},
                {"position_embeddings", c.position_embeddings},
                {"dropout", c.dropout},
                {"camera_from_all_tokens", c.camera_from_all_tokens},
                {"camera_hidden", c.camera_hidden},
                {"mvm_ratio", c.mvm_ratio},
                {"mask_value", c.mask_value}};
}

inline MetroConfig config_from_json(const io::json::Value& v) {
  const auto ints = [](const io::json::Value& a) {
    std::vector<std::int64_t> out;
    for (const auto& x : a.as_array()) out.push_back(x.as_int64());
    return out;
  };
  MetroConfig c;
  c.preset = v.at("preset").as_string();
  const auto& b = v.at("backbone");
  c.backbone = nn::ResNetConfig{b.at("block").as_string() == "basic" ? nn::BlockType::basic : nn::BlockType::bottleneck,
                                ints(b.at("layers")), b.at("base_width").as_int64(), b.at("in_channels").as_int64()};
  c.image_size = v.at("image_size").as_int64();
  c.token_mode = v.at("token_mode").as_string() == "grid" ? TokenMode::grid : TokenMode::global;
  c.num_joints = v.at("num_joints").as_int64();
  c.num_coarse_vertices = v.at("num_coarse_vertices").as_int64();
  c.upsample_sizes = ints(v.at("upsample_sizes"));
  if (v.contains("learned_full_upsampling")) c.learned_full_upsampling = v.at("learned_full_upsampling").as_bool();
  c.blocks.clear();
  for (const auto& block : v.at("blocks").as_array()) {
    c.blocks.push_back({block.at("in").as_int64(), block.at("hidden").as_int64(), block.at("out").as_int64(),
                        block.at("layers").as_int64(), block.at("heads").as_int64(), block.at("intermediate").as_int64()});
    if (block.contains("checkpoint_self_attention")) c.blocks.back().checkpoint_self_attention = block.at("checkpoint_self_attention").as_bool();
  }
  c.position_embeddings = v.at("position_embeddings").as_int64();
  c.dropout = v.at("dropout").as_double();
  c.camera_from_all_tokens = v.at("camera_from_all_tokens").as_bool();
  c.camera_hidden = v.at("camera_hidden").as_int64();
  c.mvm_ratio = v.at("mvm_ratio").as_double();
  c.mask_value = v.at("mask_value").as_double();
  return c;
}

}  // namespace metro::model
