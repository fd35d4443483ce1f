#include "kernels/cpu/bias_activation.h"

#include <algorithm>
#include <vector>

#include "kernels/cpu/float_convert.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/rows.h"

namespace sg::cpu {

// One copy of the loops per ISA: kernels/cpu/isa.h.
#define SG_CPU_ISA_LOOPS "kernels/cpu/bias_activation_loops.inc"
#include "kernels/cpu/isa_variants.inc"

void bias_activation_forward(math::Activation act, DType dtype, const void* x, const float* bias, void* y, int64_t M,
                             int64_t C) {
  SG_CPU_ISA_DISPATCH(bias_activation_forward, act, dtype, x, bias, y, M, C);
}

void bias_activation_backward(math::Activation act, DType dtype, const void* x, const float* bias, const void* dy,
                              void* dx, float* dbias, int64_t M, int64_t C) {
  SG_CPU_ISA_DISPATCH(bias_activation_backward, act, dtype, x, bias, dy, dx, dbias, M, C);
}

}  // namespace sg::cpu
