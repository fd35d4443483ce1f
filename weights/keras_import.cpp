#include "weights/keras_import.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "core/error.h"
#include "nn/efficientnet_config_text.h"
#include "nn/efficientnet_tensor_shapes.h"
#include "weights/hdf5_tensor.h"

namespace sg::keras {
namespace {

std::string join_dims(const std::vector<int64_t>& dims) {
  std::string s = "(";
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(dims[i]);  // (appending apart: GCC 12 warns -Wrestrict on "," + to_string once inlined)
  }
  return s + ")";
}

// A string-array attribute (fixed-length byte strings as Keras/h5py write them, or variable-length).
std::vector<std::string> read_string_list(hid_t object, const std::string& name, const std::string& where) {
  Hdf5Handle attribute(H5Aopen(object, name.c_str(), H5P_DEFAULT), H5Aclose);
  SG_CHECK(attribute.valid(), where, ": cannot open attribute '", name, "'");
  Hdf5Handle type(H5Aget_type(attribute.get()), H5Tclose);
  Hdf5Handle space(H5Aget_space(attribute.get()), H5Sclose);
  SG_CHECK(type.valid() && space.valid(), where, ": cannot read attribute '", name, "'");
  const hssize_t count = H5Sget_simple_extent_npoints(space.get());
  std::vector<std::string> out;
  if (count <= 0) return out;  // Keras writes a layer without weights as an empty float64 array
  SG_CHECK(H5Tget_class(type.get()) == H5T_STRING, where, ": attribute '", name, "' is not a list of strings");
  if (H5Tis_variable_str(type.get()) > 0) {
    Hdf5Handle memory(H5Tcopy(H5T_C_S1), H5Tclose);
    SG_CHECK(memory.valid() && H5Tset_size(memory.get(), H5T_VARIABLE) >= 0, where, ": HDF5 string type");
    std::vector<char*> values(size_t(count), nullptr);
    SG_CHECK(H5Aread(attribute.get(), memory.get(), values.data()) >= 0, where, ": cannot read attribute '", name, "'");
    for (char* v : values) out.emplace_back(v ? v : "");
    H5Dvlen_reclaim(memory.get(), space.get(), H5P_DEFAULT, values.data());
    return out;
  }
  const size_t size = H5Tget_size(type.get());
  SG_CHECK(size > 0, where, ": attribute '", name, "' has empty strings");
  std::vector<char> buffer(size * size_t(count));
  SG_CHECK(H5Aread(attribute.get(), type.get(), buffer.data()) >= 0, where, ": cannot read attribute '", name, "'");
  for (hssize_t i = 0; i < count; ++i) {
    const char* begin = buffer.data() + size_t(i) * size;
    out.emplace_back(begin, strnlen(begin, size));
  }
  return out;
}

struct KerasWeight {
  std::string path;  // relative to the layer group, as weight_names says
  std::string leaf;  // "kernel", "gamma", ... (":0" and any scope stripped)
};
struct KerasLayer {
  std::string name;
  std::vector<KerasWeight> weights;
  std::string group;  // the group holding the weights, relative to the root: the name (legacy) or
                      // "layers/<auto name>/vars" (Keras 3)
};

// The open file with its layers in order.
struct KerasFile {
  std::string path;
  Hdf5Handle file;
  Hdf5Handle root;
  std::string root_name;
  KerasFormat format = KerasFormat::legacy_h5;
  std::vector<KerasLayer> layers;  // every listed layer
  std::map<std::string, size_t> index;

  const KerasLayer* layer(const std::string& name) const {
    const auto it = index.find(name);
    return it == index.end() ? nullptr : &layers[it->second];
  }
  const KerasWeight* weight(const std::string& layer_name, const std::string& leaf) const {
    const KerasLayer* l = layer(layer_name);
    if (!l) return nullptr;
    for (const KerasWeight& w : l->weights)
      if (w.leaf == leaf) return &w;
    return nullptr;
  }
};

std::string leaf_of(const std::string& weight_name) {
  std::string leaf = weight_name.substr(weight_name.rfind('/') == std::string::npos ? 0 : weight_name.rfind('/') + 1);
  const size_t colon = leaf.rfind(':');
  if (colon != std::string::npos) leaf.resize(colon);
  return leaf;
}

bool is_normalization(const std::string& layer) { return layer.rfind("normalization", 0) == 0; }

// Where layer_names lives: "/" or "/model_weights"; empty when neither.
std::string find_root(hid_t file) {
  if (h5::has_attribute(file, "layer_names") || h5::has_attribute(file, "layer_names0")) return "/";
  if (h5::has_link(file, "model_weights")) {
    Hdf5Handle group(H5Gopen2(file, "model_weights", H5P_DEFAULT), H5Gclose);
    if (group.valid() && (h5::has_attribute(group.get(), "layer_names") || h5::has_attribute(group.get(), "layer_names0")))
      return "/model_weights";
  }
  return "";
}

// Keras 3 `.weights.h5`: a group "layers" at the root whose members hold "vars" groups.
bool is_keras3_layout(hid_t file) {
  if (h5::has_attribute(file, "layer_names") || !h5::has_link(file, "layers")) return false;
  H5O_info_t info;
  return H5Oget_info_by_name(file, "layers", &info, H5P_DEFAULT) >= 0 && info.type == H5O_TYPE_GROUP;
}

// The names Keras 3 gives a layer's variables, in the order it creates them (the order of
// vars/0, vars/1, ...), from the kind of EfficientNet layer the name says it is. Shapes are
// checked against the model afterwards, so a wrong kind cannot slip through as a wrong tensor.
std::vector<std::string> keras3_variable_names(const std::string& layer, size_t count) {
  const auto ends_with = [&](const char* suffix) {
    const size_t n = std::strlen(suffix);
    return layer.size() >= n && layer.compare(layer.size() - n, n, suffix) == 0;
  };
  std::vector<std::string> names;
  if (ends_with("_bn")) names = {"gamma", "beta", "moving_mean", "moving_variance"};  // BatchNormalization.build
  else if (ends_with("dwconv")) names = {"depthwise_kernel", "bias"};
  else if (is_normalization(layer)) names = {"mean", "variance", "count"};
  else if (ends_with("_conv") || ends_with("se_reduce") || ends_with("se_expand") || layer == "predictions" ||
           layer == "probs")
    names = {"kernel", "bias"};
  // Anything else keeps its index as its name, so it is listed as a weight no tensor takes.
  for (size_t i = names.size(); i < count; ++i) names.push_back("var" + std::to_string(i));
  names.resize(count);
  return names;
}

// Every layer under `layers` (the group at `group`: "layers", or a nested model's
// "layers/<model>/layers"), depth first.
void read_keras3_layers(KerasFile& k, hid_t layers, const std::string& group) {
  for (const std::string& child : h5::child_groups(layers, k.path + ": " + group)) {
    const std::string child_path = group + "/" + child;
    const Hdf5Handle child_group = h5::open_group(layers, child, k.path);
    if (h5::has_link(child_group.get(), "layers")) {
      const Hdf5Handle nested = h5::open_group(child_group.get(), "layers", k.path);
      read_keras3_layers(k, nested.get(), child_path + "/layers");
    }
    if (!h5::has_link(child_group.get(), "vars")) continue;
    const std::string vars_path = child_path + "/vars";
    const Hdf5Handle vars = h5::open_group(child_group.get(), "vars", k.path);
    const std::vector<std::string> datasets = h5::child_datasets(vars.get(), k.path + ": " + vars_path);
    KerasLayer layer;
    layer.group = vars_path;
    if (h5::has_attribute(vars.get(), "name")) {
      layer.name = h5::read_string_attribute(vars.get(), "name", k.path + ": " + vars_path);
    } else {
      // Without the name, a layer is known only by the order Keras created it in: guessing which
      // "batch_normalization_12" is which is exactly what we do not do.
      SG_CHECK(datasets.empty(), k.path, ": Keras 3 layer group '", child_path,
               "' does not record its layer name (the vars group's 'name' attribute, written by newer Keras 3 "
               "releases); its weights cannot be placed without guessing. Re-save the weights with a current "
               "Keras 3, or with Keras 2's save_weights to a legacy .h5");
      layer.name = child;
    }
    for (size_t i = 0; i < datasets.size(); ++i)
      SG_CHECK(h5::has_link(vars.get(), std::to_string(i)), k.path, ": Keras 3 layer '", layer.name, "' (", vars_path,
               "): expected datasets 0..", datasets.size() - 1, ", dataset ", i, " is missing");
    const std::vector<std::string> names = keras3_variable_names(layer.name, datasets.size());
    for (size_t i = 0; i < datasets.size(); ++i) layer.weights.push_back({std::to_string(i), names[i]});
    SG_CHECK(!k.index.count(layer.name), k.path, ": Keras 3 layer name '", layer.name, "' appears twice (", vars_path,
             ")");
    k.index[layer.name] = k.layers.size();
    k.layers.push_back(std::move(layer));
  }
}

KerasFile open_keras_file(const std::string& path) {
  KerasFile k;
  k.path = path;
  k.file = h5::open_file_for_reading(path);
  if (is_keras3_layout(k.file.get())) {
    k.format = KerasFormat::keras3_weights_h5;
    k.root_name = "/";
    k.root = Hdf5Handle(H5Gopen2(k.file.get(), "/", H5P_DEFAULT), H5Gclose);
    SG_CHECK(k.root.valid(), path, ": cannot open the root group");
    const Hdf5Handle layers = h5::open_group(k.root.get(), "layers", path);
    read_keras3_layers(k, layers.get(), "layers");
    return k;
  }
  k.root_name = find_root(k.file.get());
  SG_CHECK(!k.root_name.empty(), path,
           ": not a Keras weight file (no layer_names attribute at the root or under /model_weights, as Keras 2's "
           ".h5 files have, and no 'layers' group, as Keras 3's .weights.h5 files have)");
  k.root = Hdf5Handle(H5Gopen2(k.file.get(), k.root_name.c_str(), H5P_DEFAULT), H5Gclose);
  SG_CHECK(k.root.valid(), path, ": cannot open group ", k.root_name);
  std::vector<std::string> names;
  if (h5::has_attribute(k.root.get(), "layer_names")) {
    names = read_string_list(k.root.get(), "layer_names", path);
  } else {  // split: layer_names0, layer_names1, ...
    for (int part = 0; h5::has_attribute(k.root.get(), "layer_names" + std::to_string(part)); ++part) {
      const std::vector<std::string> chunk = read_string_list(k.root.get(), "layer_names" + std::to_string(part), path);
      names.insert(names.end(), chunk.begin(), chunk.end());
    }
  }
  for (const std::string& name : names) {
    SG_CHECK(!name.empty() && h5::has_link(k.root.get(), name), path, ": layer '", name,
             "' is listed in layer_names but has no group under ", k.root_name);
    Hdf5Handle group(H5Gopen2(k.root.get(), name.c_str(), H5P_DEFAULT), H5Gclose);
    SG_CHECK(group.valid(), path, ": layer '", name, "': cannot open its group (truncated or damaged file?)");
    KerasLayer layer{name, {}, name};
    std::vector<std::string> weight_names;
    if (h5::has_attribute(group.get(), "weight_names")) {
      weight_names = read_string_list(group.get(), "weight_names", path + ": layer '" + name + "'");
    } else {
      int part = 0;
      for (; h5::has_attribute(group.get(), "weight_names" + std::to_string(part)); ++part) {
        const auto chunk = read_string_list(group.get(), "weight_names" + std::to_string(part), path);
        weight_names.insert(weight_names.end(), chunk.begin(), chunk.end());
      }
      SG_CHECK(part > 0, path, ": layer '", name, "' has no weight_names attribute");
    }
    for (const std::string& w : weight_names) layer.weights.push_back({w, leaf_of(w)});
    k.index[name] = k.layers.size();
    k.layers.push_back(std::move(layer));
  }
  return k;
}

Hdf5Handle open_dataset(const KerasFile& k, const std::string& layer, const KerasWeight& w) {
  const KerasLayer* l = k.layer(layer);
  const std::string path = (l ? l->group : layer) + "/" + w.path;
  Hdf5Handle dataset(H5Dopen2(k.root.get(), path.c_str(), H5P_DEFAULT), H5Dclose);
  SG_CHECK(dataset.valid(), k.path, ": layer '", layer, "': weight '", w.path, "' is listed but ",
           k.root_name == "/" ? "" : k.root_name, "/", path, " cannot be opened (missing, truncated or damaged file?)");
  return dataset;
}

std::vector<int64_t> dataset_dims(const KerasFile& k, const std::string& layer, const KerasWeight& w, hid_t dataset) {
  Hdf5Handle space(H5Dget_space(dataset), H5Sclose);
  const int rank = space.valid() ? H5Sget_simple_extent_ndims(space.get()) : -1;
  SG_CHECK(rank >= 0, k.path, ": layer '", layer, "': weight '", w.path, "': cannot read its shape");
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  if (rank > 0) H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  return std::vector<int64_t>(dims.begin(), dims.end());
}

// Reads a floating dataset as f32 (HDF5 converts f16/f64); any other type is an error.
FloatArray read_weight(const KerasFile& k, const std::string& layer, const KerasWeight& w) {
  const Hdf5Handle dataset = open_dataset(k, layer, w);
  Hdf5Handle type(H5Dget_type(dataset.get()), H5Tclose);
  SG_CHECK(type.valid(), k.path, ": layer '", layer, "': weight '", w.path, "': cannot read its type");
  const H5T_class_t type_class = H5Tget_class(type.get());
  if (type_class != H5T_FLOAT) {
    const char* kind = type_class == H5T_INTEGER ? "integer" : type_class == H5T_STRING ? "string" : "non-numeric";
    throw Error(detail::concat(k.path, ": layer '", layer, "': weight '", w.path, "' is stored as ", kind, " of ",
                               H5Tget_size(type.get()), " bytes; expected floating point (float32)"));
  }
  FloatArray out;
  out.shape = dataset_dims(k, layer, w, dataset.get());
  size_t count = 1;
  for (int64_t d : out.shape) count *= size_t(d);
  out.values.resize(count);
  SG_CHECK(H5Dread(dataset.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.values.data()) >= 0, k.path,
           ": layer '", layer, "': weight '", w.path, "': HDF5 cannot read the data (truncated or damaged file?)");
  return out;
}

// Permutations taking a Keras array to ours: ours.dims[i] = keras.dims[perm[i]].
const std::vector<int> kConvPerm{3, 0, 1, 2};       // (kh, kw, Cin, Cout) -> [Cout, kh, kw, Cin]
const std::vector<int> kDepthwisePerm{2, 0, 1, 3};  // (kh, kw, C, 1) -> [C, kh, kw, 1]
const std::vector<int> kDensePerm{1, 0};            // (in, out) -> [out, in]

// One tensor of our model and where it comes from in a Keras file.
struct Placement {
  std::string ours;
  Shape shape;           // ours
  std::string layer;     // Keras layer
  std::string leaf;      // Keras weight ("kernel")
  std::vector<int> perm;  // empty: same layout
  std::vector<int64_t> keras_shape() const {
    std::vector<int64_t> dims = shape.dims();
    if (perm.empty()) return dims;
    std::vector<int64_t> k(dims.size());
    for (size_t i = 0; i < perm.size(); ++i) k[size_t(perm[i])] = dims[i];
    return k;
  }
};

std::string bn_leaf(const std::string& ours) {
  if (ours == "weight") return "gamma";
  if (ours == "bias") return "beta";
  if (ours == "running_mean") return "moving_mean";
  if (ours == "running_var") return "moving_variance";
  return "";
}

// Our tensor name -> its Keras layer and weight; throws for names with no Keras counterpart.
Placement place(const std::string& name, const Shape& shape, const nn::EfficientNetLayout& layout,
                const std::string& classifier_layer) {
  Placement p{name, shape, "", "", {}};
  const size_t dot = name.rfind('.');
  const std::string module = name.substr(0, dot), leaf = name.substr(dot + 1);
  auto conv = [&](const std::string& layer) {
    p.layer = layer;
    p.leaf = leaf == "weight" ? "kernel" : "bias";
    if (leaf == "weight") p.perm = kConvPerm;
  };
  auto bn = [&](const std::string& layer) {
    p.layer = layer;
    p.leaf = bn_leaf(leaf);
  };
  if (module == "conv_stem") conv("stem_conv");
  else if (module == "bn1") bn("stem_bn");
  else if (module == "conv_head") conv("top_conv");
  else if (module == "bn2") bn("top_bn");
  else if (module == "classifier") {
    p.layer = classifier_layer;
    p.leaf = leaf == "weight" ? "kernel" : "bias";
    if (leaf == "weight") p.perm = kDensePerm;
  } else if (module.rfind("blocks.", 0) == 0) {
    // blocks.{s}.{j}.<part>
    const size_t a = module.find('.', 7), b = module.find('.', a + 1);
    const int stage = std::stoi(module.substr(7, a - 7));
    const int j = std::stoi(module.substr(a + 1, b - a - 1));
    const std::string part = module.substr(b + 1);
    SG_CHECK(stage >= 0 && size_t(stage) < layout.stages.size() && j < 26, "keras import: no Keras name for ", name);
    const std::string prefix = "block" + std::to_string(stage + 1) + char('a' + j) + "_";
    const bool expands = layout.stages[size_t(stage)].expand_ratio != 1;
    const std::map<std::string, std::string> expanding{{"conv_pw", "expand_conv"}, {"bn1", "expand_bn"},
                                                       {"conv_dw", "dwconv"},      {"bn2", "bn"},
                                                       {"conv_pwl", "project_conv"}, {"bn3", "project_bn"}};
    const std::map<std::string, std::string> plain{
        {"conv_dw", "dwconv"}, {"bn1", "bn"}, {"conv_pw", "project_conv"}, {"bn2", "project_bn"}};
    if (part == "se.conv_reduce") conv(prefix + "se_reduce");
    else if (part == "se.conv_expand") conv(prefix + "se_expand");
    else {
      const auto& table = expands ? expanding : plain;
      const auto it = table.find(part);
      SG_CHECK(it != table.end(), "keras import: no Keras name for ", name);
      if (part.rfind("bn", 0) == 0) bn(prefix + it->second);
      else if (part == "conv_dw") {
        p.layer = prefix + it->second;
        p.leaf = "depthwise_kernel";
        p.perm = kDepthwisePerm;
      } else conv(prefix + it->second);
    }
  }
  SG_CHECK(!p.layer.empty() && !p.leaf.empty(), "keras import: no Keras name for ", name);
  return p;
}

// Keras array -> our layout.
std::vector<float> permute(const FloatArray& in, const std::vector<int>& perm) {
  if (perm.empty()) return in.values;
  const size_t rank = in.shape.size();
  std::vector<int64_t> in_strides(rank, 1), out_dims(rank);
  for (size_t i = rank - 1; i > 0; --i) in_strides[i - 1] = in_strides[i] * in.shape[i];
  for (size_t i = 0; i < rank; ++i) out_dims[i] = in.shape[size_t(perm[i])];
  std::vector<float> out(in.values.size());
  std::vector<int64_t> index(rank, 0);  // over out
  for (size_t o = 0; o < out.size(); ++o) {
    int64_t source = 0;
    for (size_t i = 0; i < rank; ++i) source += index[i] * in_strides[size_t(perm[i])];
    out[o] = in.values[size_t(source)];
    for (size_t i = rank; i-- > 0;) {
      if (++index[i] < out_dims[i]) break;
      index[i] = 0;
    }
  }
  return out;
}

// "block3b_dwconv" -> "block3b"; "" for other layers.
std::string block_of(const std::string& layer) {
  if (layer.rfind("block", 0) != 0) return "";
  size_t i = 5;
  while (i < layer.size() && std::isdigit(static_cast<unsigned char>(layer[i]))) ++i;
  if (i == 5 || i >= layer.size() || !std::islower(static_cast<unsigned char>(layer[i]))) return "";
  return layer.substr(0, i + 1);
}

std::string find_classifier(const KerasFile& k) {
  for (const char* name : {"predictions", "probs"}) {
    const KerasLayer* l = k.layer(name);
    if (l && !l->weights.empty()) return name;
  }
  return "";
}

// The layers an EfficientNet's own tensors go to: stem_conv, stem_bn, block{stage}{a,b,..}_*,
// top_conv, top_bn. (The classifier's width follows the file, the normalization layer holds
// inputs, and other weighted layers are reported as unplaced by the import.)
bool is_efficientnet_layer(const std::string& layer) {
  return !block_of(layer).empty() || layer == "stem_conv" || layer == "stem_bn" || layer == "top_conv" ||
         layer == "top_bn";
}

// (layer, weight leaf) -> Keras dims, for every weight of the file's EfficientNet layers: read once,
// compared against each candidate arch.
using WeightDims = std::map<std::pair<std::string, std::string>, std::vector<int64_t>>;

WeightDims efficientnet_weight_dims(const KerasFile& k) {
  WeightDims dims;
  for (const KerasLayer& l : k.layers) {
    if (!is_efficientnet_layer(l.name)) continue;
    for (const KerasWeight& w : l.weights) {
      const Hdf5Handle dataset = open_dataset(k, l.name, w);
      dims[{l.name, w.leaf}] = dataset_dims(k, l.name, w, dataset.get());
    }
  }
  return dims;
}

// How one arch's tensors (classifier aside) fit the file's EfficientNet weights.
struct ArchFit {
  std::string arch;
  size_t expected = 0, matching = 0;
  size_t unused = 0;           // file weights of EfficientNet layers the arch has no tensor for
  std::string first_mismatch;  // the first tensor (model order) that does not fit, else the first unused weight
  bool exact() const { return matching == expected && unused == 0; }
  size_t distance() const { return expected - matching + unused; }
};

// Compares every tensor by name and shape: two archs with the same stem width and block count
// (B1 and B2) differ in later layers' widths, which a stem-and-count test cannot see.
ArchFit fit_arch(const KerasFile& k, const WeightDims& file, const std::string& arch) {
  const nn::EfficientNetConfig config = nn::efficientnet_config(arch);
  const nn::EfficientNetLayout layout = nn::efficientnet_layout(config);
  const std::string model_name = "efficientnet-" + arch;
  ArchFit fit;
  fit.arch = arch;
  std::set<std::pair<std::string, std::string>> used;
  for (const nn::TensorShapeEntry& e : nn::efficientnet_tensor_shapes(config)) {
    if (e.name.rfind("classifier.", 0) == 0) continue;
    const Placement p = place(e.name, e.shape, layout, "");
    ++fit.expected;
    const auto it = file.find({p.layer, p.leaf});
    std::string mismatch;
    if (it == file.end()) {
      const KerasLayer* layer = k.layer(p.layer);
      mismatch = layer && !layer->weights.empty()
                     ? detail::concat("layer '", p.layer, "' has no weight '", p.leaf, "'; ", model_name,
                                      " needs it for ", e.name)
                     : detail::concat("layer '", p.layer, "' is missing; ", model_name, " needs it for ", e.name);
    } else if (it->second != p.keras_shape()) {
      mismatch = detail::concat("layer '", p.layer, "': ", p.leaf, " has shape ", join_dims(it->second), "; ",
                                model_name, " expects ", join_dims(p.keras_shape()), " (", e.name, " ", e.shape.str(),
                                ")");
    } else {
      ++fit.matching;
      used.insert(it->first);
    }
    if (fit.first_mismatch.empty()) fit.first_mismatch = mismatch;
  }
  for (const auto& [key, dims] : file) {
    if (used.count(key)) continue;
    ++fit.unused;
    if (fit.first_mismatch.empty())
      fit.first_mismatch = detail::concat("layer '", key.first, "': weight '", key.second, "' ", join_dims(dims),
                                          " has no place in ", model_name);
  }
  return fit;
}

// The arch whose every tensor matches the file's layers by name and shape, among all of
// nn::efficientnet_arch_names() (B0-B7 and Lite0-4, the one table of nn/efficientnet.cpp); else
// why not: the closest arch and its first mismatch.
struct ArchInference {
  std::string arch;     // empty when no arch (or more than one) matches exactly
  std::string closest;  // the arch with the fewest mismatching tensors, when none matches
  std::string problem;  // why `arch` is empty
};

ArchInference infer_arch_from_shapes(const KerasFile& k) {
  ArchInference r;
  const WeightDims file = efficientnet_weight_dims(k);
  if (file.empty()) {
    r.problem = detail::concat(k.path, ": no EfficientNet layers with weights (stem_conv, block1a_..., top_conv); ",
                               "cannot infer the arch");
    return r;
  }
  std::vector<ArchFit> fits;
  std::vector<std::string> exact;
  std::string names;
  for (const std::string& arch : nn::efficientnet_arch_names()) {
    fits.push_back(fit_arch(k, file, arch));
    names += (names.empty() ? "" : ", ") + arch;
    if (fits.back().exact()) exact.push_back(arch);
  }
  if (exact.size() == 1) {
    r.arch = exact.front();
    return r;
  }
  if (exact.size() > 1) {
    std::string matching;
    for (const std::string& arch : exact) matching += (matching.empty() ? "" : ", ") + arch;
    r.problem = detail::concat(k.path, ": every layer's shape matches more than one EfficientNet (", matching,
                               "): the arch table (nn/efficientnet.cpp) holds two archs of the same shapes; give --arch");
    return r;
  }
  const ArchFit& c = *std::min_element(fits.begin(), fits.end(), [](const ArchFit& a, const ArchFit& b) {
    return a.distance() < b.distance();  // the first of equals: table order
  });
  r.closest = c.arch;
  r.problem = detail::concat(k.path, ": the layer shapes match no EfficientNet (", names, "); closest: efficientnet-",
                             c.arch, " (", c.matching, " of its ", c.expected, " tensors match",
                             c.unused ? detail::concat(", ", c.unused, " of the file's weights have no place in it") : "",
                             "), first mismatch: ", c.first_mismatch);
  return r;
}

std::string infer_arch(const KerasFile& k) {
  const ArchInference inference = infer_arch_from_shapes(k);
  SG_CHECK(!inference.arch.empty(), inference.problem, inference.closest.empty() ? "" : "; give --arch to force one");
  return inference.arch;
}

struct Converted {
  KerasImport result;
  std::vector<std::string> unplaced;
};

// The whole conversion: throws on the first problem; the weights it cannot place are returned.
Converted convert(const KerasFile& k, const KerasImportOptions& options) {
  Converted c;
  KerasImport& r = c.result;
  r.root = k.root_name;
  r.format = k.format;
  r.layer_count = k.layers.size();
  for (const KerasLayer& l : k.layers) r.weighted_layer_count += l.weights.empty() ? 0 : 1;
  r.classifier_layer = find_classifier(k);
  const std::string arch = options.arch.empty() ? infer_arch(k) : options.arch;

  nn::EfficientNetConfig config = nn::efficientnet_config(arch);
  // Keras applications (and the pip efficientnet package) hold B0-B7 only: a file of Keras names
  // in Lite's shapes follows no known convention for the activation or the input scaling.
  SG_CHECK(!config.lite, k.path, options.arch.empty() ? ": the layer shapes are efficientnet-" : ": --arch ", arch,
           options.arch.empty() ? "'s" : "",
           ": Keras files hold EfficientNet B0-B7, not Lite (convert Lite checkpoints from PyTorch: "
           "weights/convert_torch.py)");
  config.padding = Padding::tf_same;
  config.bn_eps = 1e-3;
  config.bn_momentum = 0.01;
  if (!r.classifier_layer.empty()) {
    const KerasWeight* bias = k.weight(r.classifier_layer, "bias");
    SG_CHECK(bias, k.path, ": layer '", r.classifier_layer, "': no bias weight");
    const Hdf5Handle dataset = open_dataset(k, r.classifier_layer, *bias);
    const std::vector<int64_t> dims = dataset_dims(k, r.classifier_layer, *bias, dataset.get());
    SG_CHECK(dims.size() == 1 && dims[0] >= 1, k.path, ": layer '", r.classifier_layer, "': bias has shape ",
             join_dims(dims), "; expected (outputs,)");
    config.outputs = dims[0];
  }
  // Input normalisation: the in-graph layer's mean and "variance" (which holds std), else ImageNet's.
  for (const KerasLayer& l : k.layers) {
    if (!is_normalization(l.name) || l.weights.empty()) continue;
    r.has_normalization = true;
    for (const char* leaf : {"mean", "variance"}) {
      const KerasWeight* w = k.weight(l.name, leaf);
      SG_CHECK(w, k.path, ": layer '", l.name, "': no ", leaf, " weight");
      const FloatArray values = read_weight(k, l.name, *w);
      SG_CHECK(values.values.size() == 3, k.path, ": layer '", l.name, "': ", leaf, " has shape ",
               join_dims(values.shape), "; expected 3 values (RGB)");
      std::array<float, 3>& target = std::string(leaf) == "mean" ? config.mean : config.std;
      std::copy(values.values.begin(), values.values.end(), target.begin());
    }
    for (float s : config.std)
      SG_CHECK(s > 0, k.path, ": layer '", l.name, "': variance (std) values must be positive");
    break;
  }

  // Every tensor of the model built from the config, in the model's order.
  nn::EfficientNet model(config);
  const std::vector<NamedTensor> expected = named_tensors(model.parameters(), model.buffers());
  std::set<std::pair<std::string, std::string>> placed;
  const std::string model_name = "efficientnet-" + arch;
  for (const NamedTensor& e : expected) {
    if (r.classifier_layer.empty() && e.name.rfind("classifier.", 0) == 0) continue;  // notop
    const Placement p = place(e.name, e.tensor.shape(), model.layout(), r.classifier_layer);
    const KerasLayer* layer = k.layer(p.layer);
    SG_CHECK(layer && !layer->weights.empty(), k.path, ": layer '", p.layer, "' is missing; ", model_name,
             " needs it for ", e.name);
    const KerasWeight* w = k.weight(p.layer, p.leaf);
    SG_CHECK(w, k.path, ": layer '", p.layer, "' has no weight '", p.leaf, "'; ", model_name, " needs it for ",
             e.name);
    const FloatArray values = read_weight(k, p.layer, *w);
    SG_CHECK(values.shape == p.keras_shape(), k.path, ": layer '", p.layer, "': ", p.leaf, " has shape ",
             join_dims(values.shape), "; ", model_name, " expects ", join_dims(p.keras_shape()), " (", e.name, " ",
             e.tensor.shape().str(), ")");
    SG_CHECK(e.tensor.dtype() == DType::f32, "keras import: ", e.name, " is not f32 in the model");
    r.tensors.push_back({e.name, Tensor::from_floats(permute(values, p.perm), e.tensor.shape())});
    placed.insert({p.layer, p.leaf});
  }
  for (const KerasLayer& l : k.layers) {
    if (is_normalization(l.name)) continue;
    for (const KerasWeight& w : l.weights)
      if (!placed.count({l.name, w.leaf})) c.unplaced.push_back(l.name + "/" + w.path);
  }
  r.config = config;
  return c;
}

// The first 12 items, then how many more.
std::string list(const std::vector<std::string>& items) {
  std::string s;
  for (size_t i = 0; i < items.size() && i < 12; ++i) s += (s.empty() ? "" : ", ") + items[i];
  if (items.size() > 12) s += detail::concat(" and ", items.size() - 12, " more");
  return s;
}

}  // namespace

bool is_keras_file(const std::string& path) {
  h5::silence_errors();
  std::error_code error;
  // Files with our checksum header are ours (slidegrade weights or checkpoints), never Keras's.
  if (!std::filesystem::is_regular_file(path, error) || h5::has_checksum_header(path)) return false;
  Hdf5Handle file;
  try {
    file = h5::open_file_for_reading(path);
  } catch (const Error&) {
    return false;
  }
  return !find_root(file.get()).empty() || is_keras3_layout(file.get());
}

const char* format_name(KerasFormat format) {
  return format == KerasFormat::keras3_weights_h5 ? "Keras 3 .weights.h5" : "Keras legacy HDF5";
}

KerasImport read_keras_weights(const std::string& path, const KerasImportOptions& options) {
  const KerasFile k = open_keras_file(path);
  Converted c = convert(k, options);
  SG_CHECK(c.unplaced.empty(), path, ": ", c.unplaced.size(), " Keras weight(s) match no tensor of efficientnet-",
           c.result.config.arch, ", first in layer '", c.unplaced.front().substr(0, c.unplaced.front().find('/')),
           "': ", list(c.unplaced));
  return std::move(c.result);
}

std::string infer_keras_arch(const std::string& path) { return infer_arch(open_keras_file(path)); }

KerasImport import_keras_weights(const std::string& in, const std::string& out, const KerasImportOptions& options) {
  KerasImport r = read_keras_weights(in, options);
  WeightAttributes attributes;
  attributes.arch_config = nn::config_text(r.config);
  attributes.user["source"] = r.format == KerasFormat::keras3_weights_h5 ? "keras3" : "keras";
  attributes.user["source_file"] = std::filesystem::path(in).filename().string();
  attributes.user["include_top"] = r.classifier_layer.empty() ? "0" : "1";
  save_weights(out, r.tensors, attributes);
  return r;
}

KerasInspection inspect_keras_file(const std::string& path) {
  const KerasFile k = open_keras_file(path);
  KerasInspection i;
  i.root = k.root_name;
  i.format = k.format;
  i.layer_count = k.layers.size();
  for (const KerasLayer& l : k.layers) {
    i.weighted_layer_count += l.weights.empty() ? 0 : 1;
    if (is_normalization(l.name) && !l.weights.empty()) i.has_normalization = true;
  }
  i.classifier_layer = find_classifier(k);
  try {
    const ArchInference inference = infer_arch_from_shapes(k);
    i.arch = inference.arch;
    i.closest_arch = inference.closest;
    SG_CHECK(!i.arch.empty(), inference.problem);
    Converted c = convert(k, {i.arch});
    i.unplaced = std::move(c.unplaced);
  } catch (const Error& e) {
    i.problems.push_back(e.what());
  }
  return i;
}

}  // namespace sg::keras
