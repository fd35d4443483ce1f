#pragma once
// Mixed precision (docs/numeric_conventions.md). Master weights and their gradients are f32
// (Parameter::value, Parameter::grad). Activations flow in the compute dtype (f32, f16 or bf16):
// each convolution and linear layer takes its weight in the activations' dtype from
// compute_weight(), and adds its weight gradient (computed in that dtype, f32 accumulation
// inside the kernels) into the f32 Parameter::grad through accumulate_grad(). Batch norm keeps
// gamma, beta and its statistics f32 (its kernels read f16/bf16 activations directly); so do the
// squeeze-excite biases (bias_activation takes an f32 bias) and GeM's exponent.
//
// Memory: in f16/bf16 every parameter a convolution or linear layer reads (conv weights, the
// squeeze-excite 1x1 weights, the classifier's weight AND bias, a conv bias where there is one)
// keeps one persistent copy in the compute dtype (Parameter::compute), 2 bytes per element,
// for as long as the model lives or until release_compute_copies(). Nothing else is kept.
#include <cstddef>
#include <string>
#include <string_view>

#include "core/option_words.h"
#include "nn/module.h"

namespace sg::nn {

// The precision words: f32 (fp32, float32, float), f16 (fp16, float16, half), bf16 (bfloat16),
// any case. Every --precision flag and `precision` key reads them through this table.
inline constexpr OptionWord<DType> kPrecisionWordList[] = {
    {DType::f32, "f32", {"fp32", "float32", "float"}},
    {DType::f16, "f16", {"fp16", "float16", "half"}},
    {DType::bf16, "bf16", {"bfloat16"}},
};
inline constexpr OptionWords<DType> kPrecisionWords{"precision", kPrecisionWordList};
// parse_word(kPrecisionWords, name): throws naming the value and the accepted words.
DType parse_precision(std::string_view name);

// p in x's dtype, on x's device. f32: p.value itself. f16/bf16: p.compute.value, cast from
// p.value on `stream` when p.version or p.value's storage changed since the last cast (the
// optimizers bump p.version after every update, so a training step casts each weight once,
// whatever the number of micro-batches or checkpointed re-runs). Throws naming `module` on a
// dtype or device mismatch.
const Tensor& compute_weight(Parameter& p, const Tensor& x, const std::string& module, const Stream& stream);

// p.grad += g, where g (f32, f16 or bf16, p's number of elements) was computed in the compute
// dtype; an f16/bf16 g goes through an f32 temporary of p's size.
void accumulate_grad(Parameter& p, const Tensor& g, const Stream& stream);

// Frees the compute copies of every parameter of `module` (switching back to f32).
void release_compute_copies(Module& module);
// Bytes the compute copies of `module`'s parameters hold now.
size_t compute_copy_bytes(Module& module);
// Bumps every parameter's version (after writing weights in place, e.g. loading a file into a
// model that has already run in f16/bf16), so the next forward re-casts them.
void mark_parameters_changed(Module& module);

// Whether any element of t (a floating tensor, any device) is inf or NaN. It runs
// kernels/optimizer.h's non_finite_check_and_unscale with a factor of 1 (a read-only check) on
// `stream`, after the work queued there (give the stream that produced t), and waits for the
// answer; on the default stream it waits for the whole device (Tensor::to_floats).
bool has_non_finite(const Tensor& t, const Stream& stream = {});

}  // namespace sg::nn
