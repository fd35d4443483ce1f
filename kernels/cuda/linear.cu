#include <cublas_v2.h>

#include <memory>
#include <mutex>
#include <vector>

#include "core/allocator.h"
#include "kernels/cuda/common.cuh"
#include "core/tensor.h"
#include "kernels/cuda/cast.h"
#include "kernels/cuda/linear.h"
#include "kernels/cuda_kernel_paths.h"

namespace sg::cuda {
namespace {

void check_cublas(cublasStatus_t status, const char* op, const char* call) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw Error(detail::concat(op, ": ", call, " failed: ", cublasGetStatusString(status), " (status ", int(status), ")"));
}

// The workspace for this card (kernels/cuda_kernel_paths.h, shared with the memory plan).
size_t cublas_workspace_bytes_for(int device) {
  int major = 0, minor = 0;
  SG_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  SG_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  return cublas_workspace_bytes(major * 10 + minor);
}

// One cuBLAS handle (RAII), its workspace and the mutex that serialises its users: binding the
// stream and the enqueue of a GEMM must not interleave between threads.
//
// The workspace comes from sg::Allocator, so --memory-limit counts it (cuBLAS's own pool would be
// outside the cap); it is taken on the first GEMM, inside that GEMM's AllocationScope. One
// workspace serves every stream: a GEMM on another stream than the previous GEMM's first waits
// for that one (an event recorded after each GEMM), so two GEMMs never share it at once.
class CublasContext {
 public:
  explicit CublasContext(int device) : device_(device), allocator_(allocator_for(Device::cuda(device))) {
    DeviceGuard guard(device);  // a handle belongs to the device current at creation
    check_cublas(cublasCreate(&handle_), "linear", "cublasCreate");
    SG_CUDA_CHECK(cudaEventCreateWithFlags(&last_gemm_, cudaEventDisableTiming));
  }
  ~CublasContext() {
    if (handle_) cublasDestroy(handle_);  // synchronises with its work before the workspace goes
    if (last_gemm_) cudaEventDestroy(last_gemm_);
    if (workspace_) allocator_.deallocate(workspace_, workspace_bytes_);
  }
  CublasContext(const CublasContext&) = delete;
  CublasContext& operator=(const CublasContext&) = delete;

  std::mutex& mutex() { return mutex_; }
  size_t workspace_bytes() {
    std::lock_guard lock(mutex_);
    return workspace_bytes_;
  }

  // With mutex() held: the handle, set to run on `stream` with our workspace.
  cublasHandle_t bind(StreamHandle stream, const char* op) {
    if (!workspace_) {
      const size_t bytes = cublas_workspace_bytes_for(device_);
      workspace_ = allocator_.allocate(bytes, "cuBLAS workspace");  // 256-byte aligned, as cuBLAS needs
      workspace_bytes_ = bytes;
    }
    if (has_previous_ && stream != previous_stream_)
      SG_CUDA_CHECK(cudaStreamWaitEvent(stream, last_gemm_, 0));
    check_cublas(cublasSetStream(handle_, stream), op, "cublasSetStream");
    // cublasSetStream puts the handle back on cuBLAS's own workspace pool: ours again, every call.
    check_cublas(cublasSetWorkspace(handle_, workspace_, workspace_bytes_), op, "cublasSetWorkspace");
    return handle_;
  }
  // With mutex() held, after the GEMM was enqueued on `stream`.
  void enqueued(StreamHandle stream) {
    SG_CUDA_CHECK(cudaEventRecord(last_gemm_, stream));
    previous_stream_ = stream;
    has_previous_ = true;
  }

 private:
  int device_;
  Allocator& allocator_;
  cublasHandle_t handle_ = nullptr;
  cudaEvent_t last_gemm_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
  StreamHandle previous_stream_ = nullptr;
  bool has_previous_ = false;
  std::mutex mutex_;
};

// The cuBLAS context of a device. Creating a handle costs milliseconds (it loads kernels), far
// too much per GEMM, so each device gets one for the process, built on first use: the same
// pattern as allocator_for() in core/allocator.cpp. The stream is set per call, so one handle
// serves every stream.
CublasContext& cublas_for(int device) {
  // The allocators first: statics are destroyed in reverse order, and a context gives its
  // workspace back to its allocator when it goes.
  (void)allocator_for(Device::cuda(device));
  static std::mutex mutex;
  static std::vector<std::unique_ptr<CublasContext>> contexts;
  std::lock_guard lock(mutex);
  int count = 0;
  SG_CUDA_CHECK(cudaGetDeviceCount(&count));
  SG_CHECK(device >= 0 && device < count, "linear: cuda:", device, " does not exist (", count, " devices)");
  if (contexts.empty()) contexts.resize(size_t(count));
  auto& slot = contexts[size_t(device)];
  if (!slot) slot = std::make_unique<CublasContext>(device);
  return *slot;
}

cudaDataType_t cuda_type(DType dtype) {
  switch (dtype) {
    case DType::f32: return CUDA_R_32F;
    case DType::f16: return CUDA_R_16F;
    case DType::bf16: return CUDA_R_16BF;
    default: break;
  }
  throw Error(detail::concat("linear: dtype ", dtype_name(dtype), " is not supported (expected f32, f16 or bf16)"));
}

bool cublas_has_bf16(int device) {
  int major = 0, minor = 0;
  SG_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  SG_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  return major * 10 + minor >= kCublasBf16MinArch;
}

// Elements of a column-major rows x cols matrix with leading dimension ld, the last column short.
int64_t matrix_extent(int64_t rows, int64_t cols, int64_t ld) { return rows == 0 || cols == 0 ? 0 : (cols - 1) * ld + rows; }

void gemm(const char* op, DType dtype, int device, cublasOperation_t op_a, cublasOperation_t op_b, int64_t m,
          int64_t n, int64_t k, const void* a, int64_t lda, const void* b, int64_t ldb, float beta, void* c,
          int64_t ldc, StreamHandle stream);

// cuBLAS has no bf16 GEMM on Pascal (sm_6x): there the operands are widened to f32, multiplied in
// f32 (the computation cuBLAS does for bf16 elsewhere) and the result rounded to bf16 once.
void gemm_bf16_in_f32(const char* op, int device, cublasOperation_t op_a, cublasOperation_t op_b, int64_t m, int64_t n,
                      int64_t k, const void* a, int64_t lda, const void* b, int64_t ldb, float beta, void* c,
                      int64_t ldc, StreamHandle stream) {
  const Device gpu = Device::cuda(device);
  const int64_t a_elems = op_a == CUBLAS_OP_N ? matrix_extent(m, k, lda) : matrix_extent(k, m, lda);
  const int64_t b_elems = op_b == CUBLAS_OP_N ? matrix_extent(k, n, ldb) : matrix_extent(n, k, ldb);
  const int64_t c_elems = matrix_extent(m, n, ldc);
  Tensor a32 = Tensor::empty({a_elems}, DType::f32, gpu, stream, "bf16 GEMM operand in f32");
  Tensor b32 = Tensor::empty({b_elems}, DType::f32, gpu, stream, "bf16 GEMM operand in f32");
  Tensor c32 = Tensor::empty({c_elems}, DType::f32, gpu, stream, "bf16 GEMM result in f32");
  cast(DType::bf16, DType::f32, a, a32.data(), a_elems, 1.0f, stream);
  cast(DType::bf16, DType::f32, b, b32.data(), b_elems, 1.0f, stream);
  if (beta != 0.0f) cast(DType::bf16, DType::f32, c, c32.data(), c_elems, 1.0f, stream);
  gemm(op, DType::f32, device, op_a, op_b, m, n, k, a32.data(), lda, b32.data(), ldb, beta, c32.data(), ldc, stream);
  cast(DType::f32, DType::bf16, c32.data(), c, c_elems, 1.0f, stream);
}

// C = A op B + beta C in cuBLAS's column-major terms, f32 accumulation for every storage type.
void gemm(const char* op, DType dtype, int device, cublasOperation_t op_a, cublasOperation_t op_b, int64_t m,
          int64_t n, int64_t k, const void* a, int64_t lda, const void* b, int64_t ldb, float beta, void* c,
          int64_t ldc, StreamHandle stream) {
  if (dtype == DType::bf16 && !cublas_has_bf16(device)) {
    gemm_bf16_in_f32(op, device, op_a, op_b, m, n, k, a, lda, b, ldb, beta, c, ldc, stream);
    return;
  }
  CublasContext& context = cublas_for(device);
  const cudaDataType_t type = cuda_type(dtype);
  const float alpha = 1.0f;
  std::lock_guard lock(context.mutex());
  cublasHandle_t handle = context.bind(stream, op);
  check_cublas(cublasGemmEx(handle, op_a, op_b, int(m), int(n), int(k), &alpha, a, type, int(lda), b, type, int(ldb),
                            &beta, c, type, int(ldc), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
               op, "cublasGemmEx");
  context.enqueued(stream);
}

// y [M, N] = bias broadcast over the rows; the GEMM then adds x w^T on top (beta = 1), so the
// f16/bf16 output is rounded once.
template <class T>
__global__ void broadcast_bias_kernel(const T* __restrict__ bias, T* __restrict__ y, int64_t M, int64_t N) {
  const int64_t total = M * N, stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) y[i] = bias[i % N];
}

// dbias[n] = sum over m of dy[m, n]. A block owns 32 columns: each of its 8 rows of threads
// sums every 8th row of dy (coalesced along a row), then one thread adds the 8 partials in
// order. Deterministic, no atomics.
constexpr int kColumnsPerBlock = 32, kRowGroups = 8;

template <class T>
__global__ void column_sum_kernel(const T* __restrict__ dy, T* __restrict__ dbias, int64_t M, int64_t N) {
  __shared__ float partial[kRowGroups][kColumnsPerBlock + 1];
  const int64_t n = int64_t(blockIdx.x) * kColumnsPerBlock + threadIdx.x;
  float acc = 0;
  if (n < N)
    for (int64_t m = threadIdx.y; m < M; m += kRowGroups) acc += to_acc(dy[m * N + n]);
  partial[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && n < N) {
    float sum = 0;
#pragma unroll
    for (int g = 0; g < kRowGroups; ++g) sum += partial[g][threadIdx.x];
    dbias[n] = from_acc<T>(sum);
  }
}

constexpr int kThreads = 256;

}  // namespace

size_t cublas_workspace_bytes_held(int device) { return cublas_for(device).workspace_bytes(); }

// Row-major y [M, N] = x [M, K] w^T is column-major y^T [N, M] = (w as [K, N])^T x^T.
void linear_forward(DType dtype, int device, const void* x, const void* w, const void* bias, void* y, int64_t M,
                    int64_t K, int64_t N, StreamHandle stream) {
  if (bias) {
    dispatch_floating(dtype, "linear_forward", [&](auto tag) {
      using T = typename decltype(tag)::type;
      broadcast_bias_kernel<T><<<grid_for(M * N, kThreads), kThreads, 0, stream>>>(static_cast<const T*>(bias),
                                                                                   static_cast<T*>(y), M, N);
    });
    SG_CUDA_CHECK_LAUNCH("linear_forward (bias)");
  }
  gemm("linear_forward", dtype, device, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, w, K, x, K, bias ? 1.0f : 0.0f, y, N,
       stream);
}

// dx [M, K] = dy [M, N] w [N, K]: column-major dx^T [K, M] = (w as [K, N]) (dy as [N, M]).
void linear_backward_input(DType dtype, int device, const void* dy, const void* w, void* dx, int64_t M, int64_t K,
                           int64_t N, StreamHandle stream) {
  gemm("linear_backward_input", dtype, device, CUBLAS_OP_N, CUBLAS_OP_N, K, M, N, w, K, dy, N, 0.0f, dx, K, stream);
}

// dw [N, K] = dy^T x: column-major dw^T [K, N] = (x as [K, M]) (dy as [N, M])^T.
void linear_backward_weight(DType dtype, int device, const void* x, const void* dy, void* dw, void* dbias, int64_t M,
                            int64_t K, int64_t N, StreamHandle stream) {
  gemm("linear_backward_weight", dtype, device, CUBLAS_OP_N, CUBLAS_OP_T, K, N, M, x, K, dy, N, 0.0f, dw, K, stream);
  if (!dbias) return;
  dispatch_floating(dtype, "linear_backward_weight", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const dim3 block(kColumnsPerBlock, kRowGroups);
    const unsigned blocks = unsigned((N + kColumnsPerBlock - 1) / kColumnsPerBlock);
    column_sum_kernel<T><<<blocks, block, 0, stream>>>(static_cast<const T*>(dy), static_cast<T*>(dbias), M, N);
  });
  SG_CUDA_CHECK_LAUNCH("linear_backward_weight (bias gradient)");
}

}  // namespace sg::cuda
