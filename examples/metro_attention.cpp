// Pictures of what the transformer attends to, for one image (paper Figs. 3 and 4):
//   OUT/<name>_attention.png       the last layer's attention averaged over heads,
//                                  rows = queries, columns = keys, 14 joints then the
//                                  coarse vertices (white lines separate them)
//   OUT/<name>_joint<J>_mesh.png   the predicted mesh colored by joint J's attention
//                                  to the vertices (blue low, red high), front and side
//
//   metro_attention --checkpoint ckpt.safetensors --image person.png --joint 11 --out pictures
#include <omp.h>

#include <cmath>
#include <exception>
#include <filesystem>
#include <iostream>

#include "metro/data/image_io.hpp"
#include "metro/io/cli.hpp"
#include "metro/train/inference.hpp"
#include "metro/train/visualize.hpp"

namespace {

int run(int argc, char** argv) {
  std::string checkpoint, image_path, out;
  int threads = 0, joint = 0, block = 0, zoom = 0;
  metro::io::FlagParser flags("metro_attention", "Writes attention pictures (paper Figs. 3 and 4) for one image.");
  flags.add("checkpoint", checkpoint, "", "a metro_train checkpoint (.safetensors)");
  flags.add("image", image_path, "", "input image (PNG/JPEG; the centred square crop is used)");
  flags.add("out", out, "attention_out", "output folder");
  flags.add("joint", joint, 11, "joint whose attention colors the mesh (LSP-14 order; 11 = left wrist)", {0, 13});
  flags.add("block", block, -1, "encoder block to read (0-based; -1: the last)", {-1, 64});
  flags.add("zoom", zoom, 2, "pixels per matrix entry in the attention picture", {1, 8});
  flags.add("threads", threads, 2, "compute threads", {1, 1024});
  if (!flags.parse(argc, argv)) return 0;
  if (checkpoint.empty() || image_path.empty()) throw metro::UsageError("--checkpoint and --image are required");
  omp_set_num_threads(threads);
  const auto [net, mesh] = metro::train::load_trained(checkpoint);
  const auto blocks = net->encoder_blocks();
  const std::size_t chosen = block < 0 ? blocks.size() - 1 : static_cast<std::size_t>(block);
  if (chosen >= blocks.size()) throw metro::UsageError("--block: the network has " + std::to_string(blocks.size()) + " blocks");
  auto& attention = blocks[chosen]->encoder().layers().back()->self_attention();
  attention.keep_attention(true);

  const metro::render::Image image = metro::data::read_image(image_path, 3);
  const auto crop = metro::train::center_crop(image.width, image.height);
  const auto p = metro::train::predict(*net, metro::train::crop_to_input(image, crop, static_cast<int>(net->config().image_size)), mesh);
  const Eigen::MatrixXf mean = metro::train::mean_over_heads(attention.last_attention());
  const int joints = static_cast<int>(net->config().num_joints);

  std::filesystem::create_directories(out);
  const std::string stem = (std::filesystem::path(out) / std::filesystem::path(image_path).stem()).string();
  metro::data::write_png(stem + "_attention.png", metro::train::attention_matrix_picture(mean, joints, zoom));
  const std::vector<float> weight = metro::train::joint_attention_on_mesh(mean, joint, joints, mesh);
  std::vector<metro::render::Color> colors;
  for (float w : weight) colors.push_back(metro::train::heat_color(w));
  const float pi = 3.14159265f;
  const auto front = metro::train::render_turned(p.vertices, mesh.faces, colors, 0, 256);
  const auto side = metro::train::render_turned(p.vertices, mesh.faces, colors, pi / 2, 256);
  const std::string mesh_png = stem + "_joint" + std::to_string(joint) + "_mesh.png";
  metro::data::write_png(mesh_png, metro::train::side_by_side(front, side));
  std::cout << "attention (block " << chosen << ", last layer, mean of heads): " << stem << "_attention.png\n"
            << "joint " << joint << " attention on the mesh: " << mesh_png << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "metro_attention: error: " << e.what() << "\n";
    return 1;
  }
}
