// CPU tensor ops: bytes moved per second on EfficientNet-B0 shapes (224 px): the SE channel
// scale at 112x112x96, 56x56x144, 14x14x672; the residual add at 28x28x40; concat of two halves.
#include <benchmark/benchmark.h>

#include "benchmarks/cpu/bench_util.h"
#include "kernels/tensor_ops.h"

namespace sg {
namespace {

constexpr int64_t kBatch = 4;  // runs in well under a second on 2 cores

// Args: H (= W), C, dtype.
void BM_ChannelScaleForward(benchmark::State& state) {
  const int64_t hw = state.range(0), c = state.range(1);
  const auto dtype = DType(state.range(2));
  Tensor x = bench::random_tensor({kBatch, hw, hw, c}, dtype), s = bench::random_tensor({kBatch, c}, dtype);
  Tensor y = Tensor::empty(x.shape(), dtype);
  for (auto _ : state) channel_scale_forward(x, s, y);
  state.SetLabel(std::string(dtype_name(dtype)));
  bench::set_bytes(state, 2 * x.nbytes());
}

void BM_ChannelScaleBackward(benchmark::State& state) {
  const int64_t hw = state.range(0), c = state.range(1);
  const auto dtype = DType(state.range(2));
  Tensor x = bench::random_tensor({kBatch, hw, hw, c}, dtype), s = bench::random_tensor({kBatch, c}, dtype);
  Tensor dy = bench::random_tensor(x.shape(), dtype);
  Tensor dx = Tensor::empty(x.shape(), dtype), ds = Tensor::empty(s.shape(), dtype);
  for (auto _ : state) channel_scale_backward(x, s, dy, dx, ds);
  state.SetLabel(std::string(dtype_name(dtype)));
  bench::set_bytes(state, 3 * x.nbytes());
}

void BM_Add(benchmark::State& state) {
  const auto dtype = DType(state.range(0));
  Tensor a = bench::random_tensor({kBatch, 28, 28, 40}, dtype), b = bench::random_tensor({kBatch, 28, 28, 40}, dtype);
  Tensor y = Tensor::empty(a.shape(), dtype);
  for (auto _ : state) add(a, b, y);
  state.SetLabel(std::string(dtype_name(dtype)));
  bench::set_bytes(state, 3 * a.nbytes());
}

void BM_AddInPlace(benchmark::State& state) {
  const auto dtype = DType(state.range(0));
  Tensor a = bench::random_tensor({kBatch, 28, 28, 40}, dtype), b = bench::random_tensor({kBatch, 28, 28, 40}, dtype);
  for (auto _ : state) add_(a, b);
  state.SetLabel(std::string(dtype_name(dtype)));
  bench::set_bytes(state, 3 * a.nbytes());
}

void BM_ConcatChannels(benchmark::State& state) {
  const auto dtype = DType(state.range(0));
  std::vector<Tensor> parts{bench::random_tensor({kBatch, 28, 28, 40}, dtype),
                            bench::random_tensor({kBatch, 28, 28, 40}, dtype)};
  Tensor y = Tensor::empty({kBatch, 28, 28, 80}, dtype);
  for (auto _ : state) concat_channels_forward(parts, y);
  state.SetLabel(std::string(dtype_name(dtype)));
  bench::set_bytes(state, 2 * y.nbytes());
}

void scale_args(benchmark::internal::Benchmark* b) {
  for (auto [hw, c] : {std::pair{112, 96}, std::pair{56, 144}, std::pair{14, 672}})
    for (DType dtype : {DType::f32, DType::f16}) b->Args({hw, c, int64_t(dtype)});
  b->Unit(benchmark::kMicrosecond)->UseRealTime();
}

void dtype_args(benchmark::internal::Benchmark* b) {
  for (DType dtype : {DType::f32, DType::f16}) b->Arg(int64_t(dtype));
  b->Unit(benchmark::kMicrosecond)->UseRealTime();
}

BENCHMARK(BM_ChannelScaleForward)->Apply(scale_args);
BENCHMARK(BM_ChannelScaleBackward)->Apply(scale_args);
BENCHMARK(BM_Add)->Apply(dtype_args);
BENCHMARK(BM_AddInPlace)->Apply(dtype_args);
BENCHMARK(BM_ConcatChannels)->Apply(dtype_args);

}  // namespace
}  // namespace sg
