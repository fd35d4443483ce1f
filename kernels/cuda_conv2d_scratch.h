#pragma once
// The scratch memory the CUDA convolution's weight gradient takes from the caching allocator, and
// the splits that decide it, computed in one place for the launchers (kernels/cuda/conv2d_*.cu,
// kernels/cuda/conv2d_common.cuh) and the meta device's conv2d (kernels/conv2d.cpp, which the memory
// plan runs). Compiled in every build.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/dtype.h"
#include "kernels/conv2d_params.h"

namespace sg {

// Output tiles of the implicit GEMM per block: the SIMT kernel's and the tensor-core kernel's.
constexpr int kConvSimtTileM = 64, kConvSimtTileN = 64;
constexpr int kConvMmaTileM = 128, kConvMmaTileN = 64;

// The weight gradient's reduction over output pixels (K of them), split so that ~512 blocks run,
// each over at least 256 pixels, with at most 256 MiB of f32 partial sums. It depends on the
// shapes alone, so every run adds the same partials in the same order (bit-identical results).
struct ReductionSplit {
  int64_t splits = 1;
  int64_t k_per_split = 0;
};
ReductionSplit implicit_gemm_weight_grad_split(int64_t M, int64_t N, int64_t K, int64_t groups, int64_t weight_elems,
                                               bool tensor_cores);

// column_sum (kernels/cuda/conv2d_common.cuh) over `rows` rows: 0 for one pass without scratch,
// else the chunks of rows whose partial sums (chunks x columns floats) it keeps in scratch.
int64_t column_sum_chunks(int64_t rows);

// The depthwise weight gradient's blocks: `lanes` x `ty_count` x `pz` threads, one chunk of
// pixels per block row of the grid, f32 partials per chunk and (tap or bias) and channel.
struct DepthwiseWeightGradLayout {
  int lanes = 0, ty_count = 0, pz = 0, channel_blocks = 0;
  int64_t chunks = 0, pixels_per_chunk = 0;
};
DepthwiseWeightGradLayout depthwise_weight_grad_layout(int64_t pixels, int channels, int taps, int vector_width,
                                                       int threads_per_block);

// The scratch blocks live together at the peak of conv2d_backward_weight on CUDA, in bytes (none of
// them empty), for
// code of architecture `code_arch` (core/cuda_architectures.h) and 16-byte aligned tensors (every
// tensor from the caching allocator is).
std::vector<size_t> cuda_conv2d_backward_weight_scratch(const Conv2dParams& p, const Conv2dShape& s, DType dtype,
                                                        int code_arch, bool has_bias);

}  // namespace sg
