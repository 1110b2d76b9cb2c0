#pragma once
// The autograd tape (thread-local). Every differentiable op that sees an input
// requiring grad appends one entry: the output's autograd record plus a closure
// that turns the output's gradient into gradients of the inputs. backward() runs
// the entries in reverse order of recording, which is a valid reverse topological
// order because an op can only consume tensors that already exist.
//
// An entry runs once: a second backward through the same graph, or one after
// clear_tape(), reaches a tensor whose entry is gone, which accumulate_grad
// reports (AutogradError) instead of dropping the gradient (PyTorch's
// retain_graph has no counterpart). An exception thrown by a backward clears the
// tape, so no half-propagated gradient is run later.
#include <cstddef>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

namespace metro::autograd {

struct TapeEntry {
  std::shared_ptr<void> output;  // the output's autograd record (AutogradMeta)
  bool* on_tape = nullptr;       // that record's flag: true while this entry is recorded
  std::function<bool()> run;     // runs the backward if the output received a gradient; returns whether it ran
};

class Tape {
 public:
  // Not pruned during a backward: an entry whose output only the tape holds may
  // still have a gradient to pass on (its consumer ran and is gone), and a
  // backward can record (nn::checkpoint's recomputation).
  void record(TapeEntry entry) {
    *entry.on_tape = true;
    if (entries_.size() >= prune_at_ && !in_backward_) prune();
    entries_.push_back(std::move(entry));
  }

  // Runs every entry whose output has a gradient, newest first, and drops it.
  // Entries that received no gradient belong to other graphs and stay recorded.
  void run_backward() {
    std::vector<TapeEntry> untouched;
    in_backward_ = true;
    try {
      while (!entries_.empty()) {
        TapeEntry entry = std::move(entries_.back());
        entries_.pop_back();
        *entry.on_tape = false;  // a backward sends gradients to its inputs, never to its own output
        if (!entry.run()) {
          *entry.on_tape = true;
          untouched.push_back(std::move(entry));
        }
      }
    } catch (...) {
      in_backward_ = false;
      for (TapeEntry& entry : untouched) *entry.on_tape = false;
      clear();
      throw;
    }
    in_backward_ = false;
    entries_.assign(std::make_move_iterator(untouched.rbegin()), std::make_move_iterator(untouched.rend()));
    prune();
  }

  void clear() noexcept {
    for (TapeEntry& entry : entries_) *entry.on_tape = false;
    entries_.clear();
  }
  std::size_t size() const noexcept { return entries_.size(); }

 private:
  // Drops entries whose output nobody can reach any more: when only the tape
  // holds the output's record, no tensor and no later op can send it a gradient.
  // Dropping an entry releases its closure's inputs, which may make earlier
  // entries unreachable; a single newest-to-oldest sweep catches those too.
  void prune() {
    for (std::size_t i = entries_.size(); i-- > 0;)
      if (entries_[i].output.use_count() == 1) entries_[i] = TapeEntry{};  // releases the closure now
    std::erase_if(entries_, [](const TapeEntry& e) { return e.output == nullptr; });
    prune_at_ = 2 * entries_.size() + 1024;
  }

  std::vector<TapeEntry> entries_;
  std::size_t prune_at_ = 1024;
  bool in_backward_ = false;
};

inline Tape& tape() {
  thread_local Tape t;
  return t;
}

inline bool& grad_mode_flag() {
  thread_local bool enabled = true;
  return enabled;
}
inline bool grad_enabled() { return grad_mode_flag(); }

}  // namespace metro::autograd

namespace metro {

// Switches recording on or off in its scope, restoring the previous mode after.
class GradModeGuard {
 public:
  explicit GradModeGuard(bool enabled) : previous_(autograd::grad_mode_flag()) { autograd::grad_mode_flag() = enabled; }
  ~GradModeGuard() { autograd::grad_mode_flag() = previous_; }
  GradModeGuard(const GradModeGuard&) = delete;
  GradModeGuard& operator=(const GradModeGuard&) = delete;

 private:
  bool previous_;
};

// Disables recording in its scope (evaluation, optimizer updates, backward itself).
class NoGradGuard : public GradModeGuard {
 public:
  NoGradGuard() : GradModeGuard(false) {}
};

// Forgets everything recorded on this thread (for a forward whose result will not be differentiated).
inline void clear_tape() { autograd::tape().clear(); }

}  // namespace metro
