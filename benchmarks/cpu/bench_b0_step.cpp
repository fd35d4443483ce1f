// A whole EfficientNet-B0 training step on the CPU (forward, backward, AdamW), op by op at
// B0's real shapes: what issue 3's network will cost. Reported as images per second.
#include <benchmark/benchmark.h>

#include "benchmarks/b0_training_step.h"

namespace sg {
namespace {

void BM_B0TrainingStep(benchmark::State& state) {
  const int64_t batch = state.range(0), image = state.range(1);
  const auto dtype = DType(state.range(2));
  bench::B0TrainingStep step(Device::cpu(), dtype, batch, image);
  for (auto _ : state) {
    step.forward();
    step.backward();
    step.optimizer_step();
  }
  state.SetLabel("B0 fwd+bwd+AdamW " + std::to_string(image) + "px " + std::string(dtype_name(dtype)));
  state.counters["img/s"] = benchmark::Counter(double(batch), benchmark::Counter::kIsIterationInvariantRate);
}

void BM_B0Forward(benchmark::State& state) {
  const int64_t batch = state.range(0), image = state.range(1);
  const auto dtype = DType(state.range(2));
  bench::B0TrainingStep step(Device::cpu(), dtype, batch, image);
  for (auto _ : state) step.forward();
  state.SetLabel("B0 forward (train-mode BN) " + std::to_string(image) + "px " + std::string(dtype_name(dtype)));
  state.counters["img/s"] = benchmark::Counter(double(batch), benchmark::Counter::kIsIterationInvariantRate);
}

// Inference: eval-mode batch norm, no loss (PyTorch: model.eval() under torch.no_grad()).
void BM_B0Inference(benchmark::State& state) {
  const int64_t batch = state.range(0), image = state.range(1);
  const auto dtype = DType(state.range(2));
  bench::B0TrainingStep step(Device::cpu(), dtype, batch, image);
  for (auto _ : state) step.forward_eval();
  state.SetLabel("B0 inference (eval-mode BN) " + std::to_string(image) + "px " + std::string(dtype_name(dtype)));
  state.counters["img/s"] = benchmark::Counter(double(batch), benchmark::Counter::kIsIterationInvariantRate);
}

// Inference with kernels/inference_fusion.h: BN folded into the convolutions, activations fused.
void BM_B0InferenceFused(benchmark::State& state) {
  const int64_t batch = state.range(0), image = state.range(1);
  const auto dtype = DType(state.range(2));
  bench::B0TrainingStep step(Device::cpu(), dtype, batch, image);
  for (auto _ : state) step.forward_inference_fused();
  state.SetLabel("B0 inference, BN folded " + std::to_string(image) + "px " + std::string(dtype_name(dtype)));
  state.counters["img/s"] = benchmark::Counter(double(batch), benchmark::Counter::kIsIterationInvariantRate);
}

BENCHMARK(BM_B0InferenceFused)->Args({1, 224, int64_t(DType::f32)})->Args({8, 224, int64_t(DType::f32)})
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_B0Inference)->Args({1, 224, int64_t(DType::f32)})->Args({8, 224, int64_t(DType::f32)})
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_B0Forward)->Args({1, 224, int64_t(DType::f32)})->Args({8, 224, int64_t(DType::f32)})
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_B0TrainingStep)->Args({1, 224, int64_t(DType::f32)})->Args({8, 224, int64_t(DType::f32)})
    ->Args({8, 224, int64_t(DType::f16)})->Args({8, 224, int64_t(DType::bf16)})
    ->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace sg
