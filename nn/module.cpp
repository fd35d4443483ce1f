#include "nn/module.h"

#include "core/error.h"

namespace sg::nn {

void Module::collect(std::vector<Parameter*>& params, std::vector<Buffer*>& buffers) {
  own_state(params, buffers);
  for (Module* child : children()) child->collect(params, buffers);
}

std::vector<Parameter*> Module::parameters() {
  std::vector<Parameter*> params;
  std::vector<Buffer*> buffers;
  collect(params, buffers);
  return params;
}

std::vector<Buffer*> Module::buffers() {
  std::vector<Parameter*> params;
  std::vector<Buffer*> buffers;
  collect(params, buffers);
  return buffers;
}

int64_t Module::parameter_count() {
  int64_t total = 0;
  for (const Parameter* p : parameters()) total += p->value.numel();
  return total;
}

void Module::set_training(bool training) {
  training_ = training;
  for (Module* child : children()) child->set_training(training);
}

void Module::zero_grad(const Stream& stream) {
  for (Parameter* p : parameters()) p->grad.zero_(stream);
}

void Module::check_input(const Shape& x, int64_t channels) const {
  SG_CHECK(x.rank() == 4 && x[3] == channels, "'", name_, "': input ", x.str(), " should be [N, H, W, ", channels,
           "] (NHWC)");
}

Parameter make_parameter(std::string name, Tensor value, bool is_bias_or_norm) {
  SG_CHECK(value.dtype() == DType::f32, "parameter '", name, "' must be f32 (master weights), got ", value.str());
  Parameter p;
  p.name = std::move(name);
  p.grad = Tensor::zeros(value.shape(), DType::f32, value.device());
  p.value = std::move(value);
  p.is_bias_or_norm = is_bias_or_norm;
  return p;
}

}  // namespace sg::nn
