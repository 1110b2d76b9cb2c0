// The METRO model: encoder block parity with PyTorch, masked vertex modeling,
// the network's shapes and gradients, parameter counts of the paper presets.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <algorithm>
#include <thread>

#include "metro/model/model.hpp"
#include "metro/nn/optim.hpp"
#include "support/parity.hpp"

using namespace metro;
using namespace metro::model;

namespace {

// A network small enough for double-precision gradient checks.
MetroConfig tiny_config() {
  MetroConfig c;
  c.preset = "tiny";
  c.image_size = 32;
  c.backbone = nn::ResNetConfig{nn::BlockType::basic, {1, 1}, 4, 3};  // grid 4x4 of 8 channels
  c.num_joints = 3;
  c.num_coarse_vertices = 5;
  c.upsample_sizes = {9, 17};
  c.blocks = reducing_blocks(3 + c.feature_channels(), {8, 8, 4}, {6, 4, 3}, 1, 2, {12, 12, 8});
  c.camera_hidden = 4;
  c.dropout = 0;
  return c;
}

std::int64_t count(const std::vector<std::pair<std::string, std::int64_t>>& report, const std::string& component) {
  for (const auto& [name, n] : report)
    if (name == component) return n;
  return -1;
}

}  // namespace

TEST_CASE("parity: encoder_block (img_embedding + positions + BERT layers + cls_head + residual)") {
  MetroEncoderBlock<float> block({19, 16, 7, 2, 4, 24}, 512, 0.0);
  block.eval();
  const double worst = testing::check_parity("encoder_block", block, [&](const TensorF& x) { return block.forward(x); });
  CHECK(worst < 1e-4);
}

TEST_CASE("masked vertex modeling masks floor(U * ratio * count) tokens per group") {
  Generator gen(3);
  const std::int64_t batch = 64, joints = 14, vertices = 431;
  const TensorF keep = sample_token_keep_mask<float>(batch, joints, vertices, 0.3, gen);
  CHECK(keep.shape() == Shape{batch, joints + vertices, 1});
  const auto k = keep.to_vector();
  double mean_masked_vertices = 0;
  for (std::int64_t b = 0; b < batch; ++b) {
    std::int64_t masked_joints = 0, masked_vertices = 0;
    for (std::int64_t t = 0; t < joints + vertices; ++t)
      (t < joints ? masked_joints : masked_vertices) += k[static_cast<std::size_t>(b * (joints + vertices) + t)] == 0.f;
    CHECK(masked_joints <= 4);     // floor(0.3 * 14) = 4 at most
    CHECK(masked_vertices <= 129);  // floor(0.3 * 431)
    mean_masked_vertices += static_cast<double>(masked_vertices) / batch;
  }
  CHECK(mean_masked_vertices == doctest::Approx(0.15 * 431).epsilon(0.25));  // E[floor(U * 129.3)]
  CHECK(mean(sample_token_keep_mask<float>(4, 14, 431, 0.0, gen)).item() == 1.f);
  // masked rows become the constant, kept rows are unchanged
  const TensorF tokens = ones<float>({1, 3, 2}) * 5.f;
  const TensorF masked = apply_token_mask(tokens, tensor<float>({1, 0, 1}).reshape({1, 3, 1}), 0.01f);
  CHECK(masked.to_vector() == std::vector<float>{5, 5, 0.01f, 0.01f, 5, 5});
}

TEST_CASE("MetroNetwork: shapes, masking only in training, gradients reach every parameter") {
  Generator gen(1);
  MetroNetwork<float> net(tiny_config(), gen);
  net.set_template(randn<float>({3, 3}, gen), randn<float>({5, 3}, gen));
  const TensorF images = randn<float>({2, 3, 32, 32}, gen);
  const MetroOutput<float> out = net.forward(images);
  CHECK(out.camera.shape() == Shape{2, 3});
  CHECK(out.joints.shape() == Shape{2, 3, 3});
  CHECK(out.coarse_vertices.shape() == Shape{2, 5, 3});
  CHECK(out.mid_vertices.shape() == Shape{2, 9, 3});
  CHECK(out.full_vertices.shape() == Shape{2, 17, 3});
  sum(out.full_vertices).backward();
  for (const auto& named : net.named_parameters()) {  // no structured binding: INFO captures it (clang < 16 cannot)
    const std::string& name = named.first;
    const auto& p = named.second;
    INFO(name);
    if (name.starts_with("cam_param")) continue;  // the camera does not feed the vertices
    CHECK(p.grad().defined());
  }
  // eval: deterministic, no masking; an explicit all-masked keep mask changes the result in training
  net.eval();
  const TensorF a = net.forward(images).full_vertices, b = net.forward(images).full_vertices;
  CHECK(a.to_vector() == b.to_vector());
  net.train();
  const TensorF masked = net.forward(images, zeros<float>({2, 8, 1})).full_vertices;
  CHECK(masked.to_vector() != a.to_vector());
  clear_tape();
}

TEST_CASE("MetroNetwork: input errors name the expected shape") {
  MetroNetwork<float> net(tiny_config());
  CHECK_THROWS_WITH_AS(net.forward(zeros<float>({1, 3, 16, 16})), "MetroNetwork: expected images (B, 3, 32, 32), got (1, 3, 16, 16)", ShapeError);
  MetroConfig broken = tiny_config();
  broken.blocks.back().out = 4;
  CHECK_THROWS_AS(MetroNetwork<float>{broken}, ValueError);
  broken = tiny_config();
  broken.image_size = 36;  // the backbone's convolutions would give a 5x5 grid, the token map expects 4x4
  CHECK_THROWS_WITH_AS(MetroNetwork<float>{broken}, "MetroConfig: image size 36 is not a positive multiple of the backbone's stride 8", ValueError);
}

TEST_CASE("MetroNetwork: gradcheck in double through backbone, tokens, encoder, camera and upsampling") {
  Generator gen(2);
  MetroConfig config = tiny_config();
  config.mvm_ratio = 0;
  MetroNetwork<double> net(config, gen);
  net.eval();  // BatchNorm with running statistics: smooth in the input
  net.set_template(randn<double>({3, 3}, gen), randn<double>({5, 3}, gen));
  const auto result = gradcheck(
      [&](const std::vector<TensorD>& v) {
        const auto out = net.forward(v[0]);
        return cat<double, cpu>({out.full_vertices.flatten(1), out.camera, out.joints.flatten(1)}, 1);
      },
      {randn<double>({1, 3, 32, 32}, gen)}, 1e-6, 1e-6, 1e-4);
  INFO(result.report);
  CHECK(result.passed);
}

TEST_CASE("MetroNetwork: a fixed last upsampling is a buffer, not a parameter, and still passes gradients back") {
  Generator gen(3);
  MetroConfig config = tiny_config();
  config.learned_full_upsampling = false;
  MetroNetwork<float> net(config, gen);
  net.set_template(randn<float>({3, 3}, gen), randn<float>({5, 3}, gen));
  for (const auto& [name, p] : net.named_parameters()) CHECK_FALSE(name.starts_with("upsampling2"));
  const auto buffers = net.named_buffers();
  const auto fixed = std::find_if(buffers.begin(), buffers.end(), [](const auto& b) { return b.first == "fixed_upsampling"; });
  REQUIRE(fixed != buffers.end());
  CHECK(fixed->second.shape() == Shape{17, 9});  // (full, mid)
  const TensorF images = randn<float>({2, 3, 32, 32}, gen);
  CHECK_THROWS_AS(net.forward(images), ValueError);  // still all zeros: every full mesh would be zero
  CHECK_THROWS_AS(net.set_fixed_upsampling(ones<float>({9, 17})), ShapeError);
  net.set_fixed_upsampling(ones<float>({17, 9}) / 9.f);  // every full vertex = the mean of the mid vertices
  const MetroOutput<float> out = net.forward(images);
  const TensorF expected = expand(mean(out.mid_vertices, {1}, true), {2, 17, 3});
  CHECK(max(abs(out.full_vertices - expected)).item() < 1e-6f);
  sum(out.full_vertices).backward();
  for (const auto& [name, p] : net.named_parameters())
    if (name.starts_with("upsampling.")) CHECK(p.grad().defined());
  clear_tape();
  // The flag travels with the config; a checkpoint written before it existed means "learned".
  const MetroConfig back = config_from_json(io::json::parse(to_json(config).dump(), "config"));
  CHECK_FALSE(back.learned_full_upsampling);
  io::json::Value old = to_json(tiny_config());
  auto& fields = old.as_object();
  fields.erase(std::remove_if(fields.begin(), fields.end(), [](const auto& f) { return f.first == "learned_full_upsampling"; }), fields.end());
  CHECK(config_from_json(old).learned_full_upsampling);
}

TEST_CASE("config survives a JSON round trip") {
  const MetroConfig c = paper_hand();
  const MetroConfig back = config_from_json(io::json::parse(to_json(c).dump(), "config"));
  CHECK(to_json(back).dump() == to_json(c).dump());
  CHECK(back.upsample_sizes == std::vector<std::int64_t>{778});
  CHECK(back.token_mode == TokenMode::global);
  CHECK(back.blocks.at(0).checkpoint_self_attention);
  // small() keeps its activations; a config written before the flag existed means "checkpoint".
  io::json::Value small_json = to_json(small(108, {431, 6890}));
  CHECK_FALSE(config_from_json(small_json).blocks.at(2).checkpoint_self_attention);
  for (auto& [name, blocks] : small_json.as_object())
    if (name == "blocks")
      for (auto& block : blocks.as_array()) std::erase_if(block.as_object(), [](const auto& f) { return f.first == "checkpoint_self_attention"; });
  CHECK(config_from_json(small_json).blocks.at(2).checkpoint_self_attention);
}

// The full-size forward costs minutes under the sanitizers and exercises no code
// path that the tiny network does not; sanitized builds skip it.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

TEST_CASE("paper_body: parameter counts of the official code, and a forward on one 224x224 image" * doctest::skip(kSanitized)) {
  Generator gen(7);
  MetroNetwork<float> net(paper_body(), gen);
  const auto report = parameter_report(net);
  for (const auto& [name, n] : report) MESSAGE(name << ": " << n);
  CHECK(count(report, "encoder block 1") == 46'193'152);
  CHECK(count(report, "encoder block 2") == 7'722'496);
  CHECK(count(report, "encoder block 3") == 3'507'590);
  CHECK(count(report, "encoder block 1") + count(report, "encoder block 2") + count(report, "encoder block 3") == 57'423'238);
  CHECK(count(report, "backbone") == 23'508'032);
  CHECK(count(report, "image tokens") + count(report, "camera") + count(report, "upsampling") == 12'753'703);
  CHECK(count(report, "total") == 93'684'973);
  net.eval();
  NoGradGuard no_grad;
  const auto out = net.forward(randn<float>({1, 3, 224, 224}, gen));
  CHECK(out.joints.shape() == Shape{1, 14, 3});
  CHECK(out.coarse_vertices.shape() == Shape{1, 431, 3});
  CHECK(out.mid_vertices.shape() == Shape{1, 1723, 3});
  CHECK(out.full_vertices.shape() == Shape{1, 6890, 3});
  CHECK(out.camera.shape() == Shape{1, 3});
}

TEST_CASE("paper_hand: 21 + 195 tokens, pooled features, upsampling to 778") {
  Generator gen(8);
  MetroNetwork<float> net(paper_hand(), gen);
  const auto report = parameter_report(net);
  CHECK(count(report, "image tokens") == -1);  // global mode has no token Conv1d
  // The official hand script's blocks: input 2051, 512, 128; hidden 1024, 256, 64;
  // output the next input (3 at the end); intermediate 4 x hidden.
  CHECK(count(report, "encoder block 1") == 54'585'856);
  CHECK(count(report, "encoder block 2") == 3'520'000);
  CHECK(count(report, "encoder block 3") == 241'542);
  CHECK(count(report, "camera") == 4 + (216 * 150 + 150) + (150 * 3 + 3));
  CHECK(count(report, "upsampling") == 195 * 778 + 778);
}

TEST_CASE("checkpoint: round trip of weights and optimizer state, and clear errors") {
  Generator gen(9);
  const MetroConfig config = tiny_config();
  MetroNetwork<float> net(config, gen);
  nn::Adam<float> adam(net.parameters(), {.lr = 1e-3});
  sum(net.forward(randn<float>({2, 3, 32, 32}, gen)).full_vertices).backward();
  adam.step();
  const std::string path = "/tmp/metro_test_checkpoint.safetensors";
  save_checkpoint(path, net, &adam, {{"step", "1"}});

  Generator other(10);
  MetroNetwork<float> restored(config, other);
  nn::Adam<float> restored_adam(restored.parameters(), {.lr = 1e-3});
  load_checkpoint(path, restored, &restored_adam);
  for (const auto& [name, t] : net.state_dict()) CHECK(restored.state_dict().at(name).to_vector() == t.to_vector());
  CHECK(restored_adam.state().step == 1);
  CHECK(io::load_safetensors(path).metadata.at("step") == "1");

  MetroConfig different = config;
  different.camera_hidden = 5;
  MetroNetwork<float> mismatched(different, other);
  CHECK_THROWS_AS(load_checkpoint(path, mismatched), FormatError);
  std::string message;
  try {
    load_checkpoint(METRO_TEST_DATA_DIR "/bad/ckpt_offsets_past_end.safetensors", restored);
  } catch (const FormatError& e) {
    message = e.what();
  }
  CHECK(message.find("ckpt_offsets_past_end.safetensors") != std::string::npos);
}

TEST_CASE("two threads training two models at once match training them one after the other") {
  const auto train = [](std::uint64_t seed) {
    Generator gen(seed);
    MetroNetwork<float> net(tiny_config(), gen);
    nn::Adam<float> adam(net.parameters(), {.lr = 1e-3});
    const TensorF images = randn<float>({2, 3, 32, 32}, gen), target = randn<float>({2, 17, 3}, gen);
    for (int step = 0; step < 5; ++step) {
      adam.zero_grad();
      mean(abs(net.forward(images).full_vertices - target)).backward();
      adam.step();
    }
    return net.parameters().front().to_vector();
  };
  const auto first = train(11), second = train(12);
  std::vector<float> parallel_first, parallel_second;
  std::thread a([&] { parallel_first = train(11); }), b([&] { parallel_second = train(12); });
  a.join(), b.join();
  CHECK(parallel_first == first);
  CHECK(parallel_second == second);
  CHECK(first != second);
}

#include <sstream>  // the summary line of the whole-network parity test

TEST_CASE("parity: the whole MetroNetwork (tiny config, eval) against PyTorch, every output and gradient") {
  // Fixture metro_network (tools/fixtures.md): tiny_config() with 16 position rows instead of 512.
  MetroConfig config = tiny_config();
  config.position_embeddings = 16;
  MetroNetwork<float> net(config);
  const io::SafeTensorsFile file = testing::fixture("metro_network");
  net.load_state_dict(nn::tensors_with_prefix<float>(file, "param."));  // includes the template buffers
  net.eval();
  const TensorF x = nn::tensor_from_record<float>(file.tensors.at("input.x"), "input.x").requires_grad_();
  const MetroOutput<float> out = net.forward(x);
  const std::vector<std::pair<std::string, TensorF>> outputs{{"camera", out.camera},
                                                             {"joints", out.joints},
                                                             {"coarse_vertices", out.coarse_vertices},
                                                             {"mid_vertices", out.mid_vertices},
                                                             {"full_vertices", out.full_vertices}};
  const auto compare = [&](const std::string& what, const TensorF& actual, const std::string& key) {
    const double error = testing::relative_error(actual, testing::fixture_tensor(file, key));
    CHECK_MESSAGE(error < 1e-4, what << ": relative error " << error);
    return error;
  };
  std::ostringstream summary;
  TensorF loss = zeros<float>({});
  for (const auto& [name, y] : outputs) {
    summary << name << " " << compare("output " + name, y, "output." + name) << ", ";
    const std::string weight = "loss_weight." + name;
    loss = loss + sum(y * nn::tensor_from_record<float>(file.tensors.at(weight), weight));  // L = sum_k sum(y_k * W_k)
  }
  loss.backward();
  summary << "input grad " << compare("input grad", x.grad(), "grad.input.x");
  double worst = 0;
  std::string worst_name;
  for (const auto& named : net.named_parameters()) {  // no structured binding: the message captures it (clang < 16 cannot)
    const std::string& name = named.first;
    const auto& p = named.second;
    REQUIRE_MESSAGE(p.grad().defined(), "no gradient for " << name);
    const double error = compare("grad of " + name, p.grad(), "grad.param." + name);
    if (error > worst) worst = error, worst_name = name;
  }
  MESSAGE("metro_network relative errors: " << summary.str() << ", worst parameter grad " << worst << " (" << worst_name << ")");
  clear_tape();
}
