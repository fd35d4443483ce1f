// CPU activations: bytes moved per second (read x, write y; backward reads x and dy).
#include <benchmark/benchmark.h>

#include "benchmarks/cpu/bench_util.h"
#include "kernels/activation.h"

namespace sg {
namespace {

void BM_ActivationForward(benchmark::State& state) {
  const auto kind = Activation(state.range(0));
  const auto dtype = DType(state.range(1));
  Tensor x = bench::random_tensor({32, 56, 56, 96}, dtype);  // an expanded B0 stage-2 activation
  Tensor y = Tensor::empty(x.shape(), dtype);
  for (auto _ : state) activation_forward(kind, x, y);
  state.SetLabel(std::string(activation_name(kind)) + " " + std::string(dtype_name(dtype)));
  bench::set_bytes(state, 2 * x.nbytes());
}

void BM_ActivationBackward(benchmark::State& state) {
  const auto kind = Activation(state.range(0));
  const auto dtype = DType(state.range(1));
  Tensor x = bench::random_tensor({32, 56, 56, 96}, dtype);
  Tensor dy = bench::random_tensor({32, 56, 56, 96}, dtype);
  Tensor dx = Tensor::empty(x.shape(), dtype);
  for (auto _ : state) activation_backward(kind, x, dy, dx);
  state.SetLabel(std::string(activation_name(kind)) + " " + std::string(dtype_name(dtype)));
  bench::set_bytes(state, 3 * x.nbytes());
}

void activation_args(benchmark::internal::Benchmark* b) {
  for (Activation kind : {Activation::relu6, Activation::swish, Activation::mish})
    for (DType dtype : {DType::f32, DType::f16}) b->Args({int64_t(kind), int64_t(dtype)});
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

BENCHMARK(BM_ActivationForward)->Apply(activation_args);
BENCHMARK(BM_ActivationBackward)->Apply(activation_args);

}  // namespace
}  // namespace sg
