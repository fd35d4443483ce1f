// CPU optimizer updates over EfficientNet-B0's 5.3 M parameters (one flat f32 tensor): bytes
// moved per second, to compare with the machine's memory bandwidth.
#include <benchmark/benchmark.h>

#include "benchmarks/cpu/bench_util.h"
#include "kernels/optimizer.h"

namespace sg {
namespace {

constexpr int64_t kB0Parameters = 5'288'548;  // torchvision efficientnet_b0

// arg: gradient dtype. Reads p, g, m, v; writes p, m, v.
void BM_AdamW(benchmark::State& state) {
  const auto grad_dtype = DType(state.range(0));
  Tensor p = bench::random_tensor({kB0Parameters}, DType::f32), g = bench::random_tensor({kB0Parameters}, grad_dtype);
  Tensor m = Tensor::zeros({kB0Parameters}, DType::f32), v = Tensor::zeros({kB0Parameters}, DType::f32);
  const AdamWParams a{1e-4f, 0.9f, 0.999f, 1e-8f, 1e-2f};
  int64_t step = 0;
  for (auto _ : state) adamw_step(a, ++step, p, g, m, v);
  state.SetLabel("grad " + std::string(dtype_name(grad_dtype)));
  bench::set_bytes(state, 6 * p.nbytes() + g.nbytes());
}

// SGD with Nesterov momentum and weight decay: reads p, g, buf; writes p, buf.
void BM_Sgd(benchmark::State& state) {
  const auto grad_dtype = DType(state.range(0));
  Tensor p = bench::random_tensor({kB0Parameters}, DType::f32), g = bench::random_tensor({kB0Parameters}, grad_dtype);
  Tensor buf = Tensor::zeros({kB0Parameters}, DType::f32);
  const SgdParams s{1e-3f, 0.9f, 0.0f, 1e-4f, true};
  bool first = true;
  for (auto _ : state) {
    sgd_step(s, p, g, &buf, first);
    first = false;
  }
  state.SetLabel("grad " + std::string(dtype_name(grad_dtype)));
  bench::set_bytes(state, 4 * p.nbytes() + g.nbytes());
}

// The norm alone (max_norm large enough that nothing is scaled): one read of the gradients.
void BM_ClipGradNorm(benchmark::State& state) {
  Tensor g = bench::random_tensor({kB0Parameters}, DType::f32, Device::cpu(), -1e-4f, 1e-4f);
  Tensor* grads[] = {&g};
  for (auto _ : state) benchmark::DoNotOptimize(clip_grad_norm(grads, 1e9f));
  bench::set_bytes(state, g.nbytes());
}

// Unscale with the inf check: read and write every gradient.
void BM_NonFiniteCheckAndUnscale(benchmark::State& state) {
  Tensor g = bench::random_tensor({kB0Parameters}, DType::f32);
  Tensor found = Tensor::zeros({1}, DType::f32);
  Tensor* grads[] = {&g};
  for (auto _ : state) non_finite_check_and_unscale(grads, found, 1.0f);
  bench::set_bytes(state, 2 * g.nbytes());
}

BENCHMARK(BM_AdamW)->Arg(int64_t(DType::f32))->Arg(int64_t(DType::f16))->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Sgd)->Arg(int64_t(DType::f32))->Arg(int64_t(DType::f16))->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ClipGradNorm)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_NonFiniteCheckAndUnscale)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace sg
