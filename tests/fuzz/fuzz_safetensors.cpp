// libFuzzer target: arbitrary bytes through the safetensors reader.
// Any outcome but a loaded file or a metro::FormatError is a bug (see run.sh).
#include <cstddef>
#include <cstdint>
#include <span>

#include "metro/io/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto file = metro::io::parse_safetensors(std::as_bytes(std::span(data, size)), "fuzz");
    // A file that loads must survive a write/read cycle of its header.
    (void)metro::io::detail::build_header(file);
  } catch (const metro::FormatError&) {
  }
  return 0;
}
