#pragma once
// The METRO network (paper Fig. 2, official MeshTransformer code):
//
//   image (B, 3, S, S) -> CNN backbone -> grid (B, C, h, w)                          Sec. 3.1
//   -> image tokens (B, N, C), N = J + V:  grid mode Conv1d(h*w -> N, 1); global mode pooled copies
//   -> concat template xyz of [J joints; V coarse vertices]  (B, N, 3 + C)
//   -> masked vertex modeling in training                                            Sec. 3.3
//   -> three encoder blocks, widths shrinking to xyz          (B, N, 3)              Sec. 3.2
//   -> joints (B, J, 3), coarse vertices (B, V, 3)
//   -> camera [s, tx, ty]: Linear(3 -> 1) per token, Linear(V -> hidden), Linear(hidden -> 3)
//   -> learned upsampling along the vertex axis: V -> mid -> full                    Sec. 3.5
//      (the last step may be a fixed buffer instead, MetroConfig::learned_full_upsampling)
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "metro/model/encoder_block.hpp"
#include "metro/model/masking.hpp"

namespace metro::model {

template <class T, class D = cpu>
struct MetroOutput {
  Tensor<T, D> camera;          // (B, 3): s, tx, ty of the weak-perspective camera
  Tensor<T, D> joints;          // (B, J, 3) from the joint tokens
  Tensor<T, D> coarse_vertices; // (B, V, 3) from the vertex tokens
  Tensor<T, D> mid_vertices;    // (B, mid, 3), undefined when the preset upsamples in one step
  Tensor<T, D> full_vertices;   // (B, full, 3)
};

template <class T, class D = cpu>
class MetroNetwork : public nn::Module<T, D> {
 public:
  explicit MetroNetwork(const MetroConfig& config, Generator& gen = default_generator())
      : config_(config), mask_generator_(nn::fresh_seed(gen)) {
    check_config(config);
    using nn::Init, nn::LinearConfig;
    backbone_ = this->register_module("backbone", std::make_shared<nn::ResNet<T, D>>(config.backbone, gen));
    const std::int64_t cells = config.grid_size() * config.grid_size();
    if (config.token_mode == TokenMode::grid)
      grid_to_tokens_ = this->register_module("conv_learn_tokens", std::make_shared<nn::Conv1d<T, D>>(nn::Conv2dConfig{cells, config.num_tokens(), 1}, gen));
    template_joints_ = this->register_buffer("template_joints", zeros<T, D>({config.num_joints, 3}));
    template_vertices_ = this->register_buffer("template_vertices", zeros<T, D>({config.num_coarse_vertices, 3}));
    auto blocks = std::make_shared<nn::Sequential<T, D>>();
    for (const auto& block : config.blocks)
      blocks->push_back(std::make_shared<MetroEncoderBlock<T, D>>(block, config.position_embeddings, config.dropout, gen));
    blocks_ = this->register_module("trans_encoder", blocks);
    const std::int64_t camera_tokens = config.camera_from_all_tokens ? config.num_tokens() : config.num_coarse_vertices;
    camera_token_ = this->register_module("cam_param_fc", std::make_shared<nn::Linear<T, D>>(LinearConfig{3, 1}, gen));
    camera_hidden_ = this->register_module("cam_param_fc2", std::make_shared<nn::Linear<T, D>>(LinearConfig{camera_tokens, config.camera_hidden}, gen));
    camera_out_ = this->register_module("cam_param_fc3", std::make_shared<nn::Linear<T, D>>(LinearConfig{config.camera_hidden, 3}, gen));
    std::int64_t from = config.num_coarse_vertices;
    for (std::size_t i = 0; i < config.upsample_sizes.size(); ++i) {
      const std::int64_t to = config.upsample_sizes[i];
      if (i + 1 == config.upsample_sizes.size() && !config.learned_full_upsampling) {
        fixed_upsampling_ = this->register_buffer("fixed_upsampling", zeros<T, D>({to, from}));  // (full, mid)
        break;
      }
      const std::string name = i == 0 ? "upsampling" : "upsampling" + std::to_string(i + 1);
      upsampling_.push_back(this->register_module(name, std::make_shared<nn::Linear<T, D>>(LinearConfig{from, to}, gen)));
      from = to;
    }
  }

  // The template mesh whose xyz is attached to the tokens: joints (J, 3), coarse vertices (V, 3).
  void set_template(const Tensor<T, D>& joints, const Tensor<T, D>& coarse_vertices) {
    if (!(joints.shape() == template_joints_.shape()) || !(coarse_vertices.shape() == template_vertices_.shape()))
      throw ShapeError("MetroNetwork::set_template: expected joints " + template_joints_.shape().str() + " and vertices " +
                       template_vertices_.shape().str() + ", got " + joints.shape().str() + " and " + coarse_vertices.shape().str());
    NoGradGuard no_grad;
    copy_(template_joints_, joints);
    copy_(template_vertices_, coarse_vertices);
  }

  // The fixed last upsampling step (full, mid) of a network whose config has
  // learned_full_upsampling = false, e.g. the body's barycentric matrix
  // (train::init_upsampling_from_body). Until it is set (or loaded from a
  // checkpoint), forward refuses to run: an all-zero matrix would make every
  // full mesh zero and every gradient vanish.
  void set_fixed_upsampling(const Tensor<T, D>& full_from_mid) {
    if (!fixed_upsampling_.defined())
      throw ValueError("MetroNetwork::set_fixed_upsampling: this network learns its last upsampling (MetroConfig::learned_full_upsampling)");
    if (!(full_from_mid.shape() == fixed_upsampling_.shape()))
      throw ShapeError("MetroNetwork::set_fixed_upsampling: expected " + fixed_upsampling_.shape().str() + ", got " + full_from_mid.shape().str());
    NoGradGuard no_grad;
    copy_(fixed_upsampling_, full_from_mid);
    fixed_upsampling_checked_ = false;
  }

  // images (B, 3, S, S), ImageNet-normalized. In training with mvm_ratio > 0 the
  // tokens are masked with masks drawn from the network's own generator, unless
  // `keep_mask` (B, N, 1) is given.
  MetroOutput<T, D> forward(const Tensor<T, D>& images, const Tensor<T, D>& keep_mask = {}) {
    const std::int64_t s = config_.image_size;
    if (images.dim() != 4 || images.shape()[1] != 3 || images.shape()[2] != s || images.shape()[3] != s)
      throw ShapeError("MetroNetwork: expected images (B, 3, " + std::to_string(s) + ", " + std::to_string(s) + "), got " +
                       images.shape().str());
    check_fixed_upsampling_is_set();
    const std::int64_t batch = images.shape()[0], J = config_.num_joints, V = config_.num_coarse_vertices;
    Tensor<T, D> tokens = cat<T, D>({template_tokens(batch), image_tokens(backbone_->forward(images))}, 2);  // (B, N, 3 + C)
    if (this->is_training() && (keep_mask.defined() || config_.mvm_ratio > 0)) {
      const Tensor<T, D> keep = keep_mask.defined() ? keep_mask : sample_token_keep_mask<T, D>(batch, J, V, config_.mvm_ratio, mask_generator_);
      tokens = apply_token_mask(tokens, keep, static_cast<T>(config_.mask_value));
    }
    const Tensor<T, D> xyz = blocks_->forward(tokens);  // (B, N, 3)
    MetroOutput<T, D> out;
    out.joints = narrow(xyz, 1, 0, J);           // (B, J, 3)
    out.coarse_vertices = narrow(xyz, 1, J, V);  // (B, V, 3)
    out.camera = camera(config_.camera_from_all_tokens ? xyz : out.coarse_vertices);
    out.full_vertices = upsample(out.coarse_vertices, out.mid_vertices);
    return out;
  }

  const MetroConfig& config() const noexcept { return config_; }
  nn::ResNet<T, D>& backbone() noexcept { return *backbone_; }
  // The encoder blocks in order (for attention read-out).
  std::vector<MetroEncoderBlock<T, D>*> encoder_blocks() const {
    std::vector<MetroEncoderBlock<T, D>*> out;
    for (std::size_t i = 0; i < blocks_->size(); ++i) out.push_back(static_cast<MetroEncoderBlock<T, D>*>((*blocks_)[i].get()));
    return out;
  }
  Generator& mask_generator() noexcept { return mask_generator_; }

 private:
  static void check_config(const MetroConfig& c) {
    if (c.blocks.empty() || c.blocks.back().out != 3) throw ValueError("MetroConfig: the last encoder block must output 3 (xyz)");
    if (c.blocks.front().in != 3 + c.feature_channels())
      throw ValueError("MetroConfig: the first block takes 3 + " + std::to_string(c.feature_channels()) + " features, not " +
                       std::to_string(c.blocks.front().in));
    for (std::size_t i = 1; i < c.blocks.size(); ++i)
      if (c.blocks[i].in != c.blocks[i - 1].out) throw ValueError("MetroConfig: block " + std::to_string(i) + " input does not match the previous output");
    if (c.grid_size() < 1 || c.image_size % c.backbone_stride() != 0)
      throw ValueError("MetroConfig: image size " + std::to_string(c.image_size) + " is not a positive multiple of the backbone's stride " +
                       std::to_string(c.backbone_stride()));
  }

  // Checked until it passes once: one copy of the (full, mid) matrix to the host.
  void check_fixed_upsampling_is_set() {
    if (!fixed_upsampling_.defined() || fixed_upsampling_checked_) return;
    const std::vector<T> values = fixed_upsampling_.to_vector();
    if (std::all_of(values.begin(), values.end(), [](T v) { return v == T(0); }))
      throw ValueError("MetroNetwork: the fixed last upsampling (buffer fixed_upsampling, MetroConfig::learned_full_upsampling = false) "
                       "is still all zeros: set it with set_fixed_upsampling (train::init_from_body for the procedural body) or "
                       "load a checkpoint");
    fixed_upsampling_checked_ = true;
  }

  // (B, N, 3): template xyz of [joints; coarse vertices] for every sample.
  Tensor<T, D> template_tokens(std::int64_t batch) const {
    const Tensor<T, D> xyz = cat<T, D>({template_joints_, template_vertices_}, 0);  // (N, 3)
    return expand(unsqueeze(xyz, 0), {batch, config_.num_tokens(), 3});
  }

  // grid (B, C, h, w) -> (B, N, C)
  Tensor<T, D> image_tokens(const Tensor<T, D>& grid) const {
    const std::int64_t batch = grid.shape()[0], channels = grid.shape()[1];
    if (config_.token_mode == TokenMode::global) {
      const Tensor<T, D> pooled = mean(grid, {2, 3});  // (B, C)
      return expand(unsqueeze(pooled, 1), {batch, config_.num_tokens(), channels});
    }
    const Tensor<T, D> cells = transpose(reshape(grid, {batch, channels, -1}), 1, 2);  // (B, h*w, C)
    return grid_to_tokens_->forward(cells);                                            // (B, N, C)
  }

  // coarse (B, V, 3) -> full (B, full, 3) along the vertex axis; `mid` gets the
  // next-to-last resolution (undefined for a single step).
  Tensor<T, D> upsample(const Tensor<T, D>& coarse, Tensor<T, D>& mid) const {
    Tensor<T, D> vertices = transpose(coarse, 1, 2);  // (B, 3, V)
    const std::size_t steps = config_.upsample_sizes.size();
    for (std::size_t i = 0; i < steps; ++i) {
      vertices = i < upsampling_.size() ? upsampling_[i]->forward(vertices) : linear(vertices, fixed_upsampling_);  // (B, 3, next)
      if (i + 2 == steps) mid = transpose(vertices, 1, 2);
    }
    return transpose(vertices, 1, 2);
  }

  // xyz (B, K, 3) -> (B, 3)
  Tensor<T, D> camera(const Tensor<T, D>& xyz) const {
    const Tensor<T, D> per_token = squeeze(camera_token_->forward(xyz), 2);  // (B, K)
    return camera_out_->forward(camera_hidden_->forward(per_token));        // (B, 3)
  }

  MetroConfig config_;
  Generator mask_generator_;
  std::shared_ptr<nn::ResNet<T, D>> backbone_;
  std::shared_ptr<nn::Conv1d<T, D>> grid_to_tokens_;
  Tensor<T, D> template_joints_, template_vertices_;
  std::shared_ptr<nn::Sequential<T, D>> blocks_;
  std::shared_ptr<nn::Linear<T, D>> camera_token_, camera_hidden_, camera_out_;
  std::vector<std::shared_ptr<nn::Linear<T, D>>> upsampling_;
  Tensor<T, D> fixed_upsampling_;  // (full, mid) when the last step is not learned
  bool fixed_upsampling_checked_ = false;
};

// Parameter counts per component, in the order of the forward pass.
template <class T, class D>
std::vector<std::pair<std::string, std::int64_t>> parameter_report(const MetroNetwork<T, D>& net) {
  std::vector<std::pair<std::string, std::int64_t>> report;
  const auto add = [&](const std::string& component, std::int64_t n) {
    for (auto& [name, count] : report)
      if (name == component) return void(count += n);
    report.emplace_back(component, n);
  };
  std::int64_t total = 0;
  for (const auto& [name, t] : net.named_parameters()) {
    const std::string top = name.substr(0, name.find('.'));
    std::string component = top == "backbone" ? "backbone" : top == "conv_learn_tokens" ? "image tokens" : "heads";
    if (top == "trans_encoder") component = "encoder block " + std::to_string(std::stoi(name.substr(14, name.find('.', 14) - 14)) + 1);
    if (top.starts_with("cam_param")) component = "camera";
    if (top.starts_with("upsampling")) component = "upsampling";
    add(component, t.numel());
    total += t.numel();
  }
  add("total", total);
  return report;
}

}  // namespace metro::model
