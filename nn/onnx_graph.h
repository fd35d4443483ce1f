#pragma once
// The ONNX graph a module tree writes itself into (Module::export_onnx). Each module appends its
// nodes and initializers here and hands back the name of its output; nothing else describes the
// network a second time. Behind it is ONNX's own protobuf schema (onnx::ModelProto, from the onnx
// library), kept out of this header so the modules compile without protobuf.
//
// Conventions inside the graph: activations are NCHW (ONNX's Conv layout) in the graph's compute
// type (f32, or f16 for a half-precision export); weights are stored in that type too.
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_set>
#include <variant>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"
#include "kernels/scalar_math.h"

namespace onnx {
class ModelProto;
}

namespace sg::nn {

struct OnnxAttribute {
  std::string name;
  std::variant<int64_t, float, std::vector<int64_t>, std::string> value;
};

class OnnxGraph {
 public:
  // compute: f32 or f16 (the dtype of activations and weights inside the graph).
  OnnxGraph(std::string graph_name, DType compute, int64_t opset);
  ~OnnxGraph();
  OnnxGraph(const OnnxGraph&) = delete;
  OnnxGraph& operator=(const OnnxGraph&) = delete;

  DType compute() const { return compute_; }
  int64_t opset() const { return opset_; }

  // Appends a node `op` reading `inputs`; its one output is named `output_hint` (made unique) and
  // returned. `output_hint` should name what the value is in the network ("blocks.1.0.bn1").
  std::string node(const std::string& op, const std::vector<std::string>& inputs, const std::string& output_hint,
                   std::vector<OnnxAttribute> attributes = {});

  // A weight: `value` (any device, any floating dtype) stored under `name` in the compute dtype,
  // with `dims` (the element count must match). Returns the initializer's name.
  std::string weight(const std::string& name, const Tensor& value, const std::vector<int64_t>& dims);
  // The same from host floats (weights the exporter rearranged, e.g. OHWI -> OIHW).
  std::string weight(const std::string& name, const std::vector<float>& values, const std::vector<int64_t>& dims);
  // A constant in the compute dtype (scalar when dims is empty).
  std::string constant(const std::string& name, const std::vector<float>& values, const std::vector<int64_t>& dims);

  // y = act(x) as ONNX nodes (identity returns x itself). Swish is x * Sigmoid(x), ReLU6 Clip(0, 6),
  // Mish x * Tanh(Softplus(x)) (below opset 18, which first has Mish).
  std::string activation(math::Activation kind, const std::string& x, const std::string& output_hint);

  // Graph inputs and outputs: float32 tensors with the given dims (-1: a symbolic dimension named by
  // `symbolic`, e.g. "batch").
  void input(const std::string& name, const std::vector<int64_t>& dims, const std::vector<std::string>& symbolic);
  void output(const std::string& name, const std::vector<int64_t>& dims, const std::vector<std::string>& symbolic);

  // Metadata (model card, normalisation, ...) as ONNX metadata_props.
  void metadata(const std::string& key, const std::string& value);

  // The finished model (ir_version, opset, producer), checked by ONNX's checker with full shape
  // inference (throws sg::Error with the checker's message). The graph stays usable.
  const onnx::ModelProto& model();
  // Writes model() to `path` atomically (throws sg::Error naming the file).
  void save(const std::string& path);
  // The serialised model's size so far in bytes; the nodes and initializers so far.
  size_t byte_size() const;
  int64_t node_count() const;
  int64_t initializer_count() const;

 private:
  std::string unique(const std::string& hint);
  std::unique_ptr<onnx::ModelProto> model_;
  DType compute_;
  int64_t opset_;
  std::unordered_set<std::string> used_names_;
  bool checked_ = false;
};

// Opsets the exporter writes: 13 (every op at its current form: Clip, Squeeze take inputs) to 17
// (the newest the bundled ONNX checker knows).
inline constexpr int64_t kOnnxOldestOpset = 13;
inline constexpr int64_t kOnnxNewestOpset = 17;

}  // namespace sg::nn
