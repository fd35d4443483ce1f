// Input normalisation: one thread per pixel, its channels in order. __fmul_rn and __fadd_rn keep
// the product and the sum two roundings (nvcc would otherwise contract them into one FMA), so
// the result is bit-identical to the CPU's.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/normalize_input.h"

namespace sg::cuda {
namespace {

constexpr int kMaxChannels = 4;  // kernels/normalize_input.h: kNormalizeInputMaxChannels

// Passed by value: the kernel reads the coefficients from its parameters, no device copy.
struct ChannelAffine {
  float scale[kMaxChannels];
  float shift[kMaxChannels];
};

template <class D>
__global__ void __launch_bounds__(256) normalize_input_kernel(const uint8_t* __restrict__ x, D* __restrict__ y,
                                                              int64_t pixels, int channels, ChannelAffine affine) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t p = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; p < pixels; p += stride) {
    const int64_t first = p * channels;
    for (int c = 0; c < channels; ++c) {
      const float product = __fmul_rn(affine.scale[c], float(x[first + c]));
      y[first + c] = from_acc<D>(__fadd_rn(product, affine.shift[c]));
    }
  }
}

}  // namespace

void normalize_input(DType dst_dtype, const uint8_t* x, int64_t pixels, int channels, const float* scale,
                     const float* shift, void* y, StreamHandle stream) {
  if (pixels == 0) return;
  SG_CHECK(channels >= 1 && channels <= kMaxChannels, "normalize_input: ", channels, " channels, expected 1..",
           kMaxChannels);
  ChannelAffine affine{};
  for (int c = 0; c < channels; ++c) {
    affine.scale[c] = scale[c];
    affine.shift[c] = shift[c];
  }
  constexpr int kThreads = 256;
  dispatch_floating(dst_dtype, "normalize_input", [&](auto tag) {
    using D = typename decltype(tag)::type;
    normalize_input_kernel<D><<<grid_for(pixels, kThreads), kThreads, 0, stream>>>(x, static_cast<D*>(y), pixels,
                                                                                   channels, affine);
  });
  SG_CUDA_CHECK_LAUNCH("normalize_input");
}

}  // namespace sg::cuda
