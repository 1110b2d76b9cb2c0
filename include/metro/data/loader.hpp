#pragma once
// Batches for training: background threads decode and augment the next batches
// while the caller trains on the current one. Every sample's augmentation draws
// from its own Generator seeded from (seed, epoch, position), and the shuffle from
// (seed, epoch), so batches are identical whatever the worker count.
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <mutex>
#include <numeric>
#include <optional>
#include <thread>
#include <vector>

#include "metro/core/error.hpp"
#include "metro/core/random.hpp"
#include "metro/data/augment.hpp"
#include "metro/data/dataset.hpp"

namespace metro::data {

// One batch as contiguous row-major float arrays (shapes in the comments).
struct Batch {
  int batch_size = 0, image_size = 0, num_joints = 0, num_vertices = 0;
  std::vector<float> images;     // (B, 3, H, W), ImageNet-normalized RGB, H = W = image_size
  std::vector<float> joints_2d;  // (B, J, 3): x, y in [-1, 1] of the input image, visibility
  std::vector<float> joints_3d;  // (B, J, 4): x, y, z metres relative to the pelvis (mid-hip), confidence
  std::vector<float> vertices;   // (B, V, 3): metres relative to the pelvis
  std::vector<float> has_2d, has_3d, has_mesh;  // (B): 1 where the label exists
  std::vector<std::size_t> indices;             // (B): dataset index of each sample

  Batch(int batch, int size, int joints, int vertex_count)
      : batch_size(batch), image_size(size), num_joints(joints), num_vertices(vertex_count),
        images(static_cast<std::size_t>(batch) * 3 * size * size), joints_2d(static_cast<std::size_t>(batch) * joints * 3),
        joints_3d(static_cast<std::size_t>(batch) * joints * 4), vertices(static_cast<std::size_t>(batch) * vertex_count * 3),
        has_2d(batch), has_3d(batch), has_mesh(batch), indices(batch) {}
};

struct LoaderOptions {
  int batch_size = 32;
  int image_size = 128;           // output side (the model input may be smaller than the stored images)
  int num_workers = 2;
  int prefetch_batches = 4;       // batches prepared ahead of the consumer
  bool shuffle = true;
  bool drop_last = true;          // false: the last batch may be smaller
  std::uint64_t seed = 0;
  AugmentOptions augment;
  std::vector<int> joint_symmetry;   // (J) mirror joint of each joint, used by flips
  std::vector<int> vertex_symmetry;  // (V) mirror vertex; needed when the dataset has vertices and flips are on
};

// Fills slot `slot` of `batch` with sample `labels`/`image` augmented by `params`.
inline void fill_batch_slot(Batch& batch, int slot, const render::Image& image, const SampleAnnotation& labels,
                            const AugmentParams& params, const LoaderOptions& options) {
  const auto j = static_cast<std::size_t>(batch.num_joints), v = static_cast<std::size_t>(batch.num_vertices);
  const auto s = static_cast<std::size_t>(slot), size = static_cast<std::size_t>(batch.image_size);
  const CropTransform crop(labels, params, batch.image_size);
  warp_and_normalize(image, crop, params, batch.image_size, std::span(batch.images).subspan(s * 3 * size * size, 3 * size * size));
  transform_joints_2d(labels.joints_2d, crop, options.joint_symmetry, std::span(batch.joints_2d).subspan(s * j * 3, j * 3));
  const Vec3f root = pelvis(labels.joints_3d);
  transform_points_3d(labels.joints_3d, 4, root, crop, options.joint_symmetry, std::span(batch.joints_3d).subspan(s * j * 4, j * 4));
  transform_points_3d(labels.vertices, 3, root, crop, options.vertex_symmetry, std::span(batch.vertices).subspan(s * v * 3, v * 3));
  batch.has_2d[s] = labels.has_2d, batch.has_3d[s] = labels.has_3d, batch.has_mesh[s] = labels.has_mesh;
}

class DataLoader {
 public:
  DataLoader(const Dataset& dataset, LoaderOptions options) : dataset_(dataset), options_(std::move(options)) {
    validate_options();
  }
  ~DataLoader() { stop_workers(); }
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  std::size_t batches_per_epoch() const noexcept {
    const std::size_t n = dataset_.size(), b = static_cast<std::size_t>(options_.batch_size);
    return options_.drop_last ? n / b : (n + b - 1) / b;
  }

  // Shuffles (from seed and epoch) and starts preparing the epoch's batches.
  void start_epoch(std::uint64_t epoch) {
    stop_workers();
    epoch_ = epoch;
    order_.resize(dataset_.size());
    std::iota(order_.begin(), order_.end(), std::size_t{0});
    if (options_.shuffle) shuffle_order();
    next_batch_ = 0, stopping_ = false;
    ready_.clear();
    for (int w = 0; w < options_.num_workers; ++w) workers_.emplace_back([this, w] { work(static_cast<std::size_t>(w)); });
  }

  // The next batch of the epoch, nullopt at its end. Rethrows a worker's error
  // (e.g. FormatError for a corrupt image) in the caller's thread.
  std::optional<Batch> next() {
    if (workers_.empty()) throw ValueError("DataLoader::next: call start_epoch first");
    if (next_batch_ >= batches_per_epoch()) return std::nullopt;
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return ready_.count(next_batch_) > 0; });
    Prepared prepared = std::move(ready_.at(next_batch_));
    ready_.erase(next_batch_++);
    lock.unlock();
    changed_.notify_all();
    if (prepared.error) std::rethrow_exception(prepared.error);
    return std::move(prepared.batch);
  }

  // Builds batch `index` of the current epoch in the calling thread (workers use this).
  Batch make_batch(std::size_t index) const {
    const std::size_t first = index * options_.batch_size;
    const int count = static_cast<int>(std::min<std::size_t>(options_.batch_size, order_.size() - first));
    Batch batch(count, options_.image_size, dataset_.num_joints(), dataset_.num_vertices());
    for (int slot = 0; slot < count; ++slot) {
      const std::size_t position = first + slot, sample_index = order_[position];
      Generator rng(random_bits(random_bits(options_.seed, epoch_), position));
      const AugmentParams params = sample_augment_params(rng, options_.augment);
      const Sample sample = dataset_.load(sample_index);
      fill_batch_slot(batch, slot, sample.image, sample.annotation, params, options_);
      batch.indices[slot] = sample_index;
    }
    return batch;
  }

 private:
  struct Prepared {
    std::optional<Batch> batch;
    std::exception_ptr error;
  };

  void validate_options() const {
    const auto& o = options_;
    if (o.batch_size < 1 || o.image_size < 8 || o.num_workers < 1 || o.prefetch_batches < 1) {
      throw ValueError("DataLoader: batch_size, image_size (>= 8), num_workers and prefetch_batches must be positive");
    }
    if (o.joint_symmetry.size() != static_cast<std::size_t>(dataset_.num_joints())) {
      throw ValueError("DataLoader: joint_symmetry needs one entry per joint (" + std::to_string(dataset_.num_joints()) + ")");
    }
    if (dataset_.num_joints() < 4) throw ValueError("DataLoader: the pelvis needs joints 2 and 3 (hips)");
    const bool flips = o.augment.enabled && o.augment.flip_probability > 0;
    if (flips && dataset_.num_vertices() > 0 && o.vertex_symmetry.size() != static_cast<std::size_t>(dataset_.num_vertices())) {
      throw ValueError("DataLoader: flips need vertex_symmetry with one entry per vertex (" +
                       std::to_string(dataset_.num_vertices()) + ")");
    }
    for (int j : o.joint_symmetry) {
      if (j < 0 || j >= dataset_.num_joints()) throw ValueError("DataLoader: joint_symmetry entry out of range");
    }
    for (int v : o.vertex_symmetry) {
      if (v < 0 || v >= dataset_.num_vertices()) throw ValueError("DataLoader: vertex_symmetry entry out of range");
    }
  }

  void shuffle_order() {
    Generator rng(random_bits(options_.seed ^ 0x5A17ull, epoch_));
    for (std::size_t i = order_.size(); i > 1; --i) {
      std::swap(order_[i - 1], order_[static_cast<std::size_t>(rng.randint(0, static_cast<std::int64_t>(i)))]);
    }
  }

  // Worker w builds batches w, w + W, w + 2W, ... staying at most prefetch_batches ahead.
  void work(std::size_t worker) {
    const std::size_t stride = static_cast<std::size_t>(options_.num_workers);
    for (std::size_t index = worker; index < batches_per_epoch(); index += stride) {
      {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [&] { return stopping_ || index < next_batch_ + options_.prefetch_batches; });
        if (stopping_) return;
      }
      Prepared prepared;
      try {
        prepared.batch = make_batch(index);
      } catch (...) {
        prepared.error = std::current_exception();
      }
      {
        std::lock_guard lock(mutex_);
        ready_.emplace(index, std::move(prepared));
      }
      changed_.notify_all();
    }
  }

  void stop_workers() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    changed_.notify_all();
    for (std::thread& t : workers_) t.join();
    workers_.clear();
  }

  const Dataset& dataset_;
  LoaderOptions options_;
  std::uint64_t epoch_ = 0;
  std::vector<std::size_t> order_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::size_t, Prepared> ready_;
  std::size_t next_batch_ = 0;
  bool stopping_ = false;
};

}  // namespace metro::data
