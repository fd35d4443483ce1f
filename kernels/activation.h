#pragma once
// Pointwise activations: y = f(x), dx = dy * f'(x). Any shape, f32/f16/bf16 storage,
// f32 arithmetic. PyTorch's formulas (see kernels/scalar_math.h).
#include "core/option_words.h"
#include "core/tensor.h"
#include "kernels/scalar_math.h"

namespace sg {

using Activation = math::Activation;

// The activation words: identity (linear), relu, relu6, sigmoid, swish (silu), mish.
inline constexpr OptionWord<Activation> kActivationWordList[] = {
    {Activation::identity, "identity", {"linear"}},
    {Activation::relu, "relu"},
    {Activation::relu6, "relu6"},
    {Activation::sigmoid, "sigmoid"},
    {Activation::swish, "swish", {"silu"}},
    {Activation::mish, "mish"},
};
inline constexpr OptionWords<Activation> kActivationWords{"activation", kActivationWordList};
Activation parse_activation(std::string_view name);  // parse_word(kActivationWords, name)
std::string_view activation_name(Activation kind);

// y may alias x (in place).
void activation_forward(Activation kind, const Tensor& x, Tensor& y, const Stream& stream = {});
// dx may alias dy.
void activation_backward(Activation kind, const Tensor& x, const Tensor& dy, Tensor& dx, const Stream& stream = {});

}  // namespace sg
