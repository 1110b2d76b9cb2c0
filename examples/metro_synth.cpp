// Writes a synthetic METRO dataset: rendered people (the procedural body model
// in random shapes, poses, outfits, lights and backgrounds) with exact 2D/3D
// joint, mesh and camera labels. Format: docs/data.md.
//
//   metro_synth --count 10000 --seed 1 --out data/synth_train
//   metro_synth --count 64 --seed 1 --out /tmp/synth --contact-sheet sheet.png
#include <chrono>
#include <cstdint>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "metro/body/body_model.hpp"
#include "metro/data/image_io.hpp"
#include "metro/data/synth.hpp"
#include "metro/io/cli.hpp"
#include "metro/render/image.hpp"

namespace {

int run(int argc, char** argv) {
  int count = 0, size = 0, threads = 0, png_level = 0;
  std::int64_t seed = 0;
  float occluders = 0;
  std::string out, split, sheet;
  metro::io::FlagParser flags("metro_synth", "Renders a synthetic human pose/mesh dataset (PNG crops + annotations.bin).");
  flags.add("count", count, 1000, "number of samples", {1, 100'000'000});
  flags.add("seed", seed, 0, "dataset seed; sample i depends only on (seed, i). Use a different seed per split", {0, {}});
  flags.add("out", out, "", "output directory (created); gets images/ and annotations.bin");
  flags.add("size", size, 128, "side of the square image crops, pixels", {16, 2048});
  flags.add("threads", threads, 0, "render threads (0: all cores); the output does not depend on it", {0, 1024});
  flags.add("occluders", occluders, 0.0f, "probability of a random occluding rectangle per image", {0.0f, 1.0f});
  flags.add("split-name", split, "train", "image file name prefix: <split-name>_<index>.png");
  flags.add("png-level", png_level, 2, "PNG zlib effort (1 fast .. 9 small)", {1, 9});
  flags.add("contact-sheet", sheet, "", "also write an 8x8 grid PNG of the first 64 images here");
  if (!flags.parse(argc, argv)) return 0;
  if (out.empty()) throw metro::UsageError("--out: an output directory is required");

  metro::data::SynthOptions options;
  options.image_size = size, options.occluder_probability = occluders, options.name_prefix = split;
  metro::data::set_png_compression_level(png_level);
  metro::data::set_png_filter(0);
  const auto& model = metro::body::BodyModel::get();
  std::vector<metro::render::Image> first_images;
  if (!sheet.empty()) first_images.reserve(64);
  const auto start = std::chrono::steady_clock::now();
  metro::data::write_synthetic_dataset(model, out, static_cast<std::uint32_t>(count), static_cast<std::uint64_t>(seed),
                                       options, threads, sheet.empty() ? nullptr : &first_images);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "wrote " << count << " samples to " << out << " in " << seconds << " s (" << count / seconds
            << " samples/s)\n";
  if (!sheet.empty()) {
    metro::data::set_png_compression_level(9);  // one file: favour size
    metro::data::set_png_filter(-1);
    metro::data::write_png(sheet, metro::render::contact_sheet(first_images, 8, 64));
    std::cout << "contact sheet: " << sheet << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const metro::UsageError& e) {
    std::cerr << "metro_synth: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "metro_synth: " << e.what() << "\n";
    return 1;
  }
}
