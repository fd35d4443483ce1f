#pragma once
// Scalar formulas shared by the CPU reference, the fast CPU path and the CUDA kernels, so
// that every device computes the same function. F is float, or double in the reference that
// the finite-difference tests run. PyTorch's definitions throughout.
#include <cmath>
#include <type_traits>

#include "core/hd.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__)
// glibc's libmvec has SIMD versions of these functions, but <math.h> declares them only under
// -ffast-math. Declaring them here lets the `#pragma omp simd` loops of the fast CPU paths
// call the 4-wide versions (linked from libmvec, within a few ulp of the scalar ones) instead
// of one scalar call per element: BN + Swish backward went from scalar to vector code.
extern "C" {
float expf(float) noexcept __attribute__((__simd__("notinbranch")));
float logf(float) noexcept __attribute__((__simd__("notinbranch")));
float log1pf(float) noexcept __attribute__((__simd__("notinbranch")));
float tanhf(float) noexcept __attribute__((__simd__("notinbranch")));
float powf(float, float) noexcept __attribute__((__simd__("notinbranch")));
}
#endif

namespace sg::math {

SG_HD_INLINE float exp_(float x) { return expf(x); }
SG_HD_INLINE double exp_(double x) { return exp(x); }
SG_HD_INLINE float log1p_(float x) { return log1pf(x); }
SG_HD_INLINE double log1p_(double x) { return log1p(x); }
SG_HD_INLINE float tanh_(float x) { return tanhf(x); }
SG_HD_INLINE double tanh_(double x) { return tanh(x); }
SG_HD_INLINE float log_(float x) { return logf(x); }
SG_HD_INLINE double log_(double x) { return log(x); }
SG_HD_INLINE float sqrt_(float x) {
#if defined(__clang__) && defined(__CUDA__) && defined(__CUDA_ARCH__)
  // clang's CUDA sqrtf (the Pascal build, scripts/build_pascal.sh) is libdevice's approximate
  // sqrt.approx.f32; nvcc's (its -prec-sqrt=true default) and the CPU's are correctly rounded.
  return __fsqrt_rn(x);
#else
  return sqrtf(x);
#endif
}
SG_HD_INLINE double sqrt_(double x) { return sqrt(x); }
SG_HD_INLINE float pow_(float x, float y) { return powf(x, y); }
SG_HD_INLINE double pow_(double x, double y) { return pow(x, y); }
SG_HD_INLINE float abs_(float x) { return fabsf(x); }
SG_HD_INLINE double abs_(double x) { return fabs(x); }
template <class F>
SG_HD_INLINE F max_(F a, F b) { return a > b ? a : b; }
template <class F>
SG_HD_INLINE F min_(F a, F b) { return a < b ? a : b; }

template <class F>
SG_HD_INLINE F sigmoid(F x) {
  return F(1) / (F(1) + exp_(-x));
}

// softplus = log(1 + e^x), written as max(x, 0) + log1p(e^-|x|): exact, never overflows, and
// branch-free so the CPU loops vectorise. It equals PyTorch's form (x itself above 20) to
// within e^-20 of x, below float's resolution there.
template <class F>
SG_HD_INLINE F softplus(F x) {
  return max_(x, F(0)) + log1p_(exp_(-abs_(x)));
}

// Per-channel statistics as (count, mean, M2 = sum of squared deviations from the mean), which
// batch norm builds its variance from on every device. Each step works on deviations from a
// running mean, never on raw sums of squares, so nothing cancels when |mean| >> std or when some
// values lie far from the rest (a variance from sums shifted by one row cancelled there).
//
// Welford's update: adds x to a set that holds n values with x (inv_n = 1 / n, shared by the
// channels of a row).
template <class F>
SG_HD_INLINE void welford_add(F x, F inv_n, F& mean, F& m2) {
  const F d = x - mean;
  mean += d * inv_n;
  m2 += d * (x - mean);
}

// Chan, Golub and LeVeque's merge: set a (na values) takes in set b (nb values); the caller then
// counts na + nb. Either set may be empty; merged in a fixed order, the result is deterministic.
template <class F>
SG_HD_INLINE void chan_merge(F na, F nb, F& mean_a, F& m2_a, F mean_b, F m2_b) {
  if (nb == F(0)) return;
  const F d = mean_b - mean_a;
  const F wb = nb / (na + nb);
  mean_a += d * wb;
  m2_a += m2_b + d * d * na * wb;
}

enum class Activation : int { identity = 0, relu, relu6, sigmoid, swish, mish };

// ReLU and ReLU6 pass NaN through, as PyTorch's do: written as "x <= 0 ? 0 : ..." every
// comparison with NaN is false, so NaN reaches the result (where "x > 0 ? x : 0" or
// min(max(x, 0), 6) would turn it into 0 and hide it from the non-finite checks downstream).
template <class F>
SG_HD_INLINE F activation(Activation kind, F x) {
  switch (kind) {
    case Activation::identity: return x;
    case Activation::relu: return x <= F(0) ? F(0) : x;
    case Activation::relu6: return x <= F(0) ? F(0) : (x >= F(6) ? F(6) : x);
    case Activation::sigmoid: return sigmoid(x);
    case Activation::swish: return x * sigmoid(x);
    case Activation::mish: return x * tanh_(softplus(x));
  }
  return x;
}

// d activation(x) / dx. ReLU and ReLU6 take gradient 0 at their kinks, like PyTorch. At NaN they
// pass the gradient on, also like PyTorch: its relu backward is threshold_backward (x <= 0 ? 0 :
// grad) and its relu6 backward hardtanh_backward (x <= 0 || x >= 6 ? 0 : grad, on CUDA and in
// the scalar CPU loop), and every comparison with NaN is false.
template <class F>
SG_HD_INLINE F activation_derivative(Activation kind, F x) {
  switch (kind) {
    case Activation::identity: return F(1);
    case Activation::relu: return x <= F(0) ? F(0) : F(1);
    case Activation::relu6: return (x <= F(0) || x >= F(6)) ? F(0) : F(1);
    case Activation::sigmoid: {
      const F s = sigmoid(x);
      return s * (F(1) - s);
    }
    case Activation::swish: {
      const F s = sigmoid(x);
      return s * (F(1) + x * (F(1) - s));
    }
    case Activation::mish: {
      const F t = tanh_(softplus(x));
      return t + x * (F(1) - t * t) * sigmoid(x);
    }
  }
  return F(1);
}

// Calls fn(std::integral_constant<Activation, kind>) so that each loop or kernel body is
// compiled for one formula (the switch happens once per call, not once per element).
template <class Fn>
void with_activation(Activation kind, Fn&& fn) {
  using A = Activation;
  switch (kind) {
    case A::identity: return fn(std::integral_constant<A, A::identity>{});
    case A::relu: return fn(std::integral_constant<A, A::relu>{});
    case A::relu6: return fn(std::integral_constant<A, A::relu6>{});
    case A::sigmoid: return fn(std::integral_constant<A, A::sigmoid>{});
    case A::swish: return fn(std::integral_constant<A, A::swish>{});
    case A::mish: return fn(std::integral_constant<A, A::mish>{});
  }
}

}  // namespace sg::math
