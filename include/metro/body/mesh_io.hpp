#pragma once
// Triangle-mesh files: Wavefront OBJ and ASCII PLY, written and read back.
// Readers validate everything (counts, indices, numbers) and throw
// metro::FormatError(path, reason) instead of reading out of bounds, so a user
// can plug in their own template mesh safely.
#include "metro/core/vec.hpp"

#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "metro/core/error.hpp"

namespace metro::body {

struct TriangleMesh {
  std::vector<Vec3f> vertices;  // (V, 3) metres
  std::vector<Vec3i> faces;     // (F, 3) zero-based, counter-clockwise seen from outside
};

namespace detail {

inline std::ofstream open_for_writing(const std::string& path) {
  std::ofstream out(path);
  if (!out) throw IOError(path, "cannot open for writing");
  out.precision(9);
  return out;
}

inline void finish_writing(std::ofstream& out, const std::string& path) {
  out.flush();
  if (!out) throw IOError(path, "write failed");
}

inline void check_face_indices(const std::string& path, const std::vector<Vec3i>& faces, std::size_t vertex_count) {
  for (const auto& face : faces)
    for (int k = 0; k < 3; ++k)
      if (face[k] < 0 || static_cast<std::size_t>(face[k]) >= vertex_count)
        throw ValueError(path + ": face index " + std::to_string(face[k]) + " outside [0, " + std::to_string(vertex_count) + ")");
}

inline float parse_float(const std::string& path, const std::string& token, std::size_t line) {
  float value = 0.0f;
  const auto [end, error] = std::from_chars(token.data(), token.data() + token.size(), value);
  if (error != std::errc() || end != token.data() + token.size() || !std::isfinite(value))
    throw FormatError(path, "line " + std::to_string(line) + ": bad number '" + token + "'");
  return value;
}

inline long parse_integer(const std::string& path, const std::string& token, std::size_t line) {
  long value = 0;
  const auto [end, error] = std::from_chars(token.data(), token.data() + token.size(), value);
  if (error != std::errc() || end != token.data() + token.size())
    throw FormatError(path, "line " + std::to_string(line) + ": bad integer '" + token + "'");
  return value;
}

// OBJ face corner "7", "7/2" or "7/2/5" -> zero-based vertex index (negative = relative).
inline int parse_obj_corner(const std::string& path, const std::string& token, std::size_t line, std::size_t vertex_count) {
  const long index = parse_integer(path, token.substr(0, token.find('/')), line);
  const long resolved = index < 0 ? static_cast<long>(vertex_count) + index : index - 1;
  if (index == 0 || resolved < 0 || resolved >= static_cast<long>(vertex_count))
    throw FormatError(path, "line " + std::to_string(line) + ": vertex index " + std::to_string(index) + " out of range");
  return static_cast<int>(resolved);
}

inline std::vector<std::string> split_words(const std::string& line) {
  std::istringstream stream(line);
  std::vector<std::string> words;
  for (std::string word; stream >> word;) words.push_back(word);
  return words;
}

}  // namespace detail

inline void write_obj(const std::string& path, const std::vector<Vec3f>& vertices,
                      const std::vector<Vec3i>& faces) {
  detail::check_face_indices(path, faces, vertices.size());
  auto out = detail::open_for_writing(path);
  for (const auto& v : vertices) out << "v " << v.x() << ' ' << v.y() << ' ' << v.z() << '\n';
  for (const auto& f : faces) out << "f " << f[0] + 1 << ' ' << f[1] + 1 << ' ' << f[2] + 1 << '\n';
  detail::finish_writing(out, path);
}

// ASCII PLY; `colors` (one RGB per vertex) is optional.
inline void write_ply(const std::string& path, const std::vector<Vec3f>& vertices,
                      const std::vector<Vec3i>& faces,
                      const std::vector<std::array<std::uint8_t, 3>>* colors = nullptr) {
  detail::check_face_indices(path, faces, vertices.size());
  if (colors && colors->size() != vertices.size())
    throw ValueError(path + ": " + std::to_string(colors->size()) + " colors for " + std::to_string(vertices.size()) + " vertices");
  auto out = detail::open_for_writing(path);
  out << "ply\nformat ascii 1.0\nelement vertex " << vertices.size() << "\nproperty float x\nproperty float y\nproperty float z\n";
  if (colors) out << "property uchar red\nproperty uchar green\nproperty uchar blue\n";
  out << "element face " << faces.size() << "\nproperty list uchar int vertex_indices\nend_header\n";
  for (std::size_t i = 0; i < vertices.size(); ++i) {
    out << vertices[i].x() << ' ' << vertices[i].y() << ' ' << vertices[i].z();
    if (colors) out << ' ' << int((*colors)[i][0]) << ' ' << int((*colors)[i][1]) << ' ' << int((*colors)[i][2]);
    out << '\n';
  }
  for (const auto& f : faces) out << "3 " << f[0] << ' ' << f[1] << ' ' << f[2] << '\n';
  detail::finish_writing(out, path);
}

// Reads "v x y z" and "f a b c [d ...]" lines (polygons are fanned into triangles);
// other records (vt, vn, g, usemtl, comments) are skipped.
inline TriangleMesh read_obj(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw IOError(path, "cannot open for reading");
  TriangleMesh mesh;
  std::size_t line_number = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_number;
    const auto words = detail::split_words(line);
    if (words.empty()) continue;
    if (words[0] == "v") {
      if (words.size() < 4) throw FormatError(path, "line " + std::to_string(line_number) + ": vertex needs 3 coordinates");
      mesh.vertices.emplace_back(detail::parse_float(path, words[1], line_number), detail::parse_float(path, words[2], line_number),
                                 detail::parse_float(path, words[3], line_number));
    } else if (words[0] == "f") {
      if (words.size() < 4) throw FormatError(path, "line " + std::to_string(line_number) + ": face needs at least 3 corners");
      std::vector<int> corners;
      for (std::size_t k = 1; k < words.size(); ++k)
        corners.push_back(detail::parse_obj_corner(path, words[k], line_number, mesh.vertices.size()));
      for (std::size_t k = 1; k + 1 < corners.size(); ++k) mesh.faces.emplace_back(corners[0], corners[k], corners[k + 1]);
    }
  }
  if (mesh.vertices.empty()) throw FormatError(path, "no vertices");
  return mesh;
}

namespace detail {

struct PlyHeader {
  std::size_t vertex_count = 0, face_count = 0;
  std::size_t vertex_properties = 0;  // x, y, z first, then anything (colors...)
};

inline PlyHeader read_ply_header(std::ifstream& in, const std::string& path) {
  std::string line;
  if (!std::getline(in, line) || line.rfind("ply", 0) != 0) throw FormatError(path, "missing 'ply' magic");
  PlyHeader header;
  std::string element;
  std::vector<std::string> vertex_property_names;
  for (std::size_t line_number = 2; std::getline(in, line); ++line_number) {
    const auto words = split_words(line);
    if (words.empty() || words[0] == "comment" || words[0] == "obj_info") continue;
    if (words[0] == "end_header") {
      if (vertex_property_names.size() < 3 || vertex_property_names[0] != "x" || vertex_property_names[1] != "y" || vertex_property_names[2] != "z")
        throw FormatError(path, "vertex properties must start with x y z");
      header.vertex_properties = vertex_property_names.size();
      return header;
    }
    if (words[0] == "format" && (words.size() < 2 || words[1] != "ascii")) throw FormatError(path, "only ascii PLY is supported");
    if (words[0] == "element" && words.size() == 3) {
      element = words[1];
      const long count = parse_integer(path, words[2], line_number);
      if (count < 0) throw FormatError(path, "negative element count");
      if (element == "vertex") header.vertex_count = static_cast<std::size_t>(count);
      else if (element == "face") header.face_count = static_cast<std::size_t>(count);
      else throw FormatError(path, "unsupported element '" + element + "'");
    } else if (words[0] == "property" && element == "vertex" && words.size() == 3) {
      vertex_property_names.push_back(words[2]);
    }
  }
  throw FormatError(path, "missing end_header");
}

}  // namespace detail

// ASCII PLY with "element vertex" (x y z first) and "element face" (triangles or polygons).
inline TriangleMesh read_ply(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw IOError(path, "cannot open for reading");
  const auto header = detail::read_ply_header(in, path);
  TriangleMesh mesh;
  std::string line;
  for (std::size_t i = 0; i < header.vertex_count; ++i) {
    if (!std::getline(in, line)) throw FormatError(path, "truncated: " + std::to_string(i) + " of " + std::to_string(header.vertex_count) + " vertices");
    const auto words = detail::split_words(line);
    if (words.size() != header.vertex_properties) throw FormatError(path, "vertex " + std::to_string(i) + ": wrong number of values");
    mesh.vertices.emplace_back(detail::parse_float(path, words[0], i), detail::parse_float(path, words[1], i), detail::parse_float(path, words[2], i));
  }
  for (std::size_t i = 0; i < header.face_count; ++i) {
    if (!std::getline(in, line)) throw FormatError(path, "truncated: " + std::to_string(i) + " of " + std::to_string(header.face_count) + " faces");
    const auto words = detail::split_words(line);
    const long corners = words.empty() ? 0 : detail::parse_integer(path, words[0], i);
    if (corners < 3 || words.size() != static_cast<std::size_t>(corners) + 1) throw FormatError(path, "face " + std::to_string(i) + ": bad corner list");
    std::vector<int> ids;
    for (long k = 1; k <= corners; ++k) {
      const long id = detail::parse_integer(path, words[static_cast<std::size_t>(k)], i);
      if (id < 0 || id >= static_cast<long>(mesh.vertices.size())) throw FormatError(path, "face " + std::to_string(i) + ": vertex index out of range");
      ids.push_back(static_cast<int>(id));
    }
    for (std::size_t k = 1; k + 1 < ids.size(); ++k) mesh.faces.emplace_back(ids[0], ids[k], ids[k + 1]);
  }
  return mesh;
}

}  // namespace metro::body
