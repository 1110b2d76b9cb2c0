// Evaluates a checkpoint on a dataset folder: MPJPE, PA-MPJPE, MPVE, PA-MPVPE,
// F@5mm, F@15mm (paper Sec. 4), optionally next to the mean-pose baseline.
//
//   metro_eval --checkpoint runs/small/checkpoint.safetensors --data data/test --baseline-from data/train --json eval.json
#include <omp.h>

#include <exception>
#include <fstream>
#include <iostream>

#include "metro/io/cli.hpp"
#include "metro/train/inference.hpp"

namespace {

int run(int argc, char** argv) {
  std::string checkpoint, data, baseline_from, json_path, precision;
  int threads = 0, batch_size = 0;
  std::int64_t max_samples = 0;
  metro::io::FlagParser flags("metro_eval", "Evaluates a METRO checkpoint on a dataset folder (table on stdout, optional JSON).");
  flags.add("checkpoint", checkpoint, "", "a metro_train checkpoint (.safetensors); the network is built from its config");
  flags.add("data", data, "", "dataset folder to evaluate on");
  flags.add("baseline-from", baseline_from, "", "training dataset folder: also report the mean training mesh predicted for every image");
  flags.add("json", json_path, "", "write the metrics here as JSON");
  flags.add("max-samples", max_samples, 0, "evaluate the first N samples (0: all)", {0, {}});
  flags.add("batch-size", batch_size, 16, "images per forward pass", {1, 4096});
  flags.add("threads", threads, 2, "compute threads", {1, 1024});
  flags.add("matmul-precision", precision, "fp32", std::string(metro::kMatmulPrecisionFlagHelp));
  if (!flags.parse(argc, argv)) return 0;
  if (checkpoint.empty() || data.empty()) throw metro::UsageError("--checkpoint and --data are required");
  omp_set_num_threads(threads);
  metro::set_float32_matmul_precision(metro::parse_matmul_precision(precision));
  const auto [net, mesh] = metro::train::load_trained(checkpoint);
  const metro::data::Dataset dataset(data);
  const auto ours = metro::train::evaluate(*net, dataset, mesh, {batch_size, max_samples, 1});
  std::optional<metro::train::MeshMetrics> baseline;
  if (!baseline_from.empty())
    baseline = metro::train::evaluate_constant_mesh(metro::train::mean_training_mesh(metro::data::Dataset(baseline_from)), dataset, mesh,
                                                    max_samples);
  std::cout << checkpoint << " on " << data << ":\n";
  metro::train::print_comparison(std::cout, ours, baseline ? &*baseline : nullptr);
  if (!json_path.empty()) {
    metro::io::json::Value v = metro::train::to_json(ours);
    if (baseline) v.as_object().emplace_back("baseline", metro::train::to_json(*baseline));
    v.as_object().emplace_back("checkpoint", checkpoint);
    v.as_object().emplace_back("data", data);
    std::ofstream file(json_path);
    if (!(file << v.dump(2) << "\n")) throw metro::IOError(json_path, "cannot write");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "metro_eval: error: " << e.what() << "\n";
    return 1;
  }
}
