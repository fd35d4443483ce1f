#include "kernels/cuda_channel_reduce_layout.h"

#include <algorithm>

namespace sg {

ChannelLayout channel_layout(int64_t M, int64_t C, int vector_width) {
  ChannelLayout layout;
  const int64_t groups = (C + vector_width - 1) / vector_width;
  layout.lanes = int(std::min<int64_t>(groups, kChannelReduceThreads));
  layout.rows_per_step = kChannelReduceThreads / layout.lanes;
  layout.channel_blocks = unsigned((groups + layout.lanes - 1) / layout.lanes);
  // At least ~16 rows per thread so that partial sums stay few; at most kChannelReduceMaxRowBlocks.
  const int64_t rows_per_block = int64_t(layout.rows_per_step) * 16;
  layout.row_blocks = unsigned(std::clamp<int64_t>((M + rows_per_block - 1) / rows_per_block, 1, kChannelReduceMaxRowBlocks));
  return layout;
}

int channel_vector_width(int64_t C, size_t element_bytes, bool rows_aligned16) {
  const int64_t width = int64_t(16 / element_bytes);
  return rows_aligned16 && C % width == 0 ? int(width) : 1;
}

int64_t channel_reduce_workspace_floats(const ChannelLayout& layout, int64_t C) {
  return 2 * int64_t(layout.row_blocks) * C;
}

size_t channel_partials_bytes(int64_t M, int64_t C, size_t element_bytes) {
  const ChannelLayout layout = channel_layout(M, C, channel_vector_width(C, element_bytes, true));
  return size_t(channel_reduce_workspace_floats(layout, C)) * sizeof(float);
}

}  // namespace sg
