// libFuzzer target: arbitrary bytes as an OBJ or a PLY file (body/mesh_io.hpp); the
// first byte picks the reader. Any outcome but a mesh or a metro::FormatError is a bug.
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>
#include <unistd.h>

#include "metro/body/mesh_io.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool ply = data[0] & 1;
  static const std::string stem = "/tmp/metro_fuzz_mesh_" + std::to_string(getpid());
  const std::string path = stem + (ply ? ".ply" : ".obj");
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(data + 1), static_cast<std::streamsize>(size - 1));
  try {
    (void)(ply ? metro::body::read_ply(path) : metro::body::read_obj(path));
  } catch (const metro::FormatError&) {
  }
  return 0;
}
