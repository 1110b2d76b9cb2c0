#pragma once
// Checkpoints in the safetensors format (readable by Python's safetensors and
// torch): "model.<parameter or buffer name>" tensors, optionally the optimizer's
// "optimizer.<exp_avg.i ...>" tensors, any caller-supplied tensors (the trainer's
// "body.*": train/body_file.hpp), and __metadata__ with the model config (JSON),
// the optimizer step counts and any caller-supplied entries (training step, RNG
// state...). Written to a temporary file and renamed (io::save_safetensors).
#include <map>
#include <string>

#include "metro/io/safetensors.hpp"
#include "metro/model/metro_network.hpp"
#include "metro/nn/optim.hpp"
#include "metro/nn/state.hpp"

namespace metro::model {

inline constexpr const char* kCheckpointFormat = "metro-checkpoint-1";

template <class T, class D>
void save_checkpoint(const std::string& path, const MetroNetwork<T, D>& net, const nn::Optimizer<T, D>* optimizer = nullptr,
                     const std::map<std::string, std::string>& metadata = {}, const std::map<std::string, io::TensorRecord>& extra_tensors = {}) {
  io::SafeTensorsFile file;
  file.metadata = metadata;
  file.tensors = extra_tensors;
  file.metadata["format"] = kCheckpointFormat;
  file.metadata["config"] = to_json(net.config()).dump();
  for (const auto& [name, t] : net.state_dict()) file.tensors.emplace("model." + name, nn::record_from_tensor(t));
  if (optimizer) {
    const nn::OptimizerState<T, D> state = optimizer->state();
    io::json::Array steps;
    for (auto s : state.parameter_steps) steps.emplace_back(s);
    file.metadata["optimizer"] = io::json::Value(io::json::Object{{"step", state.step}, {"parameter_steps", steps}}).dump();
    for (const auto& [name, t] : state.tensors) file.tensors.emplace("optimizer." + name, nn::record_from_tensor(t));
  }
  io::save_safetensors(path, file);
}

// The model config stored in a checkpoint (to build the network before loading it).
inline MetroConfig checkpoint_config(const io::SafeTensorsFile& file, const std::string& path) {
  const auto format = file.metadata.find("format");
  if (format == file.metadata.end() || format->second != kCheckpointFormat)
    throw FormatError(path, std::string("not a METRO checkpoint (metadata \"format\" should be \"") + kCheckpointFormat + "\")");
  const auto config = file.metadata.find("config");
  if (config == file.metadata.end()) throw FormatError(path, "checkpoint has no \"config\" metadata");
  try {
    return config_from_json(io::json::parse(config->second, path + " (config)"));
  } catch (const ValueError& e) {
    throw FormatError(path, std::string("bad model config: ") + e.what());
  }
}

// Loads weights (and optimizer state when `optimizer` is given) into `net`, whose
// config must equal the checkpoint's. Every mismatch is a typed error naming the file.
template <class T, class D>
void load_checkpoint(const std::string& path, MetroNetwork<T, D>& net, nn::Optimizer<T, D>* optimizer = nullptr) {
  const io::SafeTensorsFile file = io::load_safetensors(path);
  const MetroConfig stored = checkpoint_config(file, path);
  if (to_json(stored).dump() != to_json(net.config()).dump())
    throw FormatError(path, "model config mismatch: checkpoint has " + to_json(stored).dump() + ", network has " +
                                to_json(net.config()).dump());
  try {
    net.load_state_dict(nn::tensors_with_prefix<T, D>(file, "model."));
    if (!optimizer) return;
    const auto meta = file.metadata.find("optimizer");
    if (meta == file.metadata.end()) throw FormatError(path, "checkpoint has no optimizer state");
    const io::json::Value v = io::json::parse(meta->second, path + " (optimizer)");
    nn::OptimizerState<T, D> state;
    state.step = v.at("step").as_int64();
    for (const auto& s : v.at("parameter_steps").as_array()) state.parameter_steps.push_back(s.as_int64());
    state.tensors = nn::tensors_with_prefix<T, D>(file, "optimizer.");
    optimizer->load_state(state);
  } catch (const FormatError&) {
    throw;
  } catch (const Error& e) {
    throw FormatError(path, e.what());
  }
}

}  // namespace metro::model
