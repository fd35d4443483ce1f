// CUDA activations: achieved bandwidth (compare with the device-to-device copy below).
#include <benchmark/benchmark.h>

#include "benchmarks/cuda/bench_cuda_util.h"
#include "core/cuda/runtime.h"
#include "kernels/activation.h"

namespace sg {
namespace {

const Shape kShape{32, 112, 112, 96};  // B0 block 2's expanded activation at 224 px, batch 32

void BM_CudaCopy(benchmark::State& state) {
  if (bench::skip_without_gpu(state)) return;
  const auto dtype = DType(state.range(0));
  Tensor x = bench::random_tensor(kShape, dtype, Device::cuda(0));
  Tensor y = Tensor::empty(kShape, dtype, Device::cuda(0));
  bench::GpuTimer timer;
  timer.run(state, [&] { y.copy_from(x); });
  state.SetLabel("device-to-device copy (the bandwidth ceiling)");
  bench::set_bytes(state, 2 * x.nbytes());
}

void BM_CudaActivationForward(benchmark::State& state) {
  if (bench::skip_without_gpu(state)) return;
  const auto kind = Activation(state.range(0));
  const auto dtype = DType(state.range(1));
  Tensor x = bench::random_tensor(kShape, dtype, Device::cuda(0));
  Tensor y = Tensor::empty(kShape, dtype, Device::cuda(0));
  bench::GpuTimer timer;
  timer.run(state, [&] { activation_forward(kind, x, y); });
  state.SetLabel(std::string(activation_name(kind)) + " " + std::string(dtype_name(dtype)));
  bench::set_bytes(state, 2 * x.nbytes());
}

void BM_CudaActivationBackward(benchmark::State& state) {
  if (bench::skip_without_gpu(state)) return;
  const auto kind = Activation(state.range(0));
  const auto dtype = DType(state.range(1));
  Tensor x = bench::random_tensor(kShape, dtype, Device::cuda(0));
  Tensor dy = bench::random_tensor(kShape, dtype, Device::cuda(0));
  Tensor dx = Tensor::empty(kShape, dtype, Device::cuda(0));
  bench::GpuTimer timer;
  timer.run(state, [&] { activation_backward(kind, x, dy, dx); });
  state.SetLabel(std::string(activation_name(kind)) + " " + std::string(dtype_name(dtype)));
  bench::set_bytes(state, 3 * x.nbytes());
}

void activation_args(benchmark::internal::Benchmark* b) {
  for (Activation kind : {Activation::relu6, Activation::swish, Activation::mish})
    for (DType dtype : {DType::f32, DType::f16, DType::bf16}) b->Args({int64_t(kind), int64_t(dtype)});
  b->UseManualTime()->Unit(benchmark::kMicrosecond);
}

BENCHMARK(BM_CudaCopy)->Arg(int64_t(DType::f16))->Arg(int64_t(DType::f32))->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_CudaActivationForward)->Apply(activation_args);
BENCHMARK(BM_CudaActivationBackward)->Apply(activation_args);

}  // namespace
}  // namespace sg
