// A whole EfficientNet-B0 training step on the GPU (forward, backward, AdamW), op by op at
// B0's real shapes. Compare with benchmarks/pytorch_b0_step.py --device cuda [--amp].
#include <benchmark/benchmark.h>

#include "benchmarks/b0_training_step.h"
#include "benchmarks/cuda/bench_cuda_util.h"

namespace sg {
namespace {

void BM_CudaB0TrainingStep(benchmark::State& state) {
  if (bench::skip_without_gpu(state)) return;
  const int64_t batch = state.range(0), image = state.range(1);
  const auto dtype = DType(state.range(2));
  bench::B0TrainingStep step(Device::cuda(0), dtype, batch, image);
  bench::GpuTimer timer;
  timer.run(state, [&] {
    step.forward();
    step.backward();
    step.optimizer_step();
  });
  state.SetLabel("B0 fwd+bwd+AdamW " + std::to_string(image) + "px " + std::string(dtype_name(dtype)));
  state.counters["img/s"] = benchmark::Counter(double(batch), benchmark::Counter::kIsIterationInvariantRate);
}

BENCHMARK(BM_CudaB0TrainingStep)
    ->Args({32, 224, int64_t(DType::f32)})
    ->Args({32, 224, int64_t(DType::f16)})
    ->Args({32, 224, int64_t(DType::bf16)})
    ->Args({8, 512, int64_t(DType::f16)})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace sg
