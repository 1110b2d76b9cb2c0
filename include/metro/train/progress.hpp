#pragma once
// Training feedback: a one-line progress bar on stderr (redrawn in place on a
// terminal, one line every few seconds otherwise) and CSV logs of the losses
// and of the periodic evaluations.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "metro/core/error.hpp"

namespace metro::train {

// "1h02m", "3m05s", "42s"
inline std::string format_duration(double seconds) {
  if (!(seconds >= 0) || seconds > 1e7) return "?";
  const auto s = static_cast<long>(seconds + 0.5);
  char text[32];
  if (s >= 3600) std::snprintf(text, sizeof text, "%ldh%02ldm", s / 3600, s / 60 % 60);
  else if (s >= 60) std::snprintf(text, sizeof text, "%ldm%02lds", s / 60, s % 60);
  else std::snprintf(text, sizeof text, "%lds", s);
  return text;
}

class ProgressBar {
 public:
  explicit ProgressBar(std::ostream& out = std::cerr) : out_(out), interactive_(isatty(STDERR_FILENO) != 0) {}

  // fraction in [0, 1] of the run; `status` is the text after the bar.
  void update(double fraction, const std::string& status) {
    const auto now = std::chrono::steady_clock::now();
    if (!interactive_ && now - last_print_ < std::chrono::seconds(10)) return;
    last_print_ = now;
    constexpr int kWidth = 20;
    const int filled = static_cast<int>(std::clamp(fraction, 0.0, 1.0) * kWidth);
    const std::string bar = "[" + std::string(static_cast<std::size_t>(filled), '#') + std::string(static_cast<std::size_t>(kWidth - filled), '.') + "] ";
    if (interactive_) out_ << "\r\033[K" << bar << status << std::flush;
    else out_ << bar << status << "\n";
    dirty_ = interactive_;
  }
  // Ends the in-place line before other output.
  void finish_line() {
    if (dirty_) out_ << "\n";
    dirty_ = false;
  }

 private:
  std::ostream& out_;
  bool interactive_;
  bool dirty_ = false;
  std::chrono::steady_clock::time_point last_print_{};
};

// A CSV file with a fixed header; appends when resuming (the header is written once).
class CsvLog {
 public:
  CsvLog(const std::string& path, const std::vector<std::string>& columns) : columns_(columns.size()) {
    const bool fresh = !std::filesystem::exists(path) || std::filesystem::file_size(path) == 0;
    file_.open(path, std::ios::app);
    if (!file_) throw IOError(path, "cannot open for writing");
    if (fresh) write_row_text(columns);
  }

  void write(const std::vector<double>& values) {
    if (values.size() != columns_) throw ValueError("CsvLog: " + std::to_string(values.size()) + " values for " + std::to_string(columns_) + " columns");
    std::vector<std::string> text;
    for (double v : values) {
      char cell[32];
      std::snprintf(cell, sizeof cell, "%.6g", v);
      text.emplace_back(cell);
    }
    write_row_text(text);
  }

 private:
  void write_row_text(const std::vector<std::string>& cells) {
    for (std::size_t i = 0; i < cells.size(); ++i) file_ << (i ? "," : "") << cells[i];
    file_ << "\n" << std::flush;
  }

  std::size_t columns_;
  std::ofstream file_;
};

}  // namespace metro::train
