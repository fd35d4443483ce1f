// CPU batch norm (+ fused activation), bias + activation, dropout and casts: bytes moved per
// second. Shapes are EfficientNet-B0 activations at 224 px with a small batch (2 cores).
#include <benchmark/benchmark.h>

#include "benchmarks/cpu/bench_util.h"
#include "kernels/activation.h"
#include "kernels/batch_norm.h"
#include "kernels/bias_activation.h"
#include "kernels/cast.h"
#include "kernels/dropout.h"

namespace sg {
namespace {

// B0 layers at 224 px: stage-2 expanded [56, 56, 96 -> 144], stage-4 [14, 14, 480], head [7, 7, 1280].
const int64_t kLayers[][3] = {{112, 112, 32}, {56, 56, 144}, {14, 14, 480}, {7, 7, 1280}};
constexpr int64_t kBatch = 4;

Shape layer_shape(int64_t index) {
  const auto& l = kLayers[index];
  return Shape{kBatch, l[0], l[1], l[2]};
}

std::string label(const Shape& s, DType dtype, Activation act) {
  return s.str() + " " + std::string(dtype_name(dtype)) + " " + std::string(activation_name(act));
}

void BM_BatchNormForwardTrain(benchmark::State& state) {
  const Shape shape = layer_shape(state.range(0));
  const auto dtype = DType(state.range(1));
  const auto act = Activation(state.range(2));
  const int64_t C = shape[-1];
  const Tensor x = bench::random_tensor(shape, dtype);
  const Tensor gamma = bench::random_tensor({C}, DType::f32, Device::cpu(), 0.5f, 1.5f);
  const Tensor beta = bench::random_tensor({C}, DType::f32);
  Tensor rm = Tensor::zeros({C}, DType::f32), rv = Tensor::zeros({C}, DType::f32);
  Tensor y = Tensor::empty(shape, dtype), sm = Tensor::empty({C}, DType::f32), si = Tensor::empty({C}, DType::f32);
  BatchNormParams p;
  p.activation = act;
  for (auto _ : state) batch_norm_forward_train(p, x, gamma, beta, rm, rv, y, sm, si);
  state.SetLabel(label(shape, dtype, act));
  bench::set_bytes(state, 3 * x.nbytes());  // read x twice (statistics, apply), write y
}

void BM_BatchNormBackward(benchmark::State& state) {
  const Shape shape = layer_shape(state.range(0));
  const auto dtype = DType(state.range(1));
  const auto act = Activation(state.range(2));
  const int64_t C = shape[-1];
  const Tensor x = bench::random_tensor(shape, dtype), dy = bench::random_tensor(shape, dtype);
  const Tensor gamma = bench::random_tensor({C}, DType::f32, Device::cpu(), 0.5f, 1.5f);
  const Tensor beta = bench::random_tensor({C}, DType::f32);
  Tensor rm = Tensor::zeros({C}, DType::f32), rv = Tensor::zeros({C}, DType::f32);
  Tensor y = Tensor::empty(shape, dtype), sm = Tensor::empty({C}, DType::f32), si = Tensor::empty({C}, DType::f32);
  Tensor dx = Tensor::empty(shape, dtype), dgamma = Tensor::empty({C}, DType::f32),
         dbeta = Tensor::empty({C}, DType::f32);
  BatchNormParams p;
  p.activation = act;
  batch_norm_forward_train(p, x, gamma, beta, rm, rv, y, sm, si);
  for (auto _ : state) batch_norm_backward(p, x, dy, gamma, beta, sm, si, dx, dgamma, dbeta);
  state.SetLabel(label(shape, dtype, act));
  bench::set_bytes(state, 5 * x.nbytes());  // read x, dy twice; write dx
}

void bn_args(benchmark::internal::Benchmark* b) {
  for (int64_t layer = 0; layer < 4; ++layer)
    for (DType dtype : {DType::f32, DType::f16}) b->Args({layer, int64_t(dtype), int64_t(Activation::swish)});
  b->Args({1, int64_t(DType::f32), int64_t(Activation::identity)});
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

void BM_BiasActivationForward(benchmark::State& state) {
  const Shape shape = layer_shape(state.range(0));
  const auto dtype = DType(state.range(1));
  const Tensor x = bench::random_tensor(shape, dtype), bias = bench::random_tensor({shape[-1]}, DType::f32);
  Tensor y = Tensor::empty(shape, dtype);
  for (auto _ : state) bias_activation_forward(Activation::swish, x, bias, y);
  state.SetLabel(label(shape, dtype, Activation::swish));
  bench::set_bytes(state, 2 * x.nbytes());
}

void BM_BiasActivationBackward(benchmark::State& state) {
  const Shape shape = layer_shape(state.range(0));
  const auto dtype = DType(state.range(1));
  const Tensor x = bench::random_tensor(shape, dtype), dy = bench::random_tensor(shape, dtype);
  const Tensor bias = bench::random_tensor({shape[-1]}, DType::f32);
  Tensor dx = Tensor::empty(shape, dtype), dbias = Tensor::empty({shape[-1]}, DType::f32);
  for (auto _ : state) bias_activation_backward(Activation::swish, x, bias, dy, dx, dbias);
  state.SetLabel(label(shape, dtype, Activation::swish));
  bench::set_bytes(state, 3 * x.nbytes());
}

void layer_dtype_args(benchmark::internal::Benchmark* b) {
  for (int64_t layer : {1, 3})
    for (DType dtype : {DType::f32, DType::f16}) b->Args({layer, int64_t(dtype)});
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

void BM_Dropout(benchmark::State& state) {
  const auto dtype = DType(state.range(0));
  const Tensor x = bench::random_tensor({kBatch, 56, 56, 144}, dtype);
  Tensor y = Tensor::empty(x.shape(), dtype);
  DropoutParams p{0.2, 1234, 0};
  for (auto _ : state) {
    dropout_forward(p, x, y);
    ++p.offset;
  }
  state.SetLabel(x.shape().str() + " " + std::string(dtype_name(dtype)));
  bench::set_bytes(state, 2 * x.nbytes());
}

void BM_DropConnect(benchmark::State& state) {
  const auto dtype = DType(state.range(0));
  const Tensor x = bench::random_tensor({kBatch, 56, 56, 144}, dtype);
  Tensor y = Tensor::empty(x.shape(), dtype);
  DropoutParams p{0.2, 1234, 0};
  for (auto _ : state) {
    drop_connect_forward(p, x, y);
    ++p.offset;
  }
  state.SetLabel(x.shape().str() + " " + std::string(dtype_name(dtype)));
  bench::set_bytes(state, 2 * x.nbytes());
}

void BM_Cast(benchmark::State& state) {
  const auto from = DType(state.range(0)), to = DType(state.range(1));
  const Shape shape{kBatch, 224, 224, 3 * 16};  // an input-sized batch, wide enough to time
  Tensor src = from == DType::u8 ? Tensor::zeros(shape, DType::u8) : bench::random_tensor(shape, from);
  Tensor dst = Tensor::empty(shape, to);
  for (auto _ : state) cast(src, dst);
  state.SetLabel(std::string(dtype_name(from)) + " -> " + std::string(dtype_name(to)));
  bench::set_bytes(state, src.nbytes() + dst.nbytes());
}

BENCHMARK(BM_BatchNormForwardTrain)->Apply(bn_args);
BENCHMARK(BM_BatchNormBackward)->Apply(bn_args);
BENCHMARK(BM_BiasActivationForward)->Apply(layer_dtype_args);
BENCHMARK(BM_BiasActivationBackward)->Apply(layer_dtype_args);
BENCHMARK(BM_Dropout)->Arg(int64_t(DType::f32))->Arg(int64_t(DType::f16))->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_DropConnect)->Arg(int64_t(DType::f32))->Arg(int64_t(DType::f16))->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Cast)
    ->Args({int64_t(DType::f32), int64_t(DType::f16)})
    ->Args({int64_t(DType::f16), int64_t(DType::f32)})
    ->Args({int64_t(DType::f32), int64_t(DType::bf16)})
    ->Args({int64_t(DType::bf16), int64_t(DType::f16)})
    ->Args({int64_t(DType::u8), int64_t(DType::f16)})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace sg
