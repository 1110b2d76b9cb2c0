// Synthetic data throughput: rendering one 128x128 sample (body posing,
// rasterization with 2x2 supersampling, shading, background) and encoding its PNG,
// and the whole writer on 2 threads. Target: >= 300 samples/s on 2 cores.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <string>

#include "metro/body/body_model.hpp"
#include "metro/data/image_io.hpp"
#include "metro/data/loader.hpp"
#include "metro/data/synth.hpp"

namespace {

void BM_RenderSample(benchmark::State& state) {
  const auto& model = metro::body::BodyModel::get();
  metro::data::SynthOptions options;
  options.image_size = static_cast<int>(state.range(0));
  std::uint64_t index = 0;
  for (auto _ : state) benchmark::DoNotOptimize(metro::data::make_synthetic_sample(model, 1, index++, options));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RenderSample)->Arg(128)->Unit(benchmark::kMillisecond);

void BM_EncodePng(benchmark::State& state) {
  metro::data::set_png_compression_level(2);
  metro::data::set_png_filter(0);
  const auto sample = metro::data::make_synthetic_sample(metro::body::BodyModel::get(), 1, 0, {});
  for (auto _ : state) benchmark::DoNotOptimize(metro::data::encode_png(sample.image));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EncodePng)->Unit(benchmark::kMicrosecond);

// The metro_synth path end to end (PNG files + annotations.bin), 256 samples per iteration.
void BM_WriteDataset(benchmark::State& state) {
  metro::data::set_png_compression_level(2);
  metro::data::set_png_filter(0);
  const auto& model = metro::body::BodyModel::get();
  const std::string directory = (std::filesystem::temp_directory_path() / "metro_bench_synth").string();
  constexpr std::uint32_t kCount = 256;
  for (auto _ : state) {
    metro::data::write_synthetic_dataset(model, directory, kCount, 1, {}, static_cast<int>(state.range(0)));
  }
  std::filesystem::remove_all(directory);
  state.SetItemsProcessed(state.iterations() * kCount);
}
BENCHMARK(BM_WriteDataset)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

// The training input path: 32 samples decoded, augmented and normalized at 96x96
// (one loader worker's cost per batch).
void BM_LoadBatch(benchmark::State& state) {
  const auto& model = metro::body::BodyModel::get();
  const std::string directory = (std::filesystem::temp_directory_path() / "metro_bench_loader").string();
  metro::data::write_synthetic_dataset(model, directory, 64, 2, {});
  const metro::data::Dataset dataset(directory);
  metro::data::LoaderOptions options;
  options.batch_size = 32, options.image_size = 96, options.num_workers = 1;
  options.joint_symmetry = metro::data::body_joint_symmetry();
  options.vertex_symmetry = model.vertex_symmetry();
  metro::data::DataLoader loader(dataset, options);
  loader.start_epoch(0);
  for (auto _ : state) benchmark::DoNotOptimize(loader.make_batch(0));
  std::filesystem::remove_all(directory);
  state.SetItemsProcessed(state.iterations() * options.batch_size);
}
BENCHMARK(BM_LoadBatch)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
