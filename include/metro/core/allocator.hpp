#pragma once
// Caching allocators. Training repeats the same shapes every step, so freed
// blocks are kept in per-size free lists and handed out again instead of going
// back to the system (malloc and the kernel, or cudaMalloc, which is slow and
// synchronizes the device) every time. The caching is written once
// (detail::CachingAllocator); each device supplies how raw memory is taken and
// given back: Allocator<cpu> here, Allocator<cuda> in backend/cuda.cuh.
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

namespace detail {

// Per-size free lists over `Memory`, which supplies
//   static constexpr std::size_t kAlignment;          sizes are rounded up to it
//   static void* acquire(std::size_t bytes) noexcept;  nullptr when out of memory
//   static void release(void* p) noexcept;
//   [[noreturn]] static void out_of_memory(std::size_t bytes);  throws
template <class Memory>
class CachingAllocator {
 public:
  static constexpr std::size_t kAlignment = Memory::kAlignment;

  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  void* allocate(std::size_t bytes) {
    const std::size_t size = round_up(bytes);
    {
      std::lock_guard lock(mutex_);
      if (void* p = take_cached(size)) {
        count_live(size);
        return p;
      }
    }
    void* p = Memory::acquire(size);
    if (!p) {
      empty_cache();  // memory held by the cache may be what is missing
      p = Memory::acquire(size);
      if (!p) Memory::out_of_memory(size);
    }
    std::lock_guard lock(mutex_);
    ++fresh_allocations_;
    count_live(size);
    return p;
  }

  void deallocate(void* p, std::size_t bytes) noexcept {
    const std::size_t size = round_up(bytes);
    std::lock_guard lock(mutex_);
    live_bytes_ -= size;
    if (cached_bytes_ + size > cache_limit_) return Memory::release(p);
    try {
      free_blocks_[size].push_back(p);
      cached_bytes_ += size;
    } catch (...) {
      Memory::release(p);
    }
  }

  // Returns every cached block to the system.
  void empty_cache() noexcept {
    std::lock_guard lock(mutex_);
    for (auto& [size, blocks] : free_blocks_)
      for (void* p : blocks) Memory::release(p);
    free_blocks_.clear();
    cached_bytes_ = 0;
  }

  std::size_t cached_bytes() const noexcept { return cached_bytes_; }
  // Bytes held by live tensors now, and the most held at once since the last reset_peak().
  std::size_t live_bytes() const noexcept { return live_bytes_; }
  std::size_t peak_bytes() const noexcept { return peak_bytes_; }
  // How many blocks came from the system rather than the cache: flat in a steady state.
  std::size_t fresh_allocations() const noexcept { return fresh_allocations_; }
  void reset_peak() noexcept {
    std::lock_guard lock(mutex_);
    peak_bytes_ = live_bytes_;
  }
  void set_cache_limit(std::size_t bytes) noexcept { cache_limit_ = bytes; }

 protected:
  explicit CachingAllocator(std::size_t cache_limit) : cache_limit_(cache_limit) {}
  ~CachingAllocator() { empty_cache(); }

 private:
  static std::size_t round_up(std::size_t bytes) noexcept {
    return bytes == 0 ? kAlignment : (bytes + kAlignment - 1) / kAlignment * kAlignment;
  }

  // The two helpers below are called with the mutex held.
  void* take_cached(std::size_t size) noexcept {
    auto it = free_blocks_.find(size);
    if (it == free_blocks_.end() || it->second.empty()) return nullptr;
    void* p = it->second.back();
    it->second.pop_back();
    cached_bytes_ -= size;
    return p;
  }
  void count_live(std::size_t size) noexcept {
    live_bytes_ += size;
    if (live_bytes_ > peak_bytes_) peak_bytes_ = live_bytes_;
  }

  std::mutex mutex_;
  std::unordered_map<std::size_t, std::vector<void*>> free_blocks_;
  std::size_t cached_bytes_ = 0;
  std::size_t live_bytes_ = 0, peak_bytes_ = 0;
  std::size_t fresh_allocations_ = 0;
  std::size_t cache_limit_;
};

// Host memory, aligned to a cache line (one AVX-512 register).
struct HostMemory {
  static constexpr std::size_t kAlignment = 64;
  static void* acquire(std::size_t bytes) noexcept { return std::aligned_alloc(kAlignment, bytes); }
  static void release(void* p) noexcept { std::free(p); }
  [[noreturn]] static void out_of_memory(std::size_t) { throw std::bad_alloc(); }
};

}  // namespace detail

template <>
class Allocator<cpu> : public detail::CachingAllocator<detail::HostMemory> {
 public:
  // Never destroyed: tensors in static or global objects free their memory after
  // the function-local statics are gone.
  static Allocator& instance() {
    static Allocator* allocator = new Allocator;
    return *allocator;
  }

 private:
  Allocator() : CachingAllocator(std::size_t{4} << 30) {}  // cache up to 4 GiB
};

}  // namespace metro
