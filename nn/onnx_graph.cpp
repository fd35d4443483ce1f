#include "nn/onnx_graph.h"

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <cstring>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/half.h"

namespace sg::nn {

namespace {
// ONNX's IR version 8 goes with opsets up to 17 (ONNX 1.12); ONNX Runtime reads it.
constexpr int64_t kIrVersion = 8;

int32_t onnx_type(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return onnx::TensorProto::FLOAT;
    case DType::f16:
      return onnx::TensorProto::FLOAT16;
    default:
      break;
  }
  throw Error(detail::concat("ONNX export: compute type ", dtype_name(dtype), " is not supported (f32 or f16)"));
}

int64_t element_count(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (const int64_t d : dims) n *= d;
  return n;
}

void set_dims(onnx::ValueInfoProto& info, int32_t elem_type, const std::vector<int64_t>& dims,
              const std::vector<std::string>& symbolic) {
  onnx::TypeProto_Tensor* tensor = info.mutable_type()->mutable_tensor_type();
  tensor->set_elem_type(elem_type);
  onnx::TensorShapeProto* shape = tensor->mutable_shape();
  size_t next_symbol = 0;
  for (const int64_t d : dims) {
    onnx::TensorShapeProto_Dimension* dim = shape->add_dim();
    if (d >= 0) {
      dim->set_dim_value(d);
    } else {
      SG_CHECK(next_symbol < symbolic.size(), "ONNX export: ", info.name(), " has more symbolic dimensions than names");
      dim->set_dim_param(symbolic[next_symbol++]);
    }
  }
}
}  // namespace

OnnxGraph::OnnxGraph(std::string graph_name, DType compute, int64_t opset)
    : model_(std::make_unique<onnx::ModelProto>()), compute_(compute), opset_(opset) {
  SG_CHECK(opset >= kOnnxOldestOpset && opset <= kOnnxNewestOpset, "ONNX export: opset ", opset, " is not supported (",
           kOnnxOldestOpset, " to ", kOnnxNewestOpset, ")");
  onnx_type(compute);  // checks it
  model_->set_ir_version(kIrVersion);
  model_->set_producer_name("slidegrade");
  model_->set_producer_version(SLIDEGRADE_VERSION);
  onnx::OperatorSetIdProto* opset_id = model_->add_opset_import();
  opset_id->set_domain("");
  opset_id->set_version(opset);
  model_->mutable_graph()->set_name(std::move(graph_name));
}

OnnxGraph::~OnnxGraph() = default;

std::string OnnxGraph::unique(const std::string& hint) {
  std::string name = hint;
  for (int suffix = 1; !used_names_.insert(name).second; ++suffix) name = detail::concat(hint, "_", suffix);
  return name;
}

std::string OnnxGraph::node(const std::string& op, const std::vector<std::string>& inputs,
                            const std::string& output_hint, std::vector<OnnxAttribute> attributes) {
  checked_ = false;
  const std::string output = unique(output_hint);
  onnx::NodeProto* n = model_->mutable_graph()->add_node();
  n->set_op_type(op);
  n->set_name(output);
  for (const std::string& input : inputs) n->add_input(input);
  n->add_output(output);
  for (OnnxAttribute& a : attributes) {
    onnx::AttributeProto* attribute = n->add_attribute();
    attribute->set_name(a.name);
    if (const auto* i = std::get_if<int64_t>(&a.value)) {
      attribute->set_type(onnx::AttributeProto::INT);
      attribute->set_i(*i);
    } else if (const auto* f = std::get_if<float>(&a.value)) {
      attribute->set_type(onnx::AttributeProto::FLOAT);
      attribute->set_f(*f);
    } else if (const auto* ints = std::get_if<std::vector<int64_t>>(&a.value)) {
      attribute->set_type(onnx::AttributeProto::INTS);
      for (const int64_t v : *ints) attribute->add_ints(v);
    } else {
      attribute->set_type(onnx::AttributeProto::STRING);
      attribute->set_s(std::get<std::string>(a.value));
    }
  }
  return output;
}

std::string OnnxGraph::weight(const std::string& name, const Tensor& value, const std::vector<int64_t>& dims) {
  SG_CHECK(value.defined(), "ONNX export: ", name, " has no value");
  return weight(name, value.to_floats(), dims);
}

std::string OnnxGraph::weight(const std::string& name, const std::vector<float>& values,
                              const std::vector<int64_t>& dims) {
  return constant(name, values, dims);
}

std::string OnnxGraph::constant(const std::string& name, const std::vector<float>& values,
                                const std::vector<int64_t>& dims) {
  SG_CHECK(int64_t(values.size()) == element_count(dims), "ONNX export: ", name, " has ", values.size(), " values for ",
           element_count(dims), " elements");
  checked_ = false;
  onnx::TensorProto* t = model_->mutable_graph()->add_initializer();
  t->set_name(unique(name));
  t->set_data_type(onnx_type(compute_));
  for (const int64_t d : dims) t->add_dims(d);
  // Raw little-endian bytes: ONNX's compact form (float_data / int32_data would widen f16 to 4 bytes).
  std::string bytes;
  if (compute_ == DType::f32) {
    bytes.resize(values.size() * sizeof(float));
    std::memcpy(bytes.data(), values.data(), bytes.size());
  } else {
    bytes.resize(values.size() * sizeof(uint16_t));
    for (size_t i = 0; i < values.size(); ++i) {
      const uint16_t h = float_to_half_bits(values[i]);
      std::memcpy(bytes.data() + i * sizeof h, &h, sizeof h);
    }
  }
  t->set_raw_data(std::move(bytes));
  return t->name();
}

std::string OnnxGraph::activation(math::Activation kind, const std::string& x, const std::string& output_hint) {
  switch (kind) {
    case math::Activation::identity:
      return x;
    case math::Activation::relu:
      return node("Relu", {x}, output_hint);
    case math::Activation::relu6: {
      const std::string low = constant(output_hint + ".clip_min", {0.0f}, {});
      const std::string high = constant(output_hint + ".clip_max", {6.0f}, {});
      return node("Clip", {x, low, high}, output_hint);
    }
    case math::Activation::sigmoid:
      return node("Sigmoid", {x}, output_hint);
    case math::Activation::swish:
      return node("Mul", {x, node("Sigmoid", {x}, output_hint + ".sigmoid")}, output_hint);
    case math::Activation::mish: {
      const std::string soft = node("Softplus", {x}, output_hint + ".softplus");
      return node("Mul", {x, node("Tanh", {soft}, output_hint + ".tanh")}, output_hint);
    }
  }
  throw Error(detail::concat("ONNX export: unknown activation ", int(kind)));
}

void OnnxGraph::input(const std::string& name, const std::vector<int64_t>& dims,
                      const std::vector<std::string>& symbolic) {
  checked_ = false;
  onnx::ValueInfoProto* info = model_->mutable_graph()->add_input();
  info->set_name(unique(name));
  SG_CHECK(info->name() == name, "ONNX export: the input name ", name, " is taken");
  set_dims(*info, onnx::TensorProto::FLOAT, dims, symbolic);
}

void OnnxGraph::output(const std::string& name, const std::vector<int64_t>& dims,
                       const std::vector<std::string>& symbolic) {
  checked_ = false;
  onnx::ValueInfoProto* info = model_->mutable_graph()->add_output();
  info->set_name(name);
  set_dims(*info, onnx::TensorProto::FLOAT, dims, symbolic);
}

void OnnxGraph::metadata(const std::string& key, const std::string& value) {
  checked_ = false;
  onnx::StringStringEntryProto* entry = model_->add_metadata_props();
  entry->set_key(key);
  entry->set_value(value);
}

const onnx::ModelProto& OnnxGraph::model() {
  if (!checked_) {
    try {
      onnx::checker::check_model(*model_);
      // ONNX's shape inference over the whole graph, strict and with type checks, so a dimension or
      // type that does not fit fails here, not in whoever loads the file. It records what it infers
      // as the graph's value_info, which runtimes and viewers read too.
      onnx::shape_inference::InferShapes(*model_, onnx::OpSchemaRegistry::Instance(),
                                         onnx::ShapeInferenceOptions(/*check_type=*/true, /*strict=*/1));
    } catch (const std::exception& e) {
      throw Error(detail::concat("ONNX export: the ONNX checker refused the graph: ", e.what()));
    }
    checked_ = true;
  }
  return *model_;
}

void OnnxGraph::save(const std::string& path) {
  std::string bytes;
  SG_CHECK(model().SerializeToString(&bytes), path, ": the ONNX model could not be serialised (over 2 GiB?)");
  write_file_atomically(path, bytes);
}

size_t OnnxGraph::byte_size() const { return model_->ByteSizeLong(); }
int64_t OnnxGraph::node_count() const { return model_->graph().node_size(); }
int64_t OnnxGraph::initializer_count() const { return model_->graph().initializer_size(); }

}  // namespace sg::nn
