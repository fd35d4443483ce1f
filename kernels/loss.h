#pragma once
// Training losses, PyTorch semantics. Logits/predictions in f32, f16 or bf16; the loss value is
// f32 ([1] for mean and sum, per sample or per element for none); the gradient comes back in
// the logits' dtype with an upstream factor `grad_scale` multiplied in (the loss scale of f16
// training; 1 otherwise). For reduction none the gradient is that of the SUM of the losses.
// Outputs are overwritten. Reductions are deterministic on every device.
#include "core/option_words.h"
#include "core/tensor.h"
#include "kernels/loss_math.h"

namespace sg {

using Reduction = math::Reduction;

// The reduction words: none, mean, sum.
inline constexpr OptionWord<Reduction> kReductionWordList[] = {
    {Reduction::none, "none"},
    {Reduction::mean, "mean"},
    {Reduction::sum, "sum"},
};
inline constexpr OptionWords<Reduction> kReductionWords{"reduction", kReductionWordList};
Reduction parse_reduction(std::string_view name);
std::string_view reduction_name(Reduction reduction);

// ---- softmax cross-entropy with integer class targets ----------------------------------------
//   logits  [N, C]
//   targets i32 [N], each in [0, C) (the CPU path throws otherwise; on CUDA the sample's loss
//           and gradient come out NaN, because checking would need a device-to-host copy)
//   loss    f32 [N] for none, f32 [1] for mean (over N) and sum
struct CrossEntropyParams {
  Reduction reduction = Reduction::mean;
  float label_smoothing = 0;  // in [0, 1]: target distribution (1 - eps) one-hot + eps / C
};
void cross_entropy_forward(const CrossEntropyParams& p, const Tensor& logits, const Tensor& targets, Tensor& loss,
                           const Stream& stream = {});
// dlogits [N, C], the logits' dtype.
void cross_entropy_backward(const CrossEntropyParams& p, const Tensor& logits, const Tensor& targets,
                            float grad_scale, Tensor& dlogits, const Stream& stream = {});

// ---- element-by-element losses: x any shape, targets f32 of the same shape -------------------
// loss f32 with x's shape for none, f32 [1] for mean (over all elements) and sum.
// BCE with logits: max(x, 0) - x t + log1p(exp(-|x|)) (the ordinal "binned" head).
void bce_with_logits_forward(Reduction reduction, const Tensor& x, const Tensor& targets, Tensor& loss,
                             const Stream& stream = {});
void bce_with_logits_backward(Reduction reduction, const Tensor& x, const Tensor& targets, float grad_scale,
                              Tensor& dx, const Stream& stream = {});
// MSE: (x - t)^2.
void mse_loss_forward(Reduction reduction, const Tensor& x, const Tensor& targets, Tensor& loss,
                      const Stream& stream = {});
void mse_loss_backward(Reduction reduction, const Tensor& x, const Tensor& targets, float grad_scale, Tensor& dx,
                       const Stream& stream = {});
// Smooth L1 (PyTorch's, beta >= 0): 0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta.
void smooth_l1_loss_forward(Reduction reduction, float beta, const Tensor& x, const Tensor& targets, Tensor& loss,
                            const Stream& stream = {});
void smooth_l1_loss_backward(Reduction reduction, float beta, const Tensor& x, const Tensor& targets,
                             float grad_scale, Tensor& dx, const Stream& stream = {});

}  // namespace sg
