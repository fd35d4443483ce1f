// CUDA batch norm (+ fused activation), bias + activation, dropout and casts: achieved
// bandwidth on EfficientNet-B0 activations at 224 and 512 px, batch 32, beside cuDNN's
// NHWC batch norm (cudnnBatchNormalizationForwardTraining / Backward) on the same shapes.
#include <benchmark/benchmark.h>

#if SLIDEGRADE_HAVE_CUDNN
#include <cudnn.h>
#endif

#include "benchmarks/cuda/bench_cuda_util.h"
#include "kernels/activation.h"
#include "kernels/batch_norm.h"
#include "kernels/bias_activation.h"
#include "kernels/cast.h"
#include "kernels/dropout.h"

namespace sg {
namespace {

constexpr int64_t kBatch = 32;

// B0 activations as a fraction of the input size: stem [s/2, s/2, 32], stage-2 expanded
// [s/4, s/4, 144], stage-4 expanded [s/16, s/16, 480], head [s/32, s/32, 1280].
Shape layer_shape(int64_t image, int64_t layer) {
  const int64_t div[] = {2, 4, 16, 32}, channels[] = {32, 144, 480, 1280};
  const int64_t s = image / div[layer];
  return Shape{kBatch, s, s, channels[layer]};
}

std::string label(const Shape& s, DType dtype, Activation act) {
  return s.str() + " " + std::string(dtype_name(dtype)) + " " + std::string(activation_name(act));
}

struct BnTensors {
  Tensor x, dy, gamma, beta, rm, rv, y, sm, si, dx, dgamma, dbeta;
  BnTensors(const Shape& shape, DType dtype) {
    const Device gpu = Device::cuda(0);
    const int64_t C = shape[-1];
    x = bench::random_tensor(shape, dtype, gpu);
    dy = bench::random_tensor(shape, dtype, gpu);
    gamma = bench::random_tensor({C}, DType::f32, gpu, 0.5f, 1.5f);
    beta = bench::random_tensor({C}, DType::f32, gpu);
    rm = Tensor::zeros({C}, DType::f32, gpu);
    rv = bench::random_tensor({C}, DType::f32, gpu, 0.5f, 1.5f);
    y = Tensor::empty(shape, dtype, gpu);
    dx = Tensor::empty(shape, dtype, gpu);
    sm = Tensor::empty({C}, DType::f32, gpu);
    si = Tensor::empty({C}, DType::f32, gpu);
    dgamma = Tensor::empty({C}, DType::f32, gpu);
    dbeta = Tensor::empty({C}, DType::f32, gpu);
  }
};

void BM_CudaBatchNormForwardTrain(benchmark::State& state) {
  if (bench::skip_without_gpu(state)) return;
  const Shape shape = layer_shape(state.range(0), state.range(1));
  const auto dtype = DType(state.range(2));
  const auto act = Activation(state.range(3));
  BnTensors t(shape, dtype);
  BatchNormParams p;
  p.activation = act;
  bench::GpuTimer timer;
  timer.run(state, [&] { batch_norm_forward_train(p, t.x, t.gamma, t.beta, t.rm, t.rv, t.y, t.sm, t.si); });
  state.SetLabel(label(shape, dtype, act));
  bench::set_bytes(state, 3 * t.x.nbytes());  // x read twice, y written
}

void BM_CudaBatchNormBackward(benchmark::State& state) {
  if (bench::skip_without_gpu(state)) return;
  const Shape shape = layer_shape(state.range(0), state.range(1));
  const auto dtype = DType(state.range(2));
  const auto act = Activation(state.range(3));
  BnTensors t(shape, dtype);
  BatchNormParams p;
  p.activation = act;
  batch_norm_forward_train(p, t.x, t.gamma, t.beta, t.rm, t.rv, t.y, t.sm, t.si);
  bench::GpuTimer timer;
  timer.run(state, [&] {
    batch_norm_backward(p, t.x, t.dy, t.gamma, t.beta, t.sm, t.si, t.dx, t.dgamma, t.dbeta);
  });
  state.SetLabel(label(shape, dtype, act));
  bench::set_bytes(state, 5 * t.x.nbytes());  // x and dy read twice, dx written
}

void bn_args(benchmark::internal::Benchmark* b) {
  for (int64_t image : {224, 512})
    for (int64_t layer = 0; layer < 4; ++layer)
      for (DType dtype : {DType::f32, DType::f16, DType::bf16})
        b->Args({image, layer, int64_t(dtype), int64_t(Activation::identity)});
  for (int64_t layer = 0; layer < 4; ++layer)
    b->Args({224, layer, int64_t(DType::f16), int64_t(Activation::swish)});
  b->UseManualTime()->Unit(benchmark::kMicrosecond);
}

#if SLIDEGRADE_HAVE_CUDNN
#define SG_CUDNN_CHECK(call)                                                                         \
  do {                                                                                               \
    const cudnnStatus_t sg_status_ = (call);                                                         \
    if (sg_status_ != CUDNN_STATUS_SUCCESS)                                                          \
      throw Error(detail::concat(#call, " failed: ", cudnnGetErrorString(sg_status_)));              \
  } while (0)

// RAII for the cuDNN handle and the two descriptors of a batch norm.
struct CudnnBatchNorm {
  cudnnHandle_t handle = nullptr;
  cudnnTensorDescriptor_t x_desc = nullptr, param_desc = nullptr;
  CudnnBatchNorm(const Shape& s, DType dtype) {
    SG_CUDNN_CHECK(cudnnCreate(&handle));
    SG_CUDNN_CHECK(cudnnCreateTensorDescriptor(&x_desc));
    SG_CUDNN_CHECK(cudnnCreateTensorDescriptor(&param_desc));
    const cudnnDataType_t t = dtype == DType::f32   ? CUDNN_DATA_FLOAT
                              : dtype == DType::f16 ? CUDNN_DATA_HALF
                                                    : CUDNN_DATA_BFLOAT16;
    SG_CUDNN_CHECK(cudnnSetTensor4dDescriptor(x_desc, CUDNN_TENSOR_NHWC, t, int(s[0]), int(s[3]), int(s[1]), int(s[2])));
    SG_CUDNN_CHECK(cudnnDeriveBNTensorDescriptor(param_desc, x_desc, CUDNN_BATCHNORM_SPATIAL_PERSISTENT));
  }
  ~CudnnBatchNorm() {
    cudnnDestroyTensorDescriptor(param_desc);
    cudnnDestroyTensorDescriptor(x_desc);
    cudnnDestroy(handle);
  }
  CudnnBatchNorm(const CudnnBatchNorm&) = delete;
  CudnnBatchNorm& operator=(const CudnnBatchNorm&) = delete;
};

void BM_CudnnBatchNormForwardTrain(benchmark::State& state) {
  if (bench::skip_without_gpu(state)) return;
  const Shape shape = layer_shape(state.range(0), state.range(1));
  const auto dtype = DType(state.range(2));
  BnTensors t(shape, dtype);
  CudnnBatchNorm bn(shape, dtype);
  const float one = 1.0f, zero = 0.0f;
  bench::GpuTimer timer;
  timer.run(state, [&] {
    SG_CUDNN_CHECK(cudnnBatchNormalizationForwardTraining(
        bn.handle, CUDNN_BATCHNORM_SPATIAL_PERSISTENT, &one, &zero, bn.x_desc, t.x.data(), bn.x_desc, t.y.data(),
        bn.param_desc, t.gamma.data(), t.beta.data(), 0.1, t.rm.data(), t.rv.data(), 1e-5, t.sm.data(),
        t.si.data()));
  });
  state.SetLabel("cuDNN " + label(shape, dtype, Activation::identity));
  bench::set_bytes(state, 3 * t.x.nbytes());
}

void BM_CudnnBatchNormBackward(benchmark::State& state) {
  if (bench::skip_without_gpu(state)) return;
  const Shape shape = layer_shape(state.range(0), state.range(1));
  const auto dtype = DType(state.range(2));
  BnTensors t(shape, dtype);
  CudnnBatchNorm bn(shape, dtype);
  const float one = 1.0f, zero = 0.0f;
  SG_CUDNN_CHECK(cudnnBatchNormalizationForwardTraining(
      bn.handle, CUDNN_BATCHNORM_SPATIAL_PERSISTENT, &one, &zero, bn.x_desc, t.x.data(), bn.x_desc, t.y.data(),
      bn.param_desc, t.gamma.data(), t.beta.data(), 0.1, t.rm.data(), t.rv.data(), 1e-5, t.sm.data(), t.si.data()));
  bench::GpuTimer timer;
  timer.run(state, [&] {
    SG_CUDNN_CHECK(cudnnBatchNormalizationBackward(
        bn.handle, CUDNN_BATCHNORM_SPATIAL_PERSISTENT, &one, &zero, &one, &zero, bn.x_desc, t.x.data(), bn.x_desc,
        t.dy.data(), bn.x_desc, t.dx.data(), bn.param_desc, t.gamma.data(), t.dgamma.data(), t.dbeta.data(), 1e-5,
        t.sm.data(), t.si.data()));
  });
  state.SetLabel("cuDNN " + label(shape, dtype, Activation::identity));
  bench::set_bytes(state, 5 * t.x.nbytes());
}

void cudnn_args(benchmark::internal::Benchmark* b) {
  for (int64_t image : {224, 512})
    for (int64_t layer = 0; layer < 4; ++layer)
      for (DType dtype : {DType::f32, DType::f16, DType::bf16}) b->Args({image, layer, int64_t(dtype)});
  b->UseManualTime()->Unit(benchmark::kMicrosecond);
}

BENCHMARK(BM_CudnnBatchNormForwardTrain)->Apply(cudnn_args);
BENCHMARK(BM_CudnnBatchNormBackward)->Apply(cudnn_args);
#endif

void BM_CudaBiasActivationBackward(benchmark::State& state) {
  if (bench::skip_without_gpu(state)) return;
  const Shape shape = layer_shape(224, state.range(0));
  const auto dtype = DType(state.range(1));
  const Device gpu = Device::cuda(0);
  const Tensor x = bench::random_tensor(shape, dtype, gpu), dy = bench::random_tensor(shape, dtype, gpu);
  const Tensor bias = bench::random_tensor({shape[-1]}, DType::f32, gpu);
  Tensor dx = Tensor::empty(shape, dtype, gpu), dbias = Tensor::empty({shape[-1]}, DType::f32, gpu);
  bench::GpuTimer timer;
  timer.run(state, [&] { bias_activation_backward(Activation::swish, x, bias, dy, dx, dbias); });
  state.SetLabel(label(shape, dtype, Activation::swish));
  bench::set_bytes(state, 3 * x.nbytes());
}

void BM_CudaDropout(benchmark::State& state) {
  if (bench::skip_without_gpu(state)) return;
  const auto dtype = DType(state.range(0));
  const Shape shape = layer_shape(224, 1);
  const Tensor x = bench::random_tensor(shape, dtype, Device::cuda(0));
  Tensor y = Tensor::empty(shape, dtype, Device::cuda(0));
  DropoutParams p{0.2, 1234, 0};
  bench::GpuTimer timer;
  timer.run(state, [&] { dropout_forward(p, x, y); });
  state.SetLabel(shape.str() + " " + std::string(dtype_name(dtype)));
  bench::set_bytes(state, 2 * x.nbytes());
}

void BM_CudaCast(benchmark::State& state) {
  if (bench::skip_without_gpu(state)) return;
  const auto from = DType(state.range(0)), to = DType(state.range(1));
  const Shape shape = layer_shape(224, 1);
  const Device gpu = Device::cuda(0);
  const Tensor src = from == DType::u8 ? Tensor::zeros(shape, DType::u8, gpu) : bench::random_tensor(shape, from, gpu);
  Tensor dst = Tensor::empty(shape, to, gpu);
  bench::GpuTimer timer;
  timer.run(state, [&] { cast(src, dst); });
  state.SetLabel(std::string(dtype_name(from)) + " -> " + std::string(dtype_name(to)));
  bench::set_bytes(state, src.nbytes() + dst.nbytes());
}

BENCHMARK(BM_CudaBatchNormForwardTrain)->Apply(bn_args);
BENCHMARK(BM_CudaBatchNormBackward)->Apply(bn_args);
BENCHMARK(BM_CudaBiasActivationBackward)
    ->Args({1, int64_t(DType::f16)})
    ->Args({3, int64_t(DType::f16)})
    ->Args({1, int64_t(DType::f32)})
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_CudaDropout)->Arg(int64_t(DType::f32))->Arg(int64_t(DType::f16))->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_CudaCast)
    ->Args({int64_t(DType::f32), int64_t(DType::f16)})
    ->Args({int64_t(DType::f16), int64_t(DType::f32)})
    ->Args({int64_t(DType::f32), int64_t(DType::bf16)})
    ->Args({int64_t(DType::u8), int64_t(DType::f16)})
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace sg
