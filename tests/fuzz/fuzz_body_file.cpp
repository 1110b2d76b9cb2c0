// libFuzzer target: arbitrary bytes as a body file (train/body_file.hpp): the
// safetensors reader, then every check of the body's tensors. Any outcome but a
// body or a metro::FormatError is a bug.
#include <cstddef>
#include <cstdint>
#include <span>

#include "metro/train/body_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto body = metro::train::body_from_safetensors(metro::io::parse_safetensors(std::as_bytes(std::span(data, size)), "fuzz"), "fuzz");
    // A body that loads must survive a write/read cycle unchanged.
    if (metro::train::body_fingerprint(metro::train::body_from_safetensors(metro::train::to_safetensors(body), "again")) !=
        metro::train::body_fingerprint(body))
      __builtin_trap();
  } catch (const metro::FormatError&) {
  }
  return 0;
}
