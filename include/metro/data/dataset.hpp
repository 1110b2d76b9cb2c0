#pragma once
// A dataset directory in the METRO format: DIR/annotations.bin (see
// annotations.hpp and docs/data.md) and the images it names under DIR/images/.
// The synthetic generator writes this layout; a converter for real data
// (e.g. SMPL fits on Human3.6M) writes the same, with its own vertex count.
#include <filesystem>
#include <mutex>
#include <string>

#include "metro/data/annotations.hpp"
#include "metro/data/image_io.hpp"

namespace metro::data {

struct Sample {
  Image image;                  // RGB
  SampleAnnotation annotation;
};

// Thread-safe random access to the samples of a dataset directory.
class Dataset {
 public:
  explicit Dataset(const std::string& directory)
      : directory_(directory), annotations_((std::filesystem::path(directory) / "annotations.bin").string()) {}

  const std::string& directory() const noexcept { return directory_; }
  const AnnotationHeader& header() const noexcept { return annotations_.header(); }
  std::size_t size() const noexcept { return annotations_.size(); }
  int num_joints() const noexcept { return static_cast<int>(header().num_joints); }
  int num_vertices() const noexcept { return static_cast<int>(header().num_vertices); }

  SampleAnnotation annotation(std::size_t index) const {
    std::lock_guard lock(mutex_);
    return annotations_.read(index);
  }
  std::string image_path(const SampleAnnotation& annotation) const {
    return (std::filesystem::path(directory_) / "images" / annotation.image_name).string();
  }
  Sample load(std::size_t index) const {
    SampleAnnotation labels = annotation(index);
    Image image = read_image(image_path(labels), 3);
    return {std::move(image), std::move(labels)};
  }

 private:
  std::string directory_;
  mutable std::mutex mutex_;
  mutable AnnotationFile annotations_;
};

}  // namespace metro::data
