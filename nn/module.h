#pragma once
// The module interface: explicit forward and backward over NHWC tensors, no autograd tape.
//
// forward(ctx, x) returns y and, when ctx.keep_for_backward(), saves in ctx what backward needs.
// backward(ctx, dy) returns dx and ADDS the parameter gradients into Parameter::grad.
// Every module has a full hierarchical name ("blocks.3.1.conv_dw"); its parameters are named
// "<name>.<leaf>" (timm's names, so importers map them directly).
#include <cstdint>
#include <string>
#include <vector>

#include "core/shape.h"
#include "core/tensor.h"
#include "nn/context.h"
#include "nn/parameter.h"

namespace sg::nn {

class OnnxGraph;  // nn/onnx_graph.h

// One row of a model summary: a leaf layer, its output shape, parameter count and MACs.
struct LayerInfo {
  std::string name;
  std::string kind;  // "Conv2d 3x3/2", "BatchNorm2d+swish", ...
  Shape output;
  int64_t parameters = 0;
  int64_t macs = 0;  // multiply-accumulates of convolutions and linear layers; FLOPs = 2 * MACs
};

class Module {
 public:
  explicit Module(std::string name) : name_(std::move(name)) {}
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  virtual Tensor forward(Context& ctx, const Tensor& x) = 0;
  virtual Tensor backward(Context& ctx, const Tensor& dy) = 0;

  // The output shape for an input shape, checked (throws naming the module), appending one
  // LayerInfo per leaf layer when `layers` is not null. Runs nothing.
  virtual Shape describe(const Shape& input, std::vector<LayerInfo>* layers) const = 0;

  // Appends this module's eval-mode computation to `graph` (nn/onnx_graph.h), reading the graph
  // value `x` (NCHW) and returning the name of its output: the ONNX export is written by the module
  // tree itself. Its weights become initializers under the parameters' names.
  virtual std::string export_onnx(OnnxGraph& graph, const std::string& x) const = 0;

  const std::string& name() const { return name_; }
  // Every parameter / buffer of this module and its children, in a fixed order.
  std::vector<Parameter*> parameters();
  std::vector<Buffer*> buffers();
  int64_t parameter_count();

  // Training mode: batch statistics in BN, dropout and drop-connect active.
  void set_training(bool training);
  bool training() const { return training_; }

  // Zeroes every Parameter::grad (between optimizer steps).
  void zero_grad(const Stream& stream = {});

 protected:
  // Direct children, in order; leaf modules return nothing.
  virtual std::vector<Module*> children() { return {}; }
  // This module's own parameters and buffers (not its children's).
  virtual void own_state(std::vector<Parameter*>& /*params*/, std::vector<Buffer*>& /*buffers*/) {}
  // "<name>.<leaf>", or just leaf for an unnamed root.
  std::string child_name(const std::string& leaf) const { return name_.empty() ? leaf : name_ + "." + leaf; }

  // Throws unless x is a rank-4 NHWC tensor with `channels` channels.
  void check_input(const Shape& x, int64_t channels) const;

 private:
  void collect(std::vector<Parameter*>& params, std::vector<Buffer*>& buffers);
  std::string name_;
  bool training_ = false;
};

// A parameter with its gradient (zeros) on `device`, f32.
Parameter make_parameter(std::string name, Tensor value, bool is_bias_or_norm);

}  // namespace sg::nn
