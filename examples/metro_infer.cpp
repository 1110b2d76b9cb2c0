// Reconstructs the body mesh of the person in each image with a trained checkpoint.
//
//   metro_infer --checkpoint runs/small/checkpoint.safetensors --out pictures img1.png img2.jpg
//   metro_infer --checkpoint ckpt.safetensors --box 40,10,200,260 --out out photo.jpg
//
// For each IMAGE writes OUT/<name>.obj and OUT/<name>.ply (the full mesh, metres,
// camera orientation: x right, y down, z forward, pelvis at the origin),
// OUT/<name>_joints.json (the 14 joints regressed from the mesh, and the camera)
// and OUT/<name>_overlay.png (the mesh over the input, next to a side view).
#include <omp.h>

#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "metro/body/mesh_io.hpp"
#include "metro/data/image_io.hpp"
#include "metro/io/cli.hpp"
#include "metro/train/inference.hpp"
#include "metro/train/visualize.hpp"

namespace {

using metro::train::Crop;

Crop parse_box(const std::string& text) {
  float v[4];
  char comma[3];
  std::istringstream in(text);
  if (!(in >> v[0] >> comma[0] >> v[1] >> comma[1] >> v[2] >> comma[2] >> v[3]) || comma[0] != ',' || comma[1] != ',' || comma[2] != ',' ||
      !(in >> std::ws).eof())
    throw metro::UsageError("--box: expected x,y,w,h in pixels, got \"" + text + "\"");
  return metro::train::box_crop(v[0], v[1], v[2], v[3]);
}

metro::io::json::Value joints_json(const metro::train::Prediction& p, const Crop& crop) {
  using metro::io::json::Array, metro::io::json::Object;
  Array joints;
  for (Eigen::Index j = 0; j < p.joints.rows(); ++j) joints.emplace_back(Array{double(p.joints(j, 0)), double(p.joints(j, 1)), double(p.joints(j, 2))});
  return Object{{"joints_3d", joints},
                {"units", "metres, camera orientation (x right, y down, z forward), pelvis at the origin"},
                {"joint_order", "LSP-14: r_ankle r_knee r_hip l_hip l_knee l_ankle r_wrist r_elbow r_shoulder l_shoulder l_elbow l_wrist neck head_top"},
                {"camera", Array{double(p.camera[0]), double(p.camera[1]), double(p.camera[2])}},
                {"crop", Array{double(crop.x0), double(crop.y0), double(crop.side)}}};
}

void infer_one(metro::model::MetroNetwork<float>& net, const metro::train::MeshHierarchy& mesh, const std::string& image_path,
               const std::string& box, const std::string& out_dir) {
  const metro::render::Image image = metro::data::read_image(image_path, 3);
  const Crop crop = box.empty() ? metro::train::center_crop(image.width, image.height) : parse_box(box);
  const auto p = metro::train::predict(net, metro::train::crop_to_input(image, crop, static_cast<int>(net.config().image_size)), mesh);
  const std::string stem = (std::filesystem::path(out_dir) / std::filesystem::path(image_path).stem()).string();
  const auto vertices = metro::train::to_vectors(p.vertices);
  metro::body::write_obj(stem + ".obj", vertices, mesh.faces);
  metro::body::write_ply(stem + ".ply", vertices, mesh.faces);
  std::ofstream(stem + "_joints.json") << joints_json(p, crop).dump(2) << "\n";
  metro::data::write_png(stem + "_overlay.png", metro::train::overlay_picture(image, crop, p.vertices, mesh.faces, p.camera.data()));
  std::cout << image_path << " -> " << stem << ".obj, .ply, _joints.json, _overlay.png\n";
}

int run(int argc, char** argv) {
  std::string checkpoint, out, box, precision;
  int threads = 0;
  std::vector<std::string> images;
  std::vector<const char*> flag_args{argv[0]};
  for (int i = 1; i < argc; ++i) {  // positional image paths, flags with their values
    const std::string arg = argv[i];
    if (arg.starts_with("--") || arg == "-h") {
      flag_args.push_back(argv[i]);
      if (arg.find('=') == std::string::npos && arg != "--help" && arg != "-h" && i + 1 < argc) flag_args.push_back(argv[++i]);
    } else {
      images.push_back(arg);
    }
  }
  metro::io::FlagParser flags("metro_infer", "Predicts the body mesh in image files: metro_infer --checkpoint C --out DIR IMAGE...");
  flags.add("checkpoint", checkpoint, "", "a metro_train checkpoint (.safetensors)");
  flags.add("out", out, "infer_out", "output folder");
  flags.add("box", box, "", "person box x,y,w,h in pixels (default: the centred square crop)");
  flags.add("threads", threads, 2, "compute threads", {1, 1024});
  flags.add("matmul-precision", precision, "fp32", std::string(metro::kMatmulPrecisionFlagHelp));
  if (!flags.parse(static_cast<int>(flag_args.size()), flag_args.data())) return 0;
  if (checkpoint.empty()) throw metro::UsageError("--checkpoint is required");
  if (images.empty()) throw metro::UsageError("give at least one image file");
  omp_set_num_threads(threads);
  metro::set_float32_matmul_precision(metro::parse_matmul_precision(precision));
  std::filesystem::create_directories(out);
  const auto [net, mesh] = metro::train::load_trained(checkpoint);
  for (const std::string& image : images) infer_one(*net, mesh, image, box, out);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "metro_infer: error: " << e.what() << "\n";
    return 1;
  }
}
