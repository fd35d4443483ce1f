// CPU pooling: bytes moved per second. EfficientNet-B0 head shapes: the global pools over
// 7x7x1280 (224 px) and 16x16x1280 (512 px); a 3x3/2 max/avg pool on a 56x56x144 activation.
#include <benchmark/benchmark.h>

#include "benchmarks/cpu/bench_util.h"
#include "kernels/pooling.h"

namespace sg {
namespace {

constexpr int64_t kBatch = 8;  // runs in well under a second on 2 cores

// Args: spatial extent, dtype.
void BM_GlobalAvgPoolForward(benchmark::State& state) {
  const int64_t hw = state.range(0);
  const auto dtype = DType(state.range(1));
  Tensor x = bench::random_tensor({kBatch, hw, hw, 1280}, dtype);
  Tensor y = Tensor::empty({kBatch, 1280}, dtype);
  for (auto _ : state) global_avg_pool_forward(x, y);
  state.SetLabel(std::string(dtype_name(dtype)));
  bench::set_bytes(state, x.nbytes() + y.nbytes());
}

void BM_GlobalMaxPoolForward(benchmark::State& state) {
  const int64_t hw = state.range(0);
  const auto dtype = DType(state.range(1));
  Tensor x = bench::random_tensor({kBatch, hw, hw, 1280}, dtype);
  Tensor y = Tensor::empty({kBatch, 1280}, dtype), argmax = Tensor::empty({kBatch, 1280}, DType::i32);
  for (auto _ : state) global_max_pool_forward(x, y, &argmax);
  state.SetLabel(std::string(dtype_name(dtype)));
  bench::set_bytes(state, x.nbytes() + y.nbytes() + argmax.nbytes());
}

void BM_GemPoolForward(benchmark::State& state) {
  const int64_t hw = state.range(0);
  const auto dtype = DType(state.range(1));
  Tensor x = bench::random_tensor({kBatch, hw, hw, 1280}, dtype, Device::cpu(), 0, 2);
  Tensor p = Tensor::from_floats({3.0f}, {1});
  Tensor y = Tensor::empty({kBatch, 1280}, dtype);
  for (auto _ : state) gem_pool_forward(x, p, y);
  state.SetLabel(std::string(dtype_name(dtype)));
  bench::set_bytes(state, x.nbytes() + y.nbytes());
}

void BM_GemPoolBackward(benchmark::State& state) {
  const int64_t hw = state.range(0);
  const auto dtype = DType(state.range(1));
  Tensor x = bench::random_tensor({kBatch, hw, hw, 1280}, dtype, Device::cpu(), 0, 2);
  Tensor p = Tensor::from_floats({3.0f}, {1}), dp = Tensor::empty({1}, DType::f32);
  Tensor dy = bench::random_tensor({kBatch, 1280}, dtype);
  Tensor dx = Tensor::empty(x.shape(), dtype);
  for (auto _ : state) gem_pool_backward(x, p, dy, dx, dp);
  state.SetLabel(std::string(dtype_name(dtype)));
  bench::set_bytes(state, 3 * x.nbytes());  // x read twice, dx written
}

void BM_MaxPool2dForward(benchmark::State& state) {
  const auto dtype = DType(state.range(0));
  const Pool2dParams p = make_pool2d_params(3, 2, 1);
  Tensor x = bench::random_tensor({kBatch, 56, 56, 144}, dtype);
  Tensor y = Tensor::empty({kBatch, 28, 28, 144}, dtype), argmax = Tensor::empty({kBatch, 28, 28, 144}, DType::i32);
  for (auto _ : state) max_pool2d_forward(p, x, y, &argmax);
  state.SetLabel(std::string(dtype_name(dtype)));
  bench::set_bytes(state, x.nbytes() + y.nbytes() + argmax.nbytes());
}

void BM_MaxPool2dBackward(benchmark::State& state) {
  const auto dtype = DType(state.range(0));
  const Pool2dParams p = make_pool2d_params(3, 2, 1);
  Tensor x = bench::random_tensor({kBatch, 56, 56, 144}, dtype);
  Tensor y = Tensor::empty({kBatch, 28, 28, 144}, dtype), argmax = Tensor::empty({kBatch, 28, 28, 144}, DType::i32);
  max_pool2d_forward(p, x, y, &argmax);
  Tensor dy = bench::random_tensor(y.shape(), dtype), dx = Tensor::empty(x.shape(), dtype);
  for (auto _ : state) max_pool2d_backward(p, argmax, dy, dx);
  state.SetLabel(std::string(dtype_name(dtype)));
  bench::set_bytes(state, dy.nbytes() + argmax.nbytes() + dx.nbytes());
}

void BM_AvgPool2dForward(benchmark::State& state) {
  const auto dtype = DType(state.range(0));
  const Pool2dParams p = make_pool2d_params(3, 2, 1);
  Tensor x = bench::random_tensor({kBatch, 56, 56, 144}, dtype);
  Tensor y = Tensor::empty({kBatch, 28, 28, 144}, dtype);
  for (auto _ : state) avg_pool2d_forward(p, x, y);
  state.SetLabel(std::string(dtype_name(dtype)));
  bench::set_bytes(state, x.nbytes() + y.nbytes());
}

void global_args(benchmark::internal::Benchmark* b) {
  for (int64_t hw : {7, 16})
    for (DType dtype : {DType::f32, DType::f16}) b->Args({hw, int64_t(dtype)});
  b->Unit(benchmark::kMicrosecond)->UseRealTime();
}

void dtype_args(benchmark::internal::Benchmark* b) {
  for (DType dtype : {DType::f32, DType::f16}) b->Arg(int64_t(dtype));
  b->Unit(benchmark::kMicrosecond)->UseRealTime();
}

BENCHMARK(BM_GlobalAvgPoolForward)->Apply(global_args);
BENCHMARK(BM_GlobalMaxPoolForward)->Apply(global_args);
BENCHMARK(BM_GemPoolForward)->Apply(global_args);
BENCHMARK(BM_GemPoolBackward)->Apply(global_args);
BENCHMARK(BM_MaxPool2dForward)->Apply(dtype_args);
BENCHMARK(BM_MaxPool2dBackward)->Apply(dtype_args);
BENCHMARK(BM_AvgPool2dForward)->Apply(dtype_args);

}  // namespace
}  // namespace sg
