#include "nn/precision.h"

#include <algorithm>
#include <array>

#include "kernels/cast.h"
#include "kernels/optimizer.h"
#include "kernels/tensor_ops.h"

namespace sg::nn {

DType parse_precision(std::string_view name) { return parse_word(kPrecisionWords, name); }

const Tensor& compute_weight(Parameter& p, const Tensor& x, const std::string& module, const Stream& stream) {
  SG_CHECK(p.value.defined() && p.value.dtype() == DType::f32, "'", module, "': parameter '", p.name, "' is ",
           p.value.defined() ? p.value.str() : std::string("undefined"), ", expected f32 master weights");
  SG_CHECK(is_floating(x.dtype()), "'", module, "': input ", x.str(), " must be f32, f16 or bf16");
  SG_CHECK(x.device() == p.value.device(), "'", module, "': input on ", x.device().str(), " but weights on ",
           p.value.device().str());
  if (x.dtype() == DType::f32) return p.value;
  Parameter::ComputeCopy& c = p.compute;
  const bool fresh = c.value.defined() && c.value.dtype() == x.dtype() && c.value.device() == p.value.device() &&
                     c.value.shape() == p.value.shape() && c.version == p.version && c.master == p.value.data();
  if (!fresh) {
    if (!c.value.defined() || c.value.dtype() != x.dtype() || c.value.device() != p.value.device() ||
        c.value.shape() != p.value.shape())
      c.value = Tensor::empty(p.value.shape(), x.dtype(), p.value.device(), "compute weight");
    cast(p.value, c.value, stream);
    c.version = p.version;
    c.master = p.value.data();
  }
  return c.value;
}

void accumulate_grad(Parameter& p, const Tensor& g, const Stream& stream) {
  SG_CHECK(g.defined() && g.numel() == p.grad.numel(), "gradient of '", p.name, "' is ",
           g.defined() ? g.str() : std::string("undefined"), ", expected ", p.grad.numel(), " elements (",
           p.grad.str(), ")");
  if (g.dtype() == DType::f32) {
    add_(p.grad, g.reshape(p.grad.shape()), stream);
    return;
  }
  Tensor g32 = Tensor::empty({g.numel()}, DType::f32, p.grad.device(), "f32 gradient");
  cast(g.reshape(g32.shape()), g32, stream);
  add_(p.grad, g32.reshape(p.grad.shape()), stream);
}

void release_compute_copies(Module& module) {
  for (Parameter* p : module.parameters()) p->compute = Parameter::ComputeCopy{};
}

size_t compute_copy_bytes(Module& module) {
  size_t total = 0;
  for (Parameter* p : module.parameters())
    if (p->compute.value.defined()) total += p->compute.value.nbytes();
  return total;
}

void mark_parameters_changed(Module& module) {
  for (Parameter* p : module.parameters()) p->mark_changed();
}

bool has_non_finite(const Tensor& t, const Stream& stream) {
  SG_CHECK(t.defined() && is_floating(t.dtype()), "has_non_finite: ",
           t.defined() ? t.str() : std::string("undefined tensor"), " is not a floating tensor");
  Tensor alias = t;  // shares storage; a factor of 1 only reads it
  Tensor found = Tensor::zeros({1}, DType::f32, t.device(), stream);
  const std::array<Tensor*, 1> list{&alias};
  non_finite_check_and_unscale(list, found, 1.0f, stream);
  return found.to_floats(stream).at(0) != 0.0f;  // after the check, on its stream
}

}  // namespace sg::nn
