// Writes the body model's rest mesh levels (OBJ) and a few random posed bodies
// (PLY, colored by region) to a folder, for viewing in any mesh viewer, and the
// body files of the two presets (train/body_file.hpp: the format a real body
// model is given to metro_train --body in).
// Usage: metro_body_export [output_dir] [num_posed=4] [seed=0]
#include <array>
#include <cstdint>
#include <exception>
#include <iostream>
#include <string>
#include <utility>

#include "metro/body/body_model.hpp"
#include "metro/train/body_file.hpp"

namespace {

using Color = std::array<std::uint8_t, 3>;

Color region_color(metro::body::Region region) {
  using metro::body::Region;
  switch (region) {
    case Region::skin: return {230, 190, 160};
    case Region::hair: return {70, 45, 25};
    case Region::eye: return {30, 30, 120};
    case Region::nose: return {235, 160, 135};
    case Region::mouth: return {190, 50, 50};
    case Region::shirt_front: return {40, 120, 200};
    case Region::shirt_back: return {30, 70, 140};
    case Region::collar: return {240, 240, 240};
    case Region::trousers: return {60, 60, 60};
    case Region::shoe: return {120, 60, 20};
    case Region::hand: return {240, 200, 170};
  }
  return {255, 0, 255};
}

int parse_count(const char* text, const char* name) {
  try {
    const int value = std::stoi(text);
    if (value >= 0) return value;
  } catch (const std::exception&) {
  }
  throw metro::UsageError(std::string(name) + " must be a non-negative integer, got '" + text + "'");
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string folder = argc > 1 ? argv[1] : ".";
    const int posed_count = argc > 2 ? parse_count(argv[2], "num_posed") : 4;
    const int seed = argc > 3 ? parse_count(argv[3], "seed") : 0;
    const auto& model = metro::body::BodyModel::get();
    for (int level = 0; level < metro::body::kNumLevels; ++level) {
      const std::string path = folder + "/body_rest_level" + std::to_string(level) + ".obj";
      metro::body::write_obj(path, model.rest_vertices(level), model.faces(level));
      std::cout << path << ": " << model.num_vertices(level) << " vertices, " << model.faces(level).size() << " faces\n";
    }
    for (const auto& [name, level] : {std::pair{"paper", metro::body::kCoarseLevel}, std::pair{"small", metro::body::kNumLevels - 1}}) {
      const metro::train::MeshHierarchy mesh(level);
      const std::string path = folder + "/body_" + name + ".safetensors";
      metro::train::save_body_file(path, mesh);
      std::cout << path << ": body file, " << mesh.coarse_vertices() << " -> " << mesh.mid_vertices() << " -> " << mesh.full_vertices()
                << " vertices (metro_train --body)\n";
    }
    std::vector<Color> colors;
    for (auto region : model.vertex_region()) colors.push_back(region_color(region));
    metro::Generator rng(static_cast<std::uint64_t>(seed));
    for (int i = 0; i < posed_count; ++i) {
      const auto body = model.pose(model.sample_shape(rng), model.sample_pose(rng));
      const std::string path = folder + "/body_posed_" + std::to_string(i) + ".ply";
      metro::body::write_ply(path, body.vertices, model.faces(0), &colors);
      std::cout << path << '\n';
    }
  } catch (const metro::Error& e) {
    std::cerr << "metro_body_export: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
