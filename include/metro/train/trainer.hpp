#pragma once
// The METRO training loop (paper Sec. 3.4, official metro/tools/run_metro_bodymesh.py):
// Adam on metro_loss with masked vertex modeling inside the network, a learning
// rate schedule, gradient clipping, skipping of non-finite steps, periodic
// held-out evaluation, atomic checkpoints (at intervals, at the end, and on
// SIGINT/SIGTERM) and exact resumption: the data order and augmentation are a
// function of (seed, step) and the mask generator's state is saved.
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "metro/model/model.hpp"
#include "metro/nn/optim.hpp"
#include "metro/nn/schedule.hpp"
#include "metro/train/body_file.hpp"
#include "metro/train/evaluate.hpp"
#include "metro/train/progress.hpp"

namespace metro::train {

struct TrainOptions {
  std::string data, val, out = "train_out", preset = "small", schedule = "cosine", resume;
  std::string body;  // a body file (train/body_file.hpp); empty: the procedural body
  int batch_size = 16, image_size = 0, workers = 1;  // image_size 0: the preset's
  double lr = 3e-4, min_lr_fraction = 0.02, mvm_ratio = 0.3, dropout = 0.1, clip_norm = 1.0, weight_decay = 0;
  double minutes = 0;                                // wall-clock budget; 0: none
  std::int64_t steps = 0, epochs = 0, warmup_steps = 50;
  std::int64_t eval_every = 0, checkpoint_every = 500, eval_samples = 256;
  std::uint64_t seed = 0;
  int heads = 0;            // attention heads of every block (0: the preset's)
  std::string augment = "full";  // data::augment_mode: full, flip or none (plain crops)
};

// Set by the signal handler, read by the loop (which saves and stops).
inline std::atomic<int>& stop_signal() {
  static std::atomic<int> signal{0};
  return signal;
}
inline void install_stop_handlers() {
  const auto handler = [](int sig) { stop_signal().store(sig); };
  std::signal(SIGINT, handler);
  std::signal(SIGTERM, handler);
}

// What a checkpoint records besides the weights and the optimizer.
struct TrainState {
  std::int64_t step = 0;
  std::int64_t batches = 0;  // taken from the loader: the steps and the skipped (non-finite) ones
  double train_seconds = 0;
  std::uint64_t mask_seed = 0, mask_offset = 0;
};

inline std::map<std::string, std::string> state_metadata(const TrainState& s, const TrainOptions& o) {
  return {{"step", std::to_string(s.step)},       {"batches", std::to_string(s.batches)}, {"train_seconds", std::to_string(s.train_seconds)},
          {"mask_seed", std::to_string(s.mask_seed)}, {"mask_offset", std::to_string(s.mask_offset)},
          {"seed", std::to_string(o.seed)},       {"batch_size", std::to_string(o.batch_size)}};
}

inline TrainState state_from_metadata(const io::SafeTensorsFile& file, const std::string& path) {
  const auto get = [&](const char* key) -> const std::string& {
    const auto it = file.metadata.find(key);
    if (it == file.metadata.end()) throw FormatError(path, std::string("checkpoint has no training state \"") + key + "\" (not written by metro_train?)");
    return it->second;
  };
  try {
    TrainState s;
    s.step = std::stoll(get("step")), s.train_seconds = std::stod(get("train_seconds"));
    s.batches = file.metadata.contains("batches") ? std::stoll(get("batches")) : s.step;  // older checkpoints: no skipped steps recorded
    s.mask_seed = std::stoull(get("mask_seed")), s.mask_offset = std::stoull(get("mask_offset"));
    return s;
  } catch (const std::logic_error& e) {
    throw FormatError(path, std::string("bad training state in metadata: ") + e.what());
  }
}

// Dropout masks as a function of (seed, step, layer): layer k's generator restarts
// at step * 2^40 of its own stream, so a resumed run draws the same masks as an
// uninterrupted one without saving every layer's generator.
template <class T, class D>
void reseed_dropout(nn::Module<T, D>& net, std::uint64_t seed, std::int64_t step) {
  std::uint64_t layer = 0;
  nn::for_each_module(net, [&](nn::Module<T, D>& m) {
    if (auto* dropout = dynamic_cast<nn::Dropout<T, D>*>(&m))
      dropout->generator().set_state(random_bits(seed, ++layer), static_cast<std::uint64_t>(step) << 40);
  });
}

// Learning rate at `step` given the run's progress in [0, 1] (steps or wall clock):
// linear warmup, then cosine to min_lr, a x0.1 step at half (the paper's), or constant.
inline double learning_rate(const TrainOptions& o, std::int64_t step, double progress) {
  constexpr std::int64_t kUnits = 100000;  // progress resolution of the schedules
  const auto at = static_cast<std::int64_t>(std::clamp(progress, 0.0, 1.0) * kUnits);
  double lr = o.lr;
  if (o.schedule == "cosine") lr = nn::CosineSchedule(o.lr, kUnits, 0, o.lr * o.min_lr_fraction).lr_at(at);
  else if (o.schedule == "step") lr = nn::StepDecay(o.lr, {kUnits / 2}).lr_at(at);
  else if (o.schedule != "constant") throw UsageError("--schedule: expected cosine, step or constant, got \"" + o.schedule + "\"");
  return lr * nn::LinearWarmup(1.0, o.warmup_steps).lr_at(step);
}

// Seconds spent per phase over the last logging interval.
struct PhaseTimes {
  double data = 0, forward = 0, backward = 0, update = 0;
  std::int64_t images = 0;
  double total() const { return data + forward + backward + update; }
};

class Trainer {
 public:
  explicit Trainer(TrainOptions options)
      : o_(std::move(options)), train_set_(o_.data) {
    std::filesystem::create_directories(o_.out);
    if (!o_.val.empty()) val_set_.emplace(o_.val);
    build_network();
    if (o_.steps == 0 && o_.epochs > 0) o_.steps = o_.epochs * static_cast<std::int64_t>(train_set_.size() / o_.batch_size);
    if (o_.steps == 0 && o_.minutes <= 0) throw UsageError("give --steps, --epochs or --minutes");
  }

  // Trains until the step count, the budget or a stop signal; returns the exit code.
  int run() {
    install_stop_handlers();
    print_header();
    CsvLog log(o_.out + "/log.csv", {"step", "lr", "loss", "joints_3d", "regressed_joints_3d", "vertices", "joints_2d",
                                     "regressed_joints_2d", "grad_norm", "images_per_s", "data_s", "forward_s", "backward_s", "update_s"});
    data::LoaderOptions options = loader_options(mesh_, o_.batch_size, static_cast<int>(net_->config().image_size), o_.seed, true, o_.workers);
    options.augment = data::augment_mode(o_.augment);
    data::DataLoader loader(train_set_, options);
    const auto per_epoch = static_cast<std::int64_t>(loader.batches_per_epoch());
    if (per_epoch == 0) throw ValueError("the training set (" + std::to_string(train_set_.size()) + " samples) is smaller than one batch");
    start_ = run_start_ = now();
    start_progress_ = progress();
    start_epoch_at(loader, state_.batches, per_epoch);
    int bad_in_a_row = 0;
    while (!finished()) {
      if (const int sig = stop_signal().load()) return stop_for_signal(sig);
      const auto t0 = now();
      std::optional<data::Batch> batch = loader.next();
      if (!batch) {
        start_epoch_at(loader, state_.batches, per_epoch);
        continue;
      }
      ++state_.batches;
      times_.data += seconds_since(t0);
      if (!train_step(*batch, log)) {
        if (++bad_in_a_row >= 5)
          throw ValueError("5 non-finite steps in a row at step " + std::to_string(state_.step) + "; stopping (last good checkpoint: " +
                           checkpoint_path() + "). Try a lower --lr or --clip-norm");
        continue;
      }
      bad_in_a_row = 0;
      if (o_.eval_every > 0 && state_.step % o_.eval_every == 0 && val_set_) periodic_eval();
      if (o_.checkpoint_every > 0 && state_.step % o_.checkpoint_every == 0) save();
    }
    bar_.finish_line();
    save();
    write_final_metrics();
    return 0;
  }

  model::MetroNetwork<float>& network() { return *net_; }
  const TrainState& state() const { return state_; }
  std::string checkpoint_path() const { return o_.out + "/checkpoint.safetensors"; }

 private:
  using Clock = std::chrono::steady_clock;
  static Clock::time_point now() { return Clock::now(); }
  static double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

  void build_network() {
    Generator init(o_.seed);
    model::MetroConfig config;
    std::optional<io::SafeTensorsFile> resumed;
    if (!o_.resume.empty()) {
      resumed = io::load_safetensors(o_.resume);
      config = model::checkpoint_config(*resumed, o_.resume);
      mesh_ = body_for_checkpoint(*resumed, o_.resume, config, o_.body);
    } else {
      std::optional<MeshHierarchy> body_file;
      if (!o_.body.empty()) body_file = load_body_file(o_.body);
      config = preset_config(o_.preset, o_.image_size > 0 ? o_.image_size : 128, body_file ? &*body_file : nullptr);
      if (o_.image_size > 0) config.image_size = o_.image_size;
      config.mvm_ratio = o_.mvm_ratio, config.dropout = o_.dropout;
      for (auto& block : config.blocks)
        if (o_.heads > 0) block.heads = o_.heads;
      if (body_file) check_network_matches(config, *body_file);
      mesh_ = body_file ? std::move(*body_file) : MeshHierarchy::for_network(config);
    }
    body_tensors_ = checkpoint_body_tensors(mesh_);
    net_ = std::make_unique<model::MetroNetwork<float>>(config, init);
    init_from_body(*net_, mesh_);  // a resumed run then loads every parameter and buffer from its checkpoint
    optimizer_ = std::make_unique<nn::Adam<float>>(net_->parameters(), nn::AdamOptions{o_.lr, 0.9, 0.999, 1e-8, o_.weight_decay});
    net_->train();
    if (!resumed) return;
    model::load_checkpoint(o_.resume, *net_, optimizer_.get());
    state_ = state_from_metadata(*resumed, o_.resume);
    net_->mask_generator().set_state(state_.mask_seed, state_.mask_offset);
  }

  // Positions the loader after `batches` batches: epoch batches / E, skipping batches % E.
  void start_epoch_at(data::DataLoader& loader, std::int64_t batches, std::int64_t per_epoch) {
    loader.start_epoch(static_cast<std::uint64_t>(batches / per_epoch));
    for (std::int64_t skip = batches % per_epoch; skip > 0; --skip) loader.next();
  }

  double elapsed() const { return state_.train_seconds + seconds_since(start_); }
  double progress() const {
    double p = 0;
    if (o_.steps > 0) p = static_cast<double>(state_.step) / static_cast<double>(o_.steps);
    if (o_.minutes > 0) p = std::max(p, elapsed() / (60 * o_.minutes));
    return p;
  }
  bool finished() const { return progress() >= 1; }

  // Forward, loss, backward, update; false (and no update) when the loss or a gradient is not finite.
  bool train_step(const data::Batch& batch, CsvLog& log) {
    const double lr = learning_rate(o_, state_.step, progress());
    optimizer_->set_lr(lr);
    reseed_dropout(*net_, o_.seed, state_.step);
    auto t = now();
    const BatchTensors inputs = to_tensors(batch, mesh_);
    const auto losses = nn::metro_loss(predictions(net_->forward(inputs.images), mesh_), inputs.targets);
    times_.forward += seconds_since(t);
    t = now();
    optimizer_->zero_grad();
    losses.total.backward();
    times_.backward += seconds_since(t);
    const double loss = losses.total.item();
    t = now();
    // The norm is finite exactly when every gradient is.
    const double norm = o_.clip_norm > 0 ? nn::clip_grad_norm(optimizer_->parameters(), o_.clip_norm) : nn::grad_norm(optimizer_->parameters());
    const bool ok = std::isfinite(loss) && std::isfinite(norm);
    if (ok) optimizer_->step();
    optimizer_->zero_grad();
    clear_tape();
    times_.update += seconds_since(t);
    if (!ok) {
      bar_.finish_line();
      std::cerr << "warning: non-finite loss or gradient at step " << state_.step << " (loss " << loss << "); step skipped\n";
      return false;
    }
    ++state_.step;
    times_.images += batch.batch_size;
    report(losses, lr, norm, log);
    return true;
  }

  void report(const nn::MetroLosses<float>& l, double lr, double grad_norm, CsvLog& log) {
    const double rate = times_.total() > 0 ? static_cast<double>(times_.images) / times_.total() : 0;
    log.write({static_cast<double>(state_.step), lr, l.total.item(), l.joints_3d.item(), l.regressed_joints_3d.item(), l.vertices.item(),
               l.joints_2d.item(), l.regressed_joints_2d.item(), grad_norm, rate, times_.data, times_.forward, times_.backward, times_.update});
    run_times_.data += times_.data, run_times_.forward += times_.forward, run_times_.backward += times_.backward;
    run_times_.update += times_.update, run_times_.images += times_.images;
    times_ = {};
    const double p = progress();
    const double eta = p > start_progress_ ? seconds_since(run_start_) * (1 - p) / (p - start_progress_) : -1;
    char status[256];
    std::snprintf(status, sizeof status, "step %lld loss %.4g (3d %.3g v %.3g 2d %.3g) lr %.2g %.1f img/s ETA %s",
                  static_cast<long long>(state_.step), l.total.item(), l.joints_3d.item() + l.regressed_joints_3d.item(), l.vertices.item(),
                  l.joints_2d.item() + l.regressed_joints_2d.item(), lr, rate, format_duration(eta).c_str());
    bar_.update(p, status);
  }

  void periodic_eval() {
    const MeshMetrics m = evaluate(*net_, *val_set_, mesh_, EvalOptions{o_.batch_size, o_.eval_samples, o_.workers});
    if (!eval_log_)
      eval_log_ = std::make_unique<CsvLog>(o_.out + "/eval.csv", std::vector<std::string>{"step", "mpjpe_mm", "pa_mpjpe_mm", "mpve_mm",
                                                                                          "pa_mpvpe_mm", "f_at_5mm", "f_at_15mm"});
    eval_log_->write({static_cast<double>(state_.step), m.mpjpe_mm, m.pa_mpjpe_mm, m.mpve_mm, m.pa_mpvpe_mm, m.f_at_5mm, m.f_at_15mm});
    bar_.finish_line();
    std::cerr << "eval @ step " << state_.step << ": MPJPE " << m.mpjpe_mm << " mm, PA-MPJPE " << m.pa_mpjpe_mm << " mm, MPVE " << m.mpve_mm
              << " mm\n";
  }

  void save() {
    state_.train_seconds = elapsed();
    start_ = now();
    state_.mask_seed = net_->mask_generator().seed(), state_.mask_offset = net_->mask_generator().offset();
    model::save_checkpoint(checkpoint_path(), *net_, optimizer_.get(), state_metadata(state_, o_), body_tensors_);
  }

  int stop_for_signal(int sig) {
    bar_.finish_line();
    save();
    std::cerr << "stopped by signal " << sig << " at step " << state_.step << "; checkpoint: " << checkpoint_path()
              << " (continue with --resume " << checkpoint_path() << ")\n";
    return 128 + sig;
  }

  void print_header() const {
    std::cerr << "training " << net_->config().preset << " (" << nn::count_parameters(*net_) << " parameters, " << net_->config().image_size
              << " px) on " << train_set_.size() << " samples from " << o_.data << ", batch " << o_.batch_size;
    if (state_.step > 0) std::cerr << ", resuming at step " << state_.step;
    std::cerr << "\n";
  }

  // OUT/metrics.json: the held-out metrics (the training set when no --val), the
  // mean-pose baseline on the same images, and the run's facts.
  void write_final_metrics() {
    const data::Dataset& test = val_set_ ? *val_set_ : train_set_;
    const MeshMetrics ours = evaluate(*net_, test, mesh_, EvalOptions{o_.batch_size, o_.eval_samples, o_.workers});
    const MeshMetrics baseline = evaluate_constant_mesh(mean_training_mesh(train_set_), test, mesh_, o_.eval_samples);
    io::json::Value v = to_json(ours);
    v.as_object().emplace_back("baseline", to_json(baseline));
    v.as_object().emplace_back("eval_set", test.directory());
    v.as_object().emplace_back("train_seconds", state_.train_seconds);
    v.as_object().emplace_back("steps", state_.step);
    v.as_object().emplace_back("preset", net_->config().preset);
    v.as_object().emplace_back("images_per_s", run_times_.total() > 0 ? static_cast<double>(run_times_.images) / run_times_.total() : 0.0);
    v.as_object().emplace_back("seconds_per_phase", io::json::Object{{"data", run_times_.data}, {"forward", run_times_.forward},
                                                                     {"backward", run_times_.backward}, {"update", run_times_.update}});
    const std::string path = o_.out + "/metrics.json";
    std::ofstream(path) << v.dump(2) << "\n";
    std::cout << "held-out evaluation on " << test.directory() << ":\n";
    print_comparison(std::cout, ours, &baseline);
    std::cout << "checkpoint: " << checkpoint_path() << "\nmetrics: " << path << "\n";
  }

  TrainOptions o_;
  MeshHierarchy mesh_{MeshHierarchy::Empty{}};  // the network's, set in build_network()
  std::map<std::string, io::TensorRecord> body_tensors_;  // mesh_, carried by every checkpoint
  data::Dataset train_set_;
  std::optional<data::Dataset> val_set_;
  std::unique_ptr<model::MetroNetwork<float>> net_;
  std::unique_ptr<nn::Adam<float>> optimizer_;
  TrainState state_;
  PhaseTimes times_, run_times_;
  Clock::time_point start_, run_start_;  // since the last checkpoint (for train_seconds), since this run began
  double start_progress_ = 0;            // progress when this run began (resumed runs start above 0)
  ProgressBar bar_;
  std::unique_ptr<CsvLog> eval_log_;
};

}  // namespace metro::train
