#pragma once
// Conversion between safetensors records and tensors, for checkpoints and the
// PyTorch fixtures. F32 and F64 records convert to either T (F32 -> F64 is exact).
#include <map>
#include <string>
#include <vector>

#include "metro/io/safetensors.hpp"
#include "metro/nn/module.hpp"
#include "metro/tensor.hpp"

namespace metro::nn {

// The record's values as a contiguous Tensor<T> of its shape; ValueError for other dtypes.
template <class T, class D = cpu>
Tensor<T, D> tensor_from_record(const io::TensorRecord& record, const std::string& name) {
  Shape shape(record.shape);
  // Converted on the host, then copied to the device (if D is not the CPU).
  std::vector<T> host(static_cast<std::size_t>(shape.numel()));
  const auto convert = [&](const auto& values) { std::copy(values.begin(), values.end(), host.begin()); };
  if (record.dtype == io::DType::f32) convert(io::record_to_vector<float>(record, name));
  else if (record.dtype == io::DType::f64) convert(io::record_to_vector<double>(record, name));
  else throw ValueError("tensor_from_record: \"" + name + "\" has dtype " + io::dtype_name(record.dtype) + ", expected F32 or F64");
  return from_vector<T, D>(host, shape);
}

template <class T, class D>
io::TensorRecord record_from_tensor(const Tensor<T, D>& t) {
  return io::make_record<T>(t.shape().to_vector(), t.detach().to_vector());
}

// Every record whose name starts with `prefix`, keyed by the rest of the name
// ("param." + "conv1.weight" -> "conv1.weight").
template <class T, class D = cpu>
std::map<std::string, Tensor<T, D>> tensors_with_prefix(const io::SafeTensorsFile& file, const std::string& prefix) {
  std::map<std::string, Tensor<T, D>> out;
  for (const auto& [name, record] : file.tensors)
    if (name.starts_with(prefix)) out.emplace(name.substr(prefix.size()), tensor_from_record<T, D>(record, name));
  return out;
}

// Writes the module's state_dict (parameters and buffers) as a safetensors file (atomically).
template <class T, class D>
void save_state_dict(const Module<T, D>& net, const std::string& path) {
  io::SafeTensorsFile file;
  for (const auto& [name, t] : net.state_dict()) file.tensors.emplace(name, record_from_tensor(t));
  io::save_safetensors(path, file);
}

// Loads a safetensors file written by save_state_dict (strict: see Module::load_state_dict).
template <class T, class D>
void load_state_dict(Module<T, D>& net, const std::string& path, bool strict = true) {
  net.load_state_dict(tensors_with_prefix<T, D>(io::load_safetensors(path), ""), strict);
}

}  // namespace metro::nn
