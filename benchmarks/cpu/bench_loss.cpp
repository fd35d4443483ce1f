// CPU losses on the head outputs (forward + backward together, as a training step runs them):
// bytes of logits read and gradient written per second.
#include <benchmark/benchmark.h>

#include "benchmarks/cpu/bench_util.h"
#include "kernels/loss.h"

namespace sg {
namespace {

// args: batch, classes, dtype
void BM_CrossEntropy(benchmark::State& state) {
  const int64_t N = state.range(0), C = state.range(1);
  const auto dtype = DType(state.range(2));
  Tensor logits = bench::random_tensor({N, C}, dtype, Device::cpu(), -5, 5);
  std::vector<float> t(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) t[size_t(i)] = float(i % C);
  Tensor targets = Tensor::from_floats(t, {N}, DType::i32);
  Tensor loss = Tensor::empty({1}, DType::f32), grad = Tensor::empty({N, C}, dtype);
  const CrossEntropyParams p{Reduction::mean, 0.1f};
  for (auto _ : state) {
    cross_entropy_forward(p, logits, targets, loss);
    cross_entropy_backward(p, logits, targets, 1.0f, grad);
  }
  state.SetLabel(std::string(dtype_name(dtype)));
  bench::set_bytes(state, 3 * logits.nbytes());  // read twice, write the gradient once
}

// The binned head: BCE with logits over [batch, 5].
void BM_BceWithLogits(benchmark::State& state) {
  const int64_t N = state.range(0), K = state.range(1);
  const auto dtype = DType(state.range(2));
  Tensor x = bench::random_tensor({N, K}, dtype, Device::cpu(), -5, 5);
  Tensor t = bench::random_tensor({N, K}, DType::f32, Device::cpu(), 0, 1);
  Tensor loss = Tensor::empty({1}, DType::f32), grad = Tensor::empty({N, K}, dtype);
  for (auto _ : state) {
    bce_with_logits_forward(Reduction::mean, x, t, loss);
    bce_with_logits_backward(Reduction::mean, x, t, 1.0f, grad);
  }
  state.SetLabel(std::string(dtype_name(dtype)));
  bench::set_bytes(state, 3 * x.nbytes() + 2 * t.nbytes());
}

void loss_args(benchmark::internal::Benchmark* b, std::initializer_list<int64_t> widths) {
  for (int64_t batch : {32, 256})
    for (int64_t width : widths)
      for (DType dtype : {DType::f32, DType::f16}) b->Args({batch, width, int64_t(dtype)});
  b->ArgNames({"batch", "width", "dtype"})->Unit(benchmark::kMicrosecond)->UseRealTime();
}

BENCHMARK(BM_CrossEntropy)->Apply([](benchmark::internal::Benchmark* b) { loss_args(b, {6, 1000}); });
BENCHMARK(BM_BceWithLogits)->Apply([](benchmark::internal::Benchmark* b) { loss_args(b, {5}); });

}  // namespace
}  // namespace sg
