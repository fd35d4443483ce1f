#include "kernels/cpu/batch_norm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/float_convert.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/rows.h"

namespace sg::cpu {

// One copy of the loops per ISA: kernels/cpu/isa.h.
#define SG_CPU_ISA_LOOPS "kernels/cpu/batch_norm_loops.inc"
#include "kernels/cpu/isa_variants.inc"

void batch_norm_forward_train(DType dtype, const void* x, const float* gamma, const float* beta, float* running_mean,
                              float* running_var, void* y, float* saved_mean, float* saved_invstd, int64_t M,
                              int64_t C, double eps, double momentum, math::Activation act) {
  SG_CPU_ISA_DISPATCH(batch_norm_forward_train, dtype, x, gamma, beta, running_mean, running_var, y, saved_mean,
                      saved_invstd, M, C, eps, momentum, act);
}

void batch_norm_forward_eval(DType dtype, const void* x, const float* gamma, const float* beta,
                             const float* running_mean, const float* running_var, void* y, int64_t M, int64_t C,
                             double eps, math::Activation act) {
  SG_CPU_ISA_DISPATCH(batch_norm_forward_eval, dtype, x, gamma, beta, running_mean, running_var, y, M, C, eps, act);
}

void batch_norm_backward(DType dtype, const void* x, const void* dy, const float* gamma, const float* beta,
                         const float* mean_or_running_mean, const float* invstd_or_running_var, bool training,
                         double eps, void* dx, float* dgamma, float* dbeta, int64_t M, int64_t C,
                         math::Activation act) {
  SG_CPU_ISA_DISPATCH(batch_norm_backward, dtype, x, dy, gamma, beta, mean_or_running_mean, invstd_or_running_var,
                      training, eps, dx, dgamma, dbeta, M, C, act);
}

}  // namespace sg::cpu
