// CUDA optimizer kernels over EfficientNet-B0's 5.3 M parameters (one flat f32 tensor): bytes
// moved per second beside a device-to-device copy, the bandwidth ceiling any elementwise update
// can reach.
#include <benchmark/benchmark.h>

#include "benchmarks/cuda/bench_cuda_util.h"
#include "kernels/optimizer.h"

namespace sg {
namespace {

constexpr int64_t kB0Parameters = 5'288'548;  // torchvision efficientnet_b0

// The ceiling: copy as many bytes as AdamW with f32 gradients moves (28 per parameter: read
// p, g, m, v; write p, m, v), half read and half written.
void BM_CudaCopyCeiling(benchmark::State& state) {
  if (bench::skip_without_gpu(state)) return;
  const Device gpu = Device::cuda(0);
  Tensor src = Tensor::zeros({kB0Parameters * 14}, DType::u8, gpu), dst = Tensor::empty(src.shape(), DType::u8, gpu);
  bench::GpuTimer timer;
  timer.run(state, [&] { dst.copy_from(src); });
  state.SetLabel("device-to-device copy (the bandwidth ceiling)");
  bench::set_bytes(state, 2 * src.nbytes());
}

void BM_CudaAdamW(benchmark::State& state) {
  if (bench::skip_without_gpu(state)) return;
  const auto grad_dtype = DType(state.range(0));
  const Device gpu = Device::cuda(0);
  Tensor p = bench::random_tensor({kB0Parameters}, DType::f32, gpu);
  Tensor g = bench::random_tensor({kB0Parameters}, grad_dtype, gpu);
  Tensor m = Tensor::zeros({kB0Parameters}, DType::f32, gpu), v = Tensor::zeros({kB0Parameters}, DType::f32, gpu);
  const AdamWParams a{1e-4f, 0.9f, 0.999f, 1e-8f, 1e-2f};
  int64_t step = 0;
  bench::GpuTimer timer;
  timer.run(state, [&] { adamw_step(a, ++step, p, g, m, v); });
  state.SetLabel("adamw, grad " + std::string(dtype_name(grad_dtype)));
  bench::set_bytes(state, 6 * p.nbytes() + g.nbytes());
}

void BM_CudaSgd(benchmark::State& state) {
  if (bench::skip_without_gpu(state)) return;
  const auto grad_dtype = DType(state.range(0));
  const Device gpu = Device::cuda(0);
  Tensor p = bench::random_tensor({kB0Parameters}, DType::f32, gpu);
  Tensor g = bench::random_tensor({kB0Parameters}, grad_dtype, gpu);
  Tensor buf = Tensor::zeros({kB0Parameters}, DType::f32, gpu);
  const SgdParams s{1e-3f, 0.9f, 0.0f, 1e-4f, true};
  bench::GpuTimer timer;
  timer.run(state, [&] { sgd_step(s, p, g, &buf, false); });
  state.SetLabel("sgd nesterov, grad " + std::string(dtype_name(grad_dtype)));
  bench::set_bytes(state, 4 * p.nbytes() + g.nbytes());
}

// Norm plus scaling (max_norm small, so every gradient is scaled): read, read, write. This
// includes the host round trip for the returned norm.
void BM_CudaClipGradNorm(benchmark::State& state) {
  if (bench::skip_without_gpu(state)) return;
  Tensor g = bench::random_tensor({kB0Parameters}, DType::f32, Device::cuda(0));
  Tensor* grads[] = {&g};
  bench::GpuTimer timer;
  timer.run(state, [&] { benchmark::DoNotOptimize(clip_grad_norm(grads, 1e-3f)); });
  state.SetLabel("clip_grad_norm (scales)");
  bench::set_bytes(state, 3 * g.nbytes());
}

void BM_CudaNonFiniteCheckAndUnscale(benchmark::State& state) {
  if (bench::skip_without_gpu(state)) return;
  const auto grad_dtype = DType(state.range(0));
  const Device gpu = Device::cuda(0);
  Tensor g = bench::random_tensor({kB0Parameters}, grad_dtype, gpu);
  Tensor found = Tensor::zeros({1}, DType::f32, gpu);
  Tensor* grads[] = {&g};
  bench::GpuTimer timer;
  timer.run(state, [&] { non_finite_check_and_unscale(grads, found, 1.0f); });
  state.SetLabel("unscale + inf check, grad " + std::string(dtype_name(grad_dtype)));
  bench::set_bytes(state, 2 * g.nbytes());
}

BENCHMARK(BM_CudaCopyCeiling)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_CudaAdamW)->Arg(int64_t(DType::f32))->Arg(int64_t(DType::f16))->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_CudaSgd)->Arg(int64_t(DType::f32))->Arg(int64_t(DType::f16))->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_CudaClipGradNorm)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_CudaNonFiniteCheckAndUnscale)
    ->Arg(int64_t(DType::f32))
    ->Arg(int64_t(DType::f16))
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace sg
