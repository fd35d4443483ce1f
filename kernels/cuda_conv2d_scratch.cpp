#include "kernels/cuda_conv2d_scratch.h"

#include <algorithm>

#include "kernels/cuda_kernel_paths.h"

namespace sg {
namespace {
int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
}  // namespace

ReductionSplit implicit_gemm_weight_grad_split(int64_t M, int64_t N, int64_t K, int64_t groups, int64_t weight_elems,
                                               bool tensor_cores) {
  const int64_t tile_m = tensor_cores ? kConvMmaTileM : kConvSimtTileM;
  const int64_t tile_n = tensor_cores ? kConvMmaTileN : kConvSimtTileN;
  const int64_t tiles = ceil_div(M, tile_m) * ceil_div(N, tile_n) * groups;
  int64_t splits = std::clamp<int64_t>(ceil_div(512, tiles), 1, std::max<int64_t>(1, ceil_div(K, 256)));
  splits = std::max<int64_t>(1, std::min<int64_t>(splits, (int64_t(256) << 20) / (weight_elems * 4)));
  ReductionSplit r;
  r.k_per_split = std::max<int64_t>(32, ceil_div(ceil_div(K, splits), 32) * 32);
  r.splits = std::max<int64_t>(1, ceil_div(K, r.k_per_split));
  return r;
}

int64_t column_sum_chunks(int64_t rows) { return rows <= 2048 ? 0 : std::min<int64_t>(1024, ceil_div(rows, 256)); }

DepthwiseWeightGradLayout depthwise_weight_grad_layout(int64_t pixels, int channels, int taps, int vector_width,
                                                       int threads_per_block) {
  DepthwiseWeightGradLayout l;
  const int taps_plus = taps + 1;  // the bias's row
  const int channel_vectors = channels / vector_width;
  l.lanes = std::min(32, channel_vectors);
  l.ty_count = std::min(taps_plus, std::max(1, threads_per_block / l.lanes));
  l.pz = std::max(1, threads_per_block / (l.lanes * l.ty_count));
  l.channel_blocks = int(ceil_div(channel_vectors, l.lanes));
  // Enough blocks to fill a large GPU, each with at least ~64 pixels per z lane.
  const int64_t chunks = std::max<int64_t>(
      1, std::min<int64_t>(ceil_div(pixels, int64_t(l.pz) * 64), std::max<int64_t>(1, 1024 / l.channel_blocks)));
  l.pixels_per_chunk = ceil_div(pixels, chunks);
  l.chunks = ceil_div(pixels, l.pixels_per_chunk);
  return l;
}

namespace {
std::vector<size_t> without_zeros(std::vector<size_t> blocks) {
  std::erase(blocks, size_t(0));
  return blocks;
}
}  // namespace

std::vector<size_t> cuda_conv2d_backward_weight_scratch(const Conv2dParams& p, const Conv2dShape& s, DType dtype,
                                                        int code_arch, bool has_bias) {
  const int64_t pixels = s.n * s.out_h * s.out_w;
  if (pixels == 0) return {};
  const int64_t taps = p.kernel_h * p.kernel_w;
  auto column_sum_scratch = [](int64_t rows, int64_t cols) {
    return size_t(column_sum_chunks(rows)) * size_t(cols) * sizeof(float);
  };
  // kernels/cuda/conv2d_depthwise.cu: 16-byte vectors when the channels allow (4 f32, 8 f16/bf16).
  if (p.groups > 1 && p.groups == s.c_in && s.c_out == s.c_in) {
    const int vector = int(16 / dtype_size(dtype));
    const int width = s.c_in % vector == 0 ? vector : 1;
    const DepthwiseWeightGradLayout l = depthwise_weight_grad_layout(pixels, int(s.c_in), int(taps), width, 256);
    const int64_t cols = (taps + 1) * s.c_in;
    return without_zeros({size_t(l.chunks) * size_t(cols) * sizeof(float), column_sum_scratch(l.chunks, cols)});
  }
  // kernels/cuda/conv2d_implicit_gemm.cu: partial sums per split, reduced by column_sum; the bias's
  // gradient (a column sum of dy) runs while the partials are still held.
  const int64_t cg = s.c_in / p.groups, cog = s.c_out / p.groups;
  const bool tensor_cores = conv_uses_tensor_cores(dtype, code_arch) && cg % 8 == 0 && cog % 8 == 0;
  const int64_t N = taps * cg, weight_elems = s.c_out * N;
  const ReductionSplit split = implicit_gemm_weight_grad_split(cog, N, pixels, p.groups, weight_elems, tensor_cores);
  const size_t partials = size_t(split.splits) * size_t(weight_elems) * sizeof(float);
  return without_zeros({partials, std::max(column_sum_scratch(split.splits, weight_elems),
                                           has_bias ? column_sum_scratch(pixels, s.c_out) : size_t(0))});
}

}  // namespace sg
