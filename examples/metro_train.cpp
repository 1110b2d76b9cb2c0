// Trains a METRO network on a dataset folder (docs/training.md).
//
//   metro_train --data data/train --val data/test --minutes 10 --out runs/small
//   metro_train --data data/train --steps 2000 --resume runs/small/checkpoint.safetensors --out runs/small
//
// Writes OUT/checkpoint.safetensors (at intervals, at the end, and on Ctrl-C),
// OUT/log.csv (losses, throughput), OUT/eval.csv (periodic held-out metrics) and
// OUT/metrics.json (final metrics next to the mean-pose baseline).
#include <omp.h>

#include <exception>
#include <iostream>

#include "metro/io/cli.hpp"
#include "metro/train/trainer.hpp"

namespace {

int run(int argc, char** argv) {
  metro::train::TrainOptions o;
  int threads = 0;
  std::int64_t seed = 0;
  std::string precision;
  metro::io::FlagParser flags("metro_train", "Trains a METRO network (masked vertex modeling, metro_loss, Adam) on a dataset folder.");
  flags.add("data", o.data, "", "training dataset folder (annotations.bin + images/), e.g. from metro_synth");
  flags.add("val", o.val, "", "held-out dataset folder for periodic evaluation and metrics.json (default: the training set)");
  flags.add("out", o.out, "train_out", "output folder: checkpoint.safetensors, log.csv, eval.csv, metrics.json");
  flags.add("preset", o.preset, "small", "network preset: small or paper_body (ignored with --resume)");
  flags.add("body", o.body, "", "body file: template mesh, sampling matrices, joint regressor (docs/data.md); default: the procedural body. Checkpoints carry the body, so --resume, metro_eval and metro_infer need no --body");
  flags.add("image-size", o.image_size, 0, "network input side in pixels, a multiple of the backbone's stride (16 for small, 32 for paper_body; 0: the preset's, 128 for small)", {0, 1024});
  flags.add("batch-size", o.batch_size, 16, "images per step", {1, 4096});
  flags.add("lr", o.lr, 3e-4, "Adam learning rate (the paper: 1e-4)", {0.0, 1.0});
  flags.add("schedule", o.schedule, "cosine", "learning-rate schedule over the run: cosine, step (x0.1 at half, the paper's) or constant");
  flags.add("min-lr-fraction", o.min_lr_fraction, 0.02, "cosine: final rate as a fraction of --lr", {0.0, 1.0});
  flags.add("warmup-steps", o.warmup_steps, 50, "linear warmup steps", {0, {}});
  flags.add("weight-decay", o.weight_decay, 0.0, "Adam L2 weight decay", {0.0, 1.0});
  flags.add("clip-norm", o.clip_norm, 1.0, "clip the gradient 2-norm to this (0: off)", {0.0, {}});
  flags.add("steps", o.steps, 0, "stop after this many steps (0: no step limit)", {0, {}});
  flags.add("epochs", o.epochs, 0, "stop after this many epochs (0: no epoch limit)", {0, {}});
  flags.add("minutes", o.minutes, 0.0, "stop after this much training time, checkpoint included (0: no limit)", {0.0, {}});
  flags.add("mvm-ratio", o.mvm_ratio, 0.3, "masked vertex modeling ratio (paper Sec. 3.3; 0: off)", {0.0, 1.0});
  flags.add("dropout", o.dropout, 0.1, "transformer dropout", {0.0, 0.9});
  flags.add("threads", threads, 2, "compute threads (OpenMP)", {1, 1024});
  flags.add("matmul-precision", precision, "fp32", std::string(metro::kMatmulPrecisionFlagHelp));
  flags.add("workers", o.workers, 1, "data loader threads", {1, 64});
  flags.add("seed", seed, 0, "seed of the initialization, the data order and the augmentation", {0, {}});
  flags.add("eval-every", o.eval_every, 0, "evaluate on --val every this many steps (0: only at the end)", {0, {}});
  flags.add("eval-samples", o.eval_samples, 256, "held-out samples per evaluation (0: all)", {0, {}});
  flags.add("checkpoint-every", o.checkpoint_every, 500, "save a checkpoint every this many steps (0: only at the end)", {0, {}});
  flags.add("heads", o.heads, 0, "attention heads per layer (0: the preset's; must divide each block's width)", {0, 64});
  flags.add("augment", o.augment, "full", "data augmentation: full (flip, rotation, scale, color), flip (mirroring only) or none");
  bool no_augment = false;
  flags.add_switch("no-augment", no_augment, "the same as --augment none");
  flags.add("resume", o.resume, "", "continue from this checkpoint (weights, optimizer, step, mask generator)");
  if (!flags.parse(argc, argv)) return 0;
  if (o.data.empty()) throw metro::UsageError("--data: a training dataset folder is required");
  o.seed = static_cast<std::uint64_t>(seed);
  if (no_augment) o.augment = "none";
  metro::data::augment_mode(o.augment);  // an unknown mode is a usage error before any work
  omp_set_num_threads(threads);
  metro::set_float32_matmul_precision(metro::parse_matmul_precision(precision));
  metro::train::Trainer trainer(o);
  return trainer.run();
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const metro::Error& e) {
    std::cerr << "metro_train: error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "metro_train: error: " << e.what() << "\n";
    return 1;
  }
}
