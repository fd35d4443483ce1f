#pragma once
// A weight file's network and its eval-mode logits for a batch of normalised images: what
// `slidegrade forward` computes, and what the Python package's Model.predict computes (the same
// function, so the two agree bit for bit). Any weight file with an arch_config: ImageNet imports,
// trained models (best.h5) and training checkpoints (last.h5: its /model).
#include <cstdint>
#include <memory>
#include <string>

#include "core/device.h"
#include "core/tensor.h"
#include "nn/efficientnet.h"
#include "weights/weight_file.h"

namespace sg::infer {

struct NetworkFile {
  std::string path;
  WeightFileInfo info;
  nn::EfficientNetConfig config;
  std::unique_ptr<nn::EfficientNet> network;  // eval mode, weights loaded (strict)
};

// Throws sg::Error naming the file: missing, no arch_config (not a slidegrade network), damaged
// (checksum), tensors that do not match the network.
NetworkFile load_network_file(const std::string& path, Device device);

// Throws sg::Error beginning with `what` (the input's name: a file, "images") unless x is a float32
// CPU tensor [N >= 1, H, W, 3] with H and W at least EfficientNet::kMinImageSize.
void check_network_input(const Tensor& x, const nn::EfficientNetConfig& config, const std::string& what);

// The logits [N, outputs] float32 on the CPU, `batch` images per forward pass on `device`. Out of
// memory: an OutOfMemoryError naming the images and advising a smaller batch.
Tensor network_logits(nn::EfficientNet& network, const Tensor& x, Device device, int64_t batch);

}  // namespace sg::infer
