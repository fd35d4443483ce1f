// CUDA pooling: achieved bandwidth on EfficientNet-B0 shapes, batch 32: the global pools over
// 7x7x1280 (224 px) and 16x16x1280 (512 px); 3x3/2 max/avg pooling on 112x112x96 (224 px) and
// 256x256x96 (512 px), beside cuDNN's NHWC pooling (a baseline only, never the engine).
#include <benchmark/benchmark.h>

#include "benchmarks/cuda/bench_cuda_util.h"
#include "kernels/pooling.h"

#if SLIDEGRADE_HAVE_CUDNN
#include <cudnn.h>
#endif

namespace sg {
namespace {

constexpr int64_t kBatch = 32;

void BM_CudaGlobalAvgPoolForward(benchmark::State& state) {
  if (bench::skip_without_gpu(state)) return;
  const int64_t hw = state.range(0);
  const auto dtype = DType(state.range(1));
  Tensor x = bench::random_tensor({kBatch, hw, hw, 1280}, dtype, Device::cuda(0));
  Tensor y = Tensor::empty({kBatch, 1280}, dtype, Device::cuda(0));
  bench::GpuTimer timer;
  timer.run(state, [&] { global_avg_pool_forward(x, y); });
  state.SetLabel(std::string(dtype_name(dtype)));
  bench::set_bytes(state, x.nbytes() + y.nbytes());
}

void BM_CudaGlobalMaxPoolForward(benchmark::State& state) {
  if (bench::skip_without_gpu(state)) return;
  const int64_t hw = state.range(0);
  const auto dtype = DType(state.range(1));
  Tensor x = bench::random_tensor({kBatch, hw, hw, 1280}, dtype, Device::cuda(0));
  Tensor y = Tensor::empty({kBatch, 1280}, dtype, Device::cuda(0));
  Tensor argmax = Tensor::empty({kBatch, 1280}, DType::i32, Device::cuda(0));
  bench::GpuTimer timer;
  timer.run(state, [&] { global_max_pool_forward(x, y, &argmax); });
  state.SetLabel(std::string(dtype_name(dtype)));
  bench::set_bytes(state, x.nbytes() + y.nbytes() + argmax.nbytes());
}

void BM_CudaGlobalAvgPoolBackward(benchmark::State& state) {
  if (bench::skip_without_gpu(state)) return;
  const int64_t hw = state.range(0);
  const auto dtype = DType(state.range(1));
  Tensor dy = bench::random_tensor({kBatch, 1280}, dtype, Device::cuda(0));
  Tensor dx = Tensor::empty({kBatch, hw, hw, 1280}, dtype, Device::cuda(0));
  bench::GpuTimer timer;
  timer.run(state, [&] { global_avg_pool_backward(dy, dx); });
  state.SetLabel(std::string(dtype_name(dtype)));
  bench::set_bytes(state, dx.nbytes() + dy.nbytes());
}

void BM_CudaGemPoolForward(benchmark::State& state) {
  if (bench::skip_without_gpu(state)) return;
  const int64_t hw = state.range(0);
  const auto dtype = DType(state.range(1));
  Tensor x = bench::random_tensor({kBatch, hw, hw, 1280}, dtype, Device::cuda(0), 0, 2);
  Tensor p = Tensor::from_floats({3.0f}, {1}).to(Device::cuda(0));
  Tensor y = Tensor::empty({kBatch, 1280}, dtype, Device::cuda(0));
  bench::GpuTimer timer;
  timer.run(state, [&] { gem_pool_forward(x, p, y); });
  state.SetLabel(std::string(dtype_name(dtype)));
  bench::set_bytes(state, x.nbytes() + y.nbytes());
}

void BM_CudaGemPoolBackward(benchmark::State& state) {
  if (bench::skip_without_gpu(state)) return;
  const int64_t hw = state.range(0);
  const auto dtype = DType(state.range(1));
  Tensor x = bench::random_tensor({kBatch, hw, hw, 1280}, dtype, Device::cuda(0), 0, 2);
  Tensor p = Tensor::from_floats({3.0f}, {1}).to(Device::cuda(0));
  Tensor dp = Tensor::empty({1}, DType::f32, Device::cuda(0));
  Tensor dy = bench::random_tensor({kBatch, 1280}, dtype, Device::cuda(0));
  Tensor dx = Tensor::empty(x.shape(), dtype, Device::cuda(0));
  bench::GpuTimer timer;
  timer.run(state, [&] { gem_pool_backward(x, p, dy, dx, dp); });
  state.SetLabel(std::string(dtype_name(dtype)));
  bench::set_bytes(state, 2 * x.nbytes());  // x read (the second pass mostly hits L2), dx written
}

// Args: H (= W), dtype, 0 = max / 1 = avg.
void BM_CudaPool2dForward(benchmark::State& state) {
  if (bench::skip_without_gpu(state)) return;
  const int64_t hw = state.range(0);
  const auto dtype = DType(state.range(1));
  const bool is_max = state.range(2) == 0;
  const Pool2dParams p = make_pool2d_params(3, 2, 1);
  Tensor x = bench::random_tensor({kBatch, hw, hw, 96}, dtype, Device::cuda(0));
  const int64_t out = (hw + 2 - 3) / 2 + 1;
  Tensor y = Tensor::empty({kBatch, out, out, 96}, dtype, Device::cuda(0));
  bench::GpuTimer timer;
  timer.run(state, [&] {
    if (is_max)
      max_pool2d_forward(p, x, y, nullptr);
    else
      avg_pool2d_forward(p, x, y);
  });
  state.SetLabel(std::string(is_max ? "max " : "avg ") + std::string(dtype_name(dtype)));
  bench::set_bytes(state, x.nbytes() + y.nbytes());
}

void BM_CudaMaxPool2dBackward(benchmark::State& state) {
  if (bench::skip_without_gpu(state)) return;
  const int64_t hw = state.range(0);
  const auto dtype = DType(state.range(1));
  const Pool2dParams p = make_pool2d_params(3, 2, 1);
  Tensor x = bench::random_tensor({kBatch, hw, hw, 96}, dtype, Device::cuda(0));
  const int64_t out = (hw + 2 - 3) / 2 + 1;
  Tensor y = Tensor::empty({kBatch, out, out, 96}, dtype, Device::cuda(0));
  Tensor argmax = Tensor::empty(y.shape(), DType::i32, Device::cuda(0));
  max_pool2d_forward(p, x, y, &argmax);
  Tensor dy = bench::random_tensor(y.shape(), dtype, Device::cuda(0));
  Tensor dx = Tensor::empty(x.shape(), dtype, Device::cuda(0));
  bench::GpuTimer timer;
  timer.run(state, [&] { max_pool2d_backward(p, argmax, dy, dx); });
  state.SetLabel(std::string(dtype_name(dtype)));
  bench::set_bytes(state, dy.nbytes() + argmax.nbytes() + dx.nbytes());
}

#if SLIDEGRADE_HAVE_CUDNN
#define SG_CUDNN_CHECK(call)                                                                      \
  do {                                                                                            \
    const cudnnStatus_t sg_status_ = (call);                                                      \
    if (sg_status_ != CUDNN_STATUS_SUCCESS)                                                       \
      throw Error(detail::concat(#call, " failed: ", cudnnGetErrorString(sg_status_)));           \
  } while (0)

// The cuDNN objects of one NHWC pooling call, released in the destructor.
class CudnnPooling {
 public:
  CudnnPooling(bool is_max, DType dtype, int n, int c, int h, int w, int out_h, int out_w) {
    const cudnnDataType_t type = dtype == DType::f16    ? CUDNN_DATA_HALF
                                 : dtype == DType::bf16 ? CUDNN_DATA_BFLOAT16
                                                        : CUDNN_DATA_FLOAT;
    SG_CUDNN_CHECK(cudnnCreate(&handle_));
    SG_CUDNN_CHECK(cudnnCreateTensorDescriptor(&x_));
    SG_CUDNN_CHECK(cudnnCreateTensorDescriptor(&y_));
    SG_CUDNN_CHECK(cudnnCreatePoolingDescriptor(&pool_));
    SG_CUDNN_CHECK(cudnnSetTensor4dDescriptor(x_, CUDNN_TENSOR_NHWC, type, n, c, h, w));
    SG_CUDNN_CHECK(cudnnSetTensor4dDescriptor(y_, CUDNN_TENSOR_NHWC, type, n, c, out_h, out_w));
    SG_CUDNN_CHECK(cudnnSetPooling2dDescriptor(
        pool_, is_max ? CUDNN_POOLING_MAX : CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING, CUDNN_NOT_PROPAGATE_NAN, 3,
        3, 1, 1, 2, 2));
  }
  ~CudnnPooling() {
    cudnnDestroyPoolingDescriptor(pool_);
    cudnnDestroyTensorDescriptor(y_);
    cudnnDestroyTensorDescriptor(x_);
    cudnnDestroy(handle_);
  }
  CudnnPooling(const CudnnPooling&) = delete;
  CudnnPooling& operator=(const CudnnPooling&) = delete;

  void forward(const void* x, void* y) {
    const float alpha = 1.0f, beta = 0.0f;
    SG_CUDNN_CHECK(cudnnPoolingForward(handle_, pool_, &alpha, x_, x, &beta, y_, y));
  }

 private:
  cudnnHandle_t handle_ = nullptr;
  cudnnTensorDescriptor_t x_ = nullptr, y_ = nullptr;
  cudnnPoolingDescriptor_t pool_ = nullptr;
};

void BM_CudnnPool2dForward(benchmark::State& state) {
  if (bench::skip_without_gpu(state)) return;
  const int64_t hw = state.range(0);
  const auto dtype = DType(state.range(1));
  const bool is_max = state.range(2) == 0;
  Tensor x = bench::random_tensor({kBatch, hw, hw, 96}, dtype, Device::cuda(0));
  const int64_t out = (hw + 2 - 3) / 2 + 1;
  Tensor y = Tensor::empty({kBatch, out, out, 96}, dtype, Device::cuda(0));
  CudnnPooling pooling(is_max, dtype, int(kBatch), 96, int(hw), int(hw), int(out), int(out));
  bench::GpuTimer timer;
  timer.run(state, [&] { pooling.forward(x.data(), y.data()); });
  state.SetLabel(std::string("cuDNN ") + (is_max ? "max " : "avg ") + std::string(dtype_name(dtype)));
  bench::set_bytes(state, x.nbytes() + y.nbytes());
}
#endif

void global_args(benchmark::internal::Benchmark* b) {
  for (int64_t hw : {7, 16})
    for (DType dtype : {DType::f32, DType::f16, DType::bf16}) b->Args({hw, int64_t(dtype)});
  b->UseManualTime()->Unit(benchmark::kMicrosecond);
}

void pool2d_args(benchmark::internal::Benchmark* b) {
  for (int64_t hw : {112, 256})
    for (DType dtype : {DType::f32, DType::f16})
      for (int64_t kind : {0, 1}) b->Args({hw, int64_t(dtype), kind});
  b->UseManualTime()->Unit(benchmark::kMicrosecond);
}

void pool2d_backward_args(benchmark::internal::Benchmark* b) {
  for (int64_t hw : {112, 256})
    for (DType dtype : {DType::f32, DType::f16}) b->Args({hw, int64_t(dtype)});
  b->UseManualTime()->Unit(benchmark::kMicrosecond);
}

BENCHMARK(BM_CudaGlobalAvgPoolForward)->Apply(global_args);
BENCHMARK(BM_CudaGlobalMaxPoolForward)->Apply(global_args);
BENCHMARK(BM_CudaGlobalAvgPoolBackward)->Apply(global_args);
BENCHMARK(BM_CudaGemPoolForward)->Apply(global_args);
BENCHMARK(BM_CudaGemPoolBackward)->Apply(global_args);
BENCHMARK(BM_CudaPool2dForward)->Apply(pool2d_args);
BENCHMARK(BM_CudaMaxPool2dBackward)->Apply(pool2d_backward_args);
#if SLIDEGRADE_HAVE_CUDNN
BENCHMARK(BM_CudnnPool2dForward)->Apply(pool2d_args);
#endif

}  // namespace
}  // namespace sg
