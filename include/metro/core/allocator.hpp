#pragma once
// A caching host allocator. Training repeats the same shapes every step, so freed
// blocks are kept in per-size free lists and handed out again instead of going
// back to malloc (and the kernel, for large blocks) every time.
#include <cstddef>
#include <cstdlib>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

#include "metro/core/device.hpp"

namespace metro {

template <class Device>
class Allocator;

template <>
class Allocator<cpu> {
 public:
  static constexpr std::size_t kAlignment = 64;  // one cache line, one AVX-512 register

  static Allocator& instance() {
    static Allocator allocator;
    return allocator;
  }

  void* allocate(std::size_t bytes) {
    const std::size_t size = round_up(bytes);
    {
      std::lock_guard lock(mutex_);
      auto it = free_blocks_.find(size);
      if (it != free_blocks_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_bytes_ -= size;
        count_live(size);
        return p;
      }
    }
    void* p = std::aligned_alloc(kAlignment, size);
    if (!p) {
      empty_cache();
      p = std::aligned_alloc(kAlignment, size);
      if (!p) throw std::bad_alloc();
    }
    std::lock_guard lock(mutex_);
    count_live(size);
    return p;
  }

  void deallocate(void* p, std::size_t bytes) noexcept {
    const std::size_t size = round_up(bytes);
    std::lock_guard lock(mutex_);
    live_bytes_ -= size;
    if (cached_bytes_ + size > cache_limit_) {
      std::free(p);
      return;
    }
    try {
      free_blocks_[size].push_back(p);
      cached_bytes_ += size;
    } catch (...) {
      std::free(p);
    }
  }

  // Returns every cached block to the system.
  void empty_cache() noexcept {
    std::lock_guard lock(mutex_);
    for (auto& [size, blocks] : free_blocks_)
      for (void* p : blocks) std::free(p);
    free_blocks_.clear();
    cached_bytes_ = 0;
  }

  std::size_t cached_bytes() const noexcept { return cached_bytes_; }
  // Bytes held by live tensors now, and the most held at once since the last reset_peak().
  std::size_t live_bytes() const noexcept { return live_bytes_; }
  std::size_t peak_bytes() const noexcept { return peak_bytes_; }
  void reset_peak() noexcept {
    std::lock_guard lock(mutex_);
    peak_bytes_ = live_bytes_;
  }
  void set_cache_limit(std::size_t bytes) noexcept { cache_limit_ = bytes; }

  ~Allocator() { empty_cache(); }

 private:
  Allocator() = default;
  static std::size_t round_up(std::size_t bytes) noexcept {
    return bytes == 0 ? kAlignment : (bytes + kAlignment - 1) / kAlignment * kAlignment;
  }

  // Called with the mutex held.
  void count_live(std::size_t size) noexcept {
    live_bytes_ += size;
    if (live_bytes_ > peak_bytes_) peak_bytes_ = live_bytes_;
  }

  std::mutex mutex_;
  std::unordered_map<std::size_t, std::vector<void*>> free_blocks_;
  std::size_t cached_bytes_ = 0;
  std::size_t live_bytes_ = 0, peak_bytes_ = 0;
  std::size_t cache_limit_ = std::size_t{4} << 30;  // 4 GiB
};

}  // namespace metro
