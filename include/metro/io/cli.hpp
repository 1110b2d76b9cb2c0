#pragma once
// A small command-line flag parser for the example programs.
//
//   int epochs; float lr; std::string out; bool verbose;
//   metro::io::FlagParser flags("train_small", "Trains a small METRO variant.");
//   flags.add("epochs", epochs, 10, "training epochs", {1, 10000});
//   flags.add("lr", lr, 1e-4f, "Adam learning rate", {0.0f, 1.0f});
//   flags.add("out", out, std::string("ckpt.safetensors"), "checkpoint path");
//   flags.add_switch("verbose", verbose, "print every step");
//   if (!flags.parse(argc, argv)) return 0;   // --help was printed
//
// Accepts `--flag value` and `--flag=value`. Unknown flags, missing values,
// unparsable numbers and out-of-range values throw metro::UsageError naming the flag.
#include <charconv>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <functional>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "metro/core/error.hpp"

namespace metro::io {

// Inclusive bounds for a numeric flag; either side may be absent.
template <class T>
struct Range {
  std::optional<T> min;
  std::optional<T> max;
};

class FlagParser {
 public:
  FlagParser(std::string program, std::string description)
      : program_(std::move(program)), description_(std::move(description)) {}

  // A numeric flag (int, int64_t, float, double); `destination` is set to `default_value` now.
  template <class T>
    requires(std::integral<T> || std::floating_point<T>) && (!std::same_as<T, bool>)
  FlagParser& add(std::string name, T& destination, std::type_identity_t<T> default_value, std::string help,
                  Range<std::type_identity_t<T>> range = {}) {
    destination = default_value;
    std::string text = help + " (default " + to_text(default_value) + range_text(range) + ")";
    declare(std::move(name), std::move(text), true, [&destination, range](const std::string& flag, std::string_view value) {
      destination = parse_number<T>(flag, value);
      check_range(flag, destination, range);
    });
    return *this;
  }

  FlagParser& add(std::string name, std::string& destination, std::string default_value, std::string help) {
    std::string text = help + " (default \"" + default_value + "\")";
    destination = std::move(default_value);
    declare(std::move(name), std::move(text), true,
            [&destination](const std::string&, std::string_view value) { destination = std::string(value); });
    return *this;
  }

  // A switch: false unless given; `--name` sets it, `--name=true|false|1|0` is also accepted.
  FlagParser& add_switch(std::string name, bool& destination, std::string help) {
    destination = false;
    declare(std::move(name), std::move(help), false, [&destination](const std::string& flag, std::string_view value) {
      destination = parse_bool(flag, value);
    });
    return *this;
  }

  // Applies argv[1..argc); returns false after printing usage to `out` for --help / -h.
  bool parse(int argc, const char* const* argv, std::ostream& out = std::cout) {
    for (int i = 1; i < argc; ++i) {
      const std::string_view arg = argv[i];
      if (arg == "--help" || arg == "-h") {
        out << usage();
        return false;
      }
      if (arg.substr(0, 2) != "--" || arg.size() == 2) throw UsageError("unexpected argument \"" + std::string(arg) + "\"");
      const std::size_t equals = arg.find('=');
      const std::string name(arg.substr(2, equals == std::string_view::npos ? std::string_view::npos : equals - 2));
      const Flag& flag = find(name);
      if (equals != std::string_view::npos) {
        flag.apply(name, arg.substr(equals + 1));
      } else if (!flag.takes_value) {
        flag.apply(name, "true");
      } else if (i + 1 >= argc) {
        throw UsageError("--" + name + ": missing value");
      } else {
        flag.apply(name, argv[++i]);
      }
    }
    return true;
  }

  std::string usage() const {
    std::ostringstream text;
    text << "Usage: " << program_ << " [flags]\n" << description_ << "\n\nFlags:\n";
    for (const Flag& flag : flags_)
      text << "  --" << flag.name << (flag.takes_value ? " VALUE" : "") << "\n      " << flag.help << "\n";
    text << "  --help\n      print this message\n";
    return text.str();
  }

 private:
  using Setter = std::function<void(const std::string& flag, std::string_view value)>;
  struct Flag {
    std::string name, help;
    bool takes_value;
    Setter apply;
  };

  void declare(std::string name, std::string help, bool takes_value, Setter apply) {
    if (name.empty() || name.find('=') != std::string::npos) throw ValueError("FlagParser: invalid flag name \"" + name + "\"");
    for (const Flag& flag : flags_)
      if (flag.name == name) throw ValueError("FlagParser: flag --" + name + " declared twice");
    flags_.push_back({std::move(name), std::move(help), takes_value, std::move(apply)});
  }

  const Flag& find(const std::string& name) const {
    for (const Flag& flag : flags_)
      if (flag.name == name) return flag;
    throw UsageError("--" + name + ": unknown flag (see --help)");
  }

  template <class T>
  static T parse_number(const std::string& flag, std::string_view text) {
    T value{};
    const char* first = text.data();
    const char* last = first + text.size();
    if (!text.empty() && *first == '+') ++first;  // from_chars rejects a leading '+'
    auto [ptr, ec] = std::from_chars(first, last, value);
    if (ec == std::errc::result_out_of_range) throw UsageError("--" + flag + ": value \"" + std::string(text) + "\" is out of range for its type");
    if (text.empty() || ec != std::errc() || ptr != last)
      throw UsageError("--" + flag + ": cannot parse \"" + std::string(text) + "\" as a number");
    if constexpr (std::floating_point<T>)
      if (!std::isfinite(value)) throw UsageError("--" + flag + ": value must be finite, got \"" + std::string(text) + "\"");
    return value;
  }

  static bool parse_bool(const std::string& flag, std::string_view text) {
    if (text == "true" || text == "1") return true;
    if (text == "false" || text == "0") return false;
    throw UsageError("--" + flag + ": expected true/false/1/0, got \"" + std::string(text) + "\"");
  }

  template <class T>
  static void check_range(const std::string& flag, T value, const Range<T>& range) {
    if ((range.min && value < *range.min) || (range.max && value > *range.max))
      throw UsageError("--" + flag + ": value " + to_text(value) + " is outside" + range_text(range));
  }

  template <class T>
  static std::string to_text(T value) {
    char buffer[64];
    auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
    return std::string(buffer, result.ptr);
  }

  template <class T>
  static std::string range_text(const Range<T>& range) {
    if (!range.min && !range.max) return "";
    return " range [" + (range.min ? to_text(*range.min) : std::string("-inf")) + ", " +
           (range.max ? to_text(*range.max) : std::string("inf")) + "]";
  }

  std::string program_, description_;
  std::vector<Flag> flags_;
};

}  // namespace metro::io
