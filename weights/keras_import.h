#pragma once
// Keras legacy HDF5 weight files (save_weights / Keras applications' efficientnetb*.h5 and the
// pip `efficientnet` package's files) -> our weight format (weights/weight_file.h).
//
// Layout read (docs/file_formats.md): the layer groups at the root or under /model_weights; the
// root (or /model_weights) attribute layer_names lists the layers in order (split into
// layer_names0, layer_names1, ... when long); each layer group's attribute weight_names lists its
// datasets by path relative to the group ("stem_conv/kernel:0"). Layers without weights (input,
// rescaling, activations, padding, dropout) are ignored.
//
// Names: stem_conv -> conv_stem, stem_bn -> bn1, block{stage}{a,b,..}_{expand_conv, expand_bn,
// dwconv, bn, se_reduce, se_expand, project_conv, project_bn} -> blocks.{stage-1}.{j}.* (timm's
// names, which depend on whether the block expands), top_conv -> conv_head, top_bn -> bn2,
// predictions | probs -> classifier. BN gamma, beta, moving_mean, moving_variance -> weight, bias,
// running_mean, running_var. The in-graph `normalization` layer (mean, variance, count) becomes
// the config's input mean/std: its "variance" holds the std values, applied as
// (x/255 - mean) / variance.
// Layouts: conv kernel (kh, kw, Cin, Cout) -> OHWI [Cout, kh, kw, Cin]; depthwise_kernel
// (kh, kw, C, 1) -> [C, kh, kw, 1]; Dense kernel (in, out) -> [out, in].
//
// The config written: the arch's defaults with padding=tf_same bn_eps=0.001 bn_momentum=0.01,
// outputs from the Dense layer, and mean/std from the normalization layer (ImageNet's without
// one). notop files (no Dense layer) are written without the classifier tensors; the file's user
// attribute include_top is "0" and loading them takes LoadOptions::partial.
//
// Keras 3 `.weights.h5` files (save_weights in Keras 3) are read too: each layer is a group
// layers/<auto name>/vars whose attribute `name` is the layer's name and whose datasets 0..n-1 are
// its variables in creation order (BN: gamma, beta, moving_mean, moving_variance; conv: kernel,
// bias; depthwise: kernel; normalization: mean, variance, count). A file whose vars groups do not
// record the layer name (older Keras 3) is refused: mapping auto names would be guesswork.
//
// Every error names the file and the first offending Keras layer.
#include <optional>
#include <string>
#include <vector>

#include "nn/efficientnet.h"
#include "weights/weight_file.h"

namespace sg::keras {

enum class KerasFormat { legacy_h5, keras3_weights_h5 };
const char* format_name(KerasFormat format);

struct KerasImportOptions {
  // "b0".."b7"; empty: inferred by comparing every layer's shape with each arch of the one table
  // (nn/efficientnet.cpp: B0-B7, Lite0-4); exactly one arch must match, else the error names the
  // closest and its first mismatching layer. (A Lite match is named, then refused: Keras has no Lite.)
  std::string arch;
};

struct KerasImport {
  nn::EfficientNetConfig config;
  std::vector<NamedTensor> tensors;  // our names and layouts, f32 CPU, in the model's order
  KerasFormat format = KerasFormat::legacy_h5;
  std::string root;                  // "/" or "/model_weights"
  std::string classifier_layer;      // "predictions", "probs" or "" (notop)
  bool has_normalization = false;
  size_t layer_count = 0;            // Keras layers listed in layer_names
  size_t weighted_layer_count = 0;   // of them, those with weights
};

// True when the file opens as HDF5 and is laid out as a Keras weight file: a layer_names attribute
// (root or /model_weights) or a Keras 3 "layers" group.
bool is_keras_file(const std::string& path);

// Reads and converts every tensor; checks each name, shape and dtype against the model built from
// the (given or inferred) config. Throws sg::Error naming the file and the first offending layer;
// layers it cannot place are all listed.
KerasImport read_keras_weights(const std::string& path, const KerasImportOptions& options = {});

// The arch alone, as read_keras_weights infers it (every layer's shape, no data read); throws
// sg::Error naming the closest arch and its first mismatching layer when none fits exactly.
std::string infer_keras_arch(const std::string& path);

// read_keras_weights, then save_weights to `out` with the config's text as arch_config.
KerasImport import_keras_weights(const std::string& in, const std::string& out,
                                 const KerasImportOptions& options = {});

// What `slidegrade inspect` prints for a Keras file; never throws for layout problems (they
// are listed), only for files that are not HDF5 / not Keras.
struct KerasInspection {
  KerasFormat format = KerasFormat::legacy_h5;
  std::string root;
  size_t layer_count = 0, weighted_layer_count = 0;
  std::string arch;                 // inferred; empty when no arch fits every layer
  std::string closest_arch;         // when none fits: the arch with the fewest mismatching tensors
  std::string classifier_layer;     // "predictions", "probs" or ""
  bool has_normalization = false;
  std::vector<std::string> problems;  // the import's error (empty when it would succeed)
  std::vector<std::string> unplaced;  // "layer/weight" entries that map to no tensor of the arch
};
KerasInspection inspect_keras_file(const std::string& path);

}  // namespace sg::keras
