// CUDA fully connected layer on EfficientNet-B0's head (1280 -> 1000 and 1280 -> 5, batch 32
// and 256): ours (cuBLAS GEMM + our bias kernels) beside a bare cublasGemmEx of the same shape,
// which shows what the bias broadcast and the handle/stream bookkeeping cost. FLOP/s.
#include <benchmark/benchmark.h>
#include <cublas_v2.h>

#include "benchmarks/cuda/bench_cuda_util.h"
#include "kernels/linear.h"

namespace sg {
namespace {

constexpr int64_t kFeatures = 1280;

// args: batch, outputs, dtype
void BM_CudaLinearForward(benchmark::State& state) {
  if (bench::skip_without_gpu(state)) return;
  const int64_t M = state.range(0), N = state.range(1);
  const auto dtype = DType(state.range(2));
  const Device gpu = Device::cuda(0);
  Tensor x = bench::random_tensor({M, kFeatures}, dtype, gpu), w = bench::random_tensor({N, kFeatures}, dtype, gpu);
  Tensor b = bench::random_tensor({N}, dtype, gpu), y = Tensor::empty({M, N}, dtype, gpu);
  bench::GpuTimer timer;
  timer.run(state, [&] { linear_forward(x, w, &b, y); });
  state.SetLabel("ours (bias kernel + cuBLAS) " + std::string(dtype_name(dtype)));
  bench::set_flops(state, 2.0 * double(M * N * kFeatures));
}

void BM_CudaLinearBackward(benchmark::State& state) {
  if (bench::skip_without_gpu(state)) return;
  const int64_t M = state.range(0), N = state.range(1);
  const auto dtype = DType(state.range(2));
  const Device gpu = Device::cuda(0);
  Tensor x = bench::random_tensor({M, kFeatures}, dtype, gpu), w = bench::random_tensor({N, kFeatures}, dtype, gpu);
  Tensor dy = bench::random_tensor({M, N}, dtype, gpu);
  Tensor dx = Tensor::empty({M, kFeatures}, dtype, gpu), dw = Tensor::empty({N, kFeatures}, dtype, gpu);
  Tensor db = Tensor::empty({N}, dtype, gpu);
  bench::GpuTimer timer;
  timer.run(state, [&] {
    linear_backward_input(dy, w, dx);
    linear_backward_weight(x, dy, dw, &db);
  });
  state.SetLabel("ours: dx, dw (cuBLAS) + dbias (column sum) " + std::string(dtype_name(dtype)));
  bench::set_flops(state, 4.0 * double(M * N * kFeatures));
}

// The baseline: one cublasGemmEx, no bias, its own handle.
class BenchCublasHandle {
 public:
  BenchCublasHandle() { ok_ = cublasCreate(&handle_) == CUBLAS_STATUS_SUCCESS; }
  ~BenchCublasHandle() {
    if (ok_) cublasDestroy(handle_);
  }
  BenchCublasHandle(const BenchCublasHandle&) = delete;
  BenchCublasHandle& operator=(const BenchCublasHandle&) = delete;
  bool ok() const { return ok_; }
  cublasHandle_t get() const { return handle_; }

 private:
  cublasHandle_t handle_ = nullptr;
  bool ok_ = false;
};

void BM_CublasGemmBaseline(benchmark::State& state) {
  if (bench::skip_without_gpu(state)) return;
  const int64_t M = state.range(0), N = state.range(1);
  const auto dtype = DType(state.range(2));
  const Device gpu = Device::cuda(0);
  Tensor x = bench::random_tensor({M, kFeatures}, dtype, gpu), w = bench::random_tensor({N, kFeatures}, dtype, gpu);
  Tensor y = Tensor::empty({M, N}, dtype, gpu);
  BenchCublasHandle handle;
  if (!handle.ok()) {
    state.SkipWithError("cublasCreate failed");
    return;
  }
  const cudaDataType_t type = dtype == DType::f32 ? CUDA_R_32F : (dtype == DType::f16 ? CUDA_R_16F : CUDA_R_16BF);
  const float alpha = 1.0f, beta = 0.0f;
  cublasStatus_t status = CUBLAS_STATUS_SUCCESS;
  bench::GpuTimer timer;
  timer.run(state, [&] {
    const cublasStatus_t s = cublasGemmEx(handle.get(), CUBLAS_OP_T, CUBLAS_OP_N, int(N), int(M), int(kFeatures), &alpha,
                                          w.data(), type, int(kFeatures), x.data(), type, int(kFeatures), &beta,
                                          y.data(), type, int(N), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    if (s != CUBLAS_STATUS_SUCCESS) status = s;
  });
  if (status != CUBLAS_STATUS_SUCCESS) state.SkipWithError(cublasGetStatusString(status));
  state.SetLabel("plain cublasGemmEx " + std::string(dtype_name(dtype)));
  bench::set_flops(state, 2.0 * double(M * N * kFeatures));
}

void head_args(benchmark::internal::Benchmark* b) {
  for (int64_t batch : {32, 256})
    for (int64_t outputs : {1000, 5})
      for (DType dtype : {DType::f32, DType::f16, DType::bf16}) b->Args({batch, outputs, int64_t(dtype)});
  b->ArgNames({"batch", "out", "dtype"})->UseManualTime()->Unit(benchmark::kMicrosecond);
}

BENCHMARK(BM_CudaLinearForward)->Apply(head_args);
BENCHMARK(BM_CublasGemmBaseline)->Apply(head_args);
BENCHMARK(BM_CudaLinearBackward)->Apply(head_args);

}  // namespace
}  // namespace sg
