// CPU fully connected layer on EfficientNet-B0's head (1280 features -> 1000 ImageNet classes,
// and -> 5 outputs of the binned PANDA head): FLOP/s.
#include <benchmark/benchmark.h>

#include "benchmarks/cpu/bench_util.h"
#include "kernels/linear.h"

namespace sg {
namespace {

constexpr int64_t kFeatures = 1280;  // B0's head width

// args: batch, outputs, dtype
void BM_LinearForward(benchmark::State& state) {
  const int64_t M = state.range(0), N = state.range(1);
  const auto dtype = DType(state.range(2));
  Tensor x = bench::random_tensor({M, kFeatures}, dtype), w = bench::random_tensor({N, kFeatures}, dtype);
  Tensor b = bench::random_tensor({N}, dtype), y = Tensor::empty({M, N}, dtype);
  for (auto _ : state) linear_forward(x, w, &b, y);
  state.SetLabel(std::string(dtype_name(dtype)));
  bench::set_flops(state, 2.0 * double(M * N * kFeatures));
}

// dx, dw and dbias: two GEMMs of the forward's size.
void BM_LinearBackward(benchmark::State& state) {
  const int64_t M = state.range(0), N = state.range(1);
  const auto dtype = DType(state.range(2));
  Tensor x = bench::random_tensor({M, kFeatures}, dtype), w = bench::random_tensor({N, kFeatures}, dtype);
  Tensor dy = bench::random_tensor({M, N}, dtype);
  Tensor dx = Tensor::empty({M, kFeatures}, dtype), dw = Tensor::empty({N, kFeatures}, dtype);
  Tensor db = Tensor::empty({N}, dtype);
  for (auto _ : state) {
    linear_backward_input(dy, w, dx);
    linear_backward_weight(x, dy, dw, &db);
  }
  state.SetLabel(std::string(dtype_name(dtype)));
  bench::set_flops(state, 4.0 * double(M * N * kFeatures));
}

void head_args(benchmark::internal::Benchmark* b) {
  for (int64_t batch : {32, 256})
    for (int64_t outputs : {1000, 5})
      for (DType dtype : {DType::f32, DType::f16}) b->Args({batch, outputs, int64_t(dtype)});
  b->ArgNames({"batch", "out", "dtype"})->Unit(benchmark::kMicrosecond)->UseRealTime();
}

BENCHMARK(BM_LinearForward)->Apply(head_args);
BENCHMARK(BM_LinearBackward)->Apply(head_args);

}  // namespace
}  // namespace sg
