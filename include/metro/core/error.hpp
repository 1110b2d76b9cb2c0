#pragma once
// Typed errors. Everything the library throws derives from metro::Error, so a
// program can catch one type, print e.what() and exit non-zero.
#include <stdexcept>
#include <string>

namespace metro {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Shape, rank or broadcasting mismatch; the message names the op and the shapes.
struct ShapeError : Error {
  using Error::Error;
};

// Bad argument value (negative size, dim out of range, unknown option).
struct ValueError : Error {
  using Error::Error;
};

// Autograd misuse (backward on a non-scalar, on a tensor that needs no grad...).
struct AutogradError : Error {
  using Error::Error;
};

// A file could not be read or written, or its contents are malformed.
// The message always starts with the file's path.
struct IOError : Error {
  IOError(const std::string& path, const std::string& reason) : Error(path + ": " + reason), path_(path) {}
  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

// A file that exists but whose contents are invalid (bad header, truncated, inconsistent).
struct FormatError : IOError {
  using IOError::IOError;
};

// A command-line flag that is unknown, lacks its value, or is out of range.
struct UsageError : Error {
  using Error::Error;
};

}  // namespace metro
