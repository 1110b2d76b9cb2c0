// libFuzzer target: arbitrary bytes as a dataset annotation file (data/annotations.hpp).
// The reader takes a path, so the input is written to a scratch file first.
// Any outcome but a parsed file or a metro::FormatError is a bug (see run.sh).
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>
#include <unistd.h>

#include "metro/data/annotations.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string path = "/tmp/metro_fuzz_annotations_" + std::to_string(getpid()) + ".bin";
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  try {
    (void)metro::data::read_annotations(path);
  } catch (const metro::FormatError&) {
  }
  return 0;
}
