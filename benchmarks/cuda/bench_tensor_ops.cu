// CUDA tensor ops: achieved bandwidth on EfficientNet-B0 shapes, batch 32: the SE channel scale
// at 112x112x96, 56x56x144, 14x14x672 (224 px) and 256x256x96 (512 px); the residual add at
// 28x28x40 (224 px) and 64x64x40 (512 px); a channel concat of two 28x28x40 halves.
#include <benchmark/benchmark.h>

#include "benchmarks/cuda/bench_cuda_util.h"
#include "kernels/tensor_ops.h"

namespace sg {
namespace {

constexpr int64_t kBatch = 32;

// Args: H (= W), C, dtype.
void BM_CudaChannelScaleForward(benchmark::State& state) {
  if (bench::skip_without_gpu(state)) return;
  const int64_t hw = state.range(0), c = state.range(1);
  const auto dtype = DType(state.range(2));
  Tensor x = bench::random_tensor({kBatch, hw, hw, c}, dtype, Device::cuda(0));
  Tensor s = bench::random_tensor({kBatch, c}, dtype, Device::cuda(0));
  Tensor y = Tensor::empty(x.shape(), dtype, Device::cuda(0));
  bench::GpuTimer timer;
  timer.run(state, [&] { channel_scale_forward(x, s, y); });
  state.SetLabel(std::string(dtype_name(dtype)));
  bench::set_bytes(state, 2 * x.nbytes());
}

void BM_CudaChannelScaleBackward(benchmark::State& state) {
  if (bench::skip_without_gpu(state)) return;
  const int64_t hw = state.range(0), c = state.range(1);
  const auto dtype = DType(state.range(2));
  Tensor x = bench::random_tensor({kBatch, hw, hw, c}, dtype, Device::cuda(0));
  Tensor s = bench::random_tensor({kBatch, c}, dtype, Device::cuda(0));
  Tensor dy = bench::random_tensor(x.shape(), dtype, Device::cuda(0));
  Tensor dx = Tensor::empty(x.shape(), dtype, Device::cuda(0)), ds = Tensor::empty(s.shape(), dtype, Device::cuda(0));
  bench::GpuTimer timer;
  timer.run(state, [&] { channel_scale_backward(x, s, dy, dx, ds); });
  state.SetLabel(std::string(dtype_name(dtype)));
  bench::set_bytes(state, 3 * x.nbytes());
}

// Args: H (= W), dtype.
void BM_CudaAdd(benchmark::State& state) {
  if (bench::skip_without_gpu(state)) return;
  const int64_t hw = state.range(0);
  const auto dtype = DType(state.range(1));
  Tensor a = bench::random_tensor({kBatch, hw, hw, 40}, dtype, Device::cuda(0));
  Tensor b = bench::random_tensor({kBatch, hw, hw, 40}, dtype, Device::cuda(0));
  Tensor y = Tensor::empty(a.shape(), dtype, Device::cuda(0));
  bench::GpuTimer timer;
  timer.run(state, [&] { add(a, b, y); });
  state.SetLabel(std::string(dtype_name(dtype)));
  bench::set_bytes(state, 3 * a.nbytes());
}

void BM_CudaAxpy(benchmark::State& state) {
  if (bench::skip_without_gpu(state)) return;
  const int64_t hw = state.range(0);
  const auto dtype = DType(state.range(1));
  Tensor x = bench::random_tensor({kBatch, hw, hw, 40}, dtype, Device::cuda(0));
  Tensor y = bench::random_tensor({kBatch, hw, hw, 40}, dtype, Device::cuda(0));
  bench::GpuTimer timer;
  timer.run(state, [&] { axpy(0.5f, x, y); });
  state.SetLabel(std::string(dtype_name(dtype)));
  bench::set_bytes(state, 3 * x.nbytes());
}

void BM_CudaConcatChannels(benchmark::State& state) {
  if (bench::skip_without_gpu(state)) return;
  const int64_t hw = state.range(0);
  const auto dtype = DType(state.range(1));
  std::vector<Tensor> parts{bench::random_tensor({kBatch, hw, hw, 40}, dtype, Device::cuda(0)),
                            bench::random_tensor({kBatch, hw, hw, 40}, dtype, Device::cuda(0))};
  Tensor y = Tensor::empty({kBatch, hw, hw, 80}, dtype, Device::cuda(0));
  bench::GpuTimer timer;
  timer.run(state, [&] { concat_channels_forward(parts, y); });
  state.SetLabel(std::string(dtype_name(dtype)));
  bench::set_bytes(state, 2 * y.nbytes());
}

void scale_args(benchmark::internal::Benchmark* b) {
  for (auto [hw, c] : {std::pair{112, 96}, std::pair{56, 144}, std::pair{14, 672}, std::pair{256, 96}})
    for (DType dtype : {DType::f32, DType::f16, DType::bf16}) b->Args({hw, c, int64_t(dtype)});
  b->UseManualTime()->Unit(benchmark::kMicrosecond);
}

void add_args(benchmark::internal::Benchmark* b) {
  for (int64_t hw : {28, 64})
    for (DType dtype : {DType::f32, DType::f16, DType::bf16}) b->Args({hw, int64_t(dtype)});
  b->UseManualTime()->Unit(benchmark::kMicrosecond);
}

BENCHMARK(BM_CudaChannelScaleForward)->Apply(scale_args);
BENCHMARK(BM_CudaChannelScaleBackward)->Apply(scale_args);
BENCHMARK(BM_CudaAdd)->Apply(add_args);
BENCHMARK(BM_CudaAxpy)->Apply(add_args);
BENCHMARK(BM_CudaConcatChannels)->Apply(add_args);

}  // namespace
}  // namespace sg
