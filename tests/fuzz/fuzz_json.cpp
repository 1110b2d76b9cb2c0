// libFuzzer target: arbitrary text through the JSON parser. Whatever parses must
// dump and parse back to the same text; anything else must be a metro::FormatError.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "metro/io/json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const std::string compact = metro::io::json::parse(text, "fuzz").dump();
    if (metro::io::json::parse(compact, "fuzz").dump() != compact) std::abort();
    if (metro::io::json::parse(metro::io::json::parse(compact, "fuzz").dump(2), "fuzz").dump() != compact) std::abort();
  } catch (const metro::FormatError&) {
  }
  return 0;
}
