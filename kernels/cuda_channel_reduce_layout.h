#pragma once
// The work split of the CUDA per-channel reductions over [M, C] rows (batch norm's statistics and
// gradient sums, bias + activation's bias gradient: kernels/cuda/channel_reduce.cuh) and the f32
// scratch it takes from the caching allocator, computed in one place for the launchers and the
// meta device's kernels (batch norm, bias_activation), which the memory plan runs. Host code,
// compiled in every build.
#include <cstddef>
#include <cstdint>

namespace sg {

inline constexpr int kChannelReduceThreads = 256;        // threads per block of the partial-sums kernels
inline constexpr int64_t kChannelReduceMaxRowBlocks = 512;

struct ChannelLayout {
  int lanes;          // channel groups (of the vector width's channels) per block
  int rows_per_step;  // rows a block reads at once: kChannelReduceThreads / lanes
  unsigned channel_blocks;
  unsigned row_blocks;
};

// The split for M rows of C channels, `vector_width` adjacent channels per thread. It depends on
// the shapes alone, never on the GPU, so every run adds the same partials in the same order.
ChannelLayout channel_layout(int64_t M, int64_t C, int vector_width);

// The channels one thread owns: 16 bytes' worth when C is a multiple of that and every row starts
// 16-byte aligned, else 1.
int channel_vector_width(int64_t C, size_t element_bytes, bool rows_aligned16);

// The partial sums one reduction allocates: two f32 arrays [row_blocks, C] in one tensor.
int64_t channel_reduce_workspace_floats(const ChannelLayout& layout, int64_t C);

// The bytes of those partial sums for a reduction over M rows of C channels of `element_bytes` each
// whose rows start 16-byte aligned when C allows it (every caching-allocator tensor does): what
// batch norm and bias_activation allocate per reduction, and what their meta branches count.
size_t channel_partials_bytes(int64_t M, int64_t C, size_t element_bytes);

}  // namespace sg
