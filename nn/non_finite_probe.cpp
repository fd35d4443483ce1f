#include "nn/non_finite_probe.h"

#include "nn/precision.h"

namespace sg::nn {

void NonFiniteProbe::check(const std::string& layer, const Tensor& y, const Stream& stream, std::string_view what) {
  if (found_ || !y.defined()) return;
  ++checked_;
  if (has_non_finite(y, stream)) {
    found_ = true;
    first_layer_ = layer;
    first_what_ = std::string(what);
  }
}

}  // namespace sg::nn
