// The emulated cuBLAS: GemmEx (column-major, transposes, leading dimensions, f32/f16/bf16 storage,
// f32 computation) queued on the handle's stream like a kernel.
#include <cublas_v2.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "tests/emulated_cuda/machine.h"
#include "tests/emulated_cuda/ptx_fragments.h"

struct cublasContext {
  int device = 0;
  cudaStream_t stream = nullptr;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
};

using namespace sg_emu;

namespace {

// Never destroyed: cuBLAS handles held in static objects are destroyed after this file's statics.
std::set<cublasContext*>& handles() {
  static auto* all = new std::set<cublasContext*>;
  return *all;
}

bool live(cublasHandle_t h) { return h && handles().count(h); }

size_t element_bytes(cudaDataType_t t) { return t == CUDA_R_32F ? 4 : 2; }

float load(const void* base, cudaDataType_t t, size_t index) {
  if (t == CUDA_R_32F) return static_cast<const float*>(base)[index];
  const uint16_t bits = static_cast<const uint16_t*>(base)[index];
  return t == CUDA_R_16F ? sg_emu::ptx::f16_to_float(bits) : sg_emu::ptx::bf16_to_float(bits);
}

void store(void* base, cudaDataType_t t, size_t index, float v) {
  if (t == CUDA_R_32F) {
    static_cast<float*>(base)[index] = v;
    return;
  }
  static_cast<uint16_t*>(base)[index] = t == CUDA_R_16F ? sg_emu::ptx::float_to_f16_rn(v) : sg_emu::ptx::float_to_bf16_rn(v);
}

bool known_type(cudaDataType_t t) { return t == CUDA_R_32F || t == CUDA_R_16F || t == CUDA_R_16BF; }

cublasStatus_t invalid(const std::string& what) {
  set_error(cudaErrorInvalidValue, what);
  std::fprintf(stderr, "emulated cuBLAS: %s\n", what.c_str());
  return CUBLAS_STATUS_INVALID_VALUE;
}

}  // namespace

cublasStatus_t cublasCreate(cublasHandle_t* handle) {
  std::lock_guard lock(machine_mutex());
  auto* h = new cublasContext;
  h->device = current_device();
  handles().insert(h);
  *handle = h;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy(cublasHandle_t handle) {
  std::lock_guard lock(machine_mutex());
  if (!live(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  run_all(handle->device);  // cublasDestroy synchronises with the handle's work
  handles().erase(handle);
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream) {
  std::lock_guard lock(machine_mutex());
  if (!live(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->stream = stream;
  handle->workspace = nullptr;  // as in cuBLAS: setting the stream resets the user workspace
  handle->workspace_bytes = 0;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetWorkspace(cublasHandle_t handle, void* workspace, size_t bytes) {
  std::lock_guard lock(machine_mutex());
  if (!live(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (workspace && !inside_device_allocation(workspace, bytes, handle->device))
    return invalid("cublasSetWorkspace: the workspace is not device memory of the handle's device");
  if (reinterpret_cast<uintptr_t>(workspace) % 256 != 0) return invalid("cublasSetWorkspace: not 256-byte aligned");
  handle->workspace = workspace;
  handle->workspace_bytes = bytes;
  return CUBLAS_STATUS_SUCCESS;
}

const char* cublasGetStatusString(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
  }
  return "CUBLAS_STATUS_UNKNOWN";
}

// C = alpha * op(A) * op(B) + beta * C, column-major: op(A) is m x k, op(B) k x n, C m x n.
cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                            int k, const void* alpha, const void* A, cudaDataType_t Atype, int lda, const void* B,
                            cudaDataType_t Btype, int ldb, const void* beta, void* C, cudaDataType_t Ctype, int ldc,
                            cublasComputeType_t computeType, cublasGemmAlgo_t) {
  std::lock_guard lock(machine_mutex());
  if (!live(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (m < 0 || n < 0 || k < 0) return invalid("cublasGemmEx: negative m, n or k");
  if (!known_type(Atype) || !known_type(Btype) || !known_type(Ctype) || computeType != CUBLAS_COMPUTE_32F)
    return CUBLAS_STATUS_NOT_SUPPORTED;
  if (Atype != Btype) return CUBLAS_STATUS_NOT_SUPPORTED;
  // cuBLAS refuses bf16 GEMMs on Pascal (sm_6x).
  if ((Atype == CUDA_R_16BF || Ctype == CUDA_R_16BF) && personality().major < 7)
    return CUBLAS_STATUS_ARCH_MISMATCH;
  const int a_rows = transa == CUBLAS_OP_N ? m : k, a_cols = transa == CUBLAS_OP_N ? k : m;
  const int b_rows = transb == CUBLAS_OP_N ? k : n, b_cols = transb == CUBLAS_OP_N ? n : k;
  if (lda < std::max(1, a_rows) || ldb < std::max(1, b_rows) || ldc < std::max(1, m))
    return invalid("cublasGemmEx: a leading dimension smaller than its matrix's rows");
  const auto extent = [](int rows, int cols, int ld, cudaDataType_t t) {
    return cols == 0 || rows == 0 ? size_t(0) : (size_t(cols - 1) * size_t(ld) + size_t(rows)) * element_bytes(t);
  };
  const int device = handle->device;
  if (m && n) {
    if (k && (!inside_device_allocation(A, extent(a_rows, a_cols, lda, Atype), device) ||
              !inside_device_allocation(B, extent(b_rows, b_cols, ldb, Btype), device)))
      return invalid("cublasGemmEx: A or B is not inside one device allocation of the handle's device (cuda:" +
                     std::to_string(device) + ")");
    if (!inside_device_allocation(C, extent(m, n, ldc, Ctype), device))
      return invalid("cublasGemmEx: C is not inside one device allocation of cuda:" + std::to_string(device));
  }
  auto stream = stream_state(handle->stream, "cublasGemmEx");
  if (!stream) return CUBLAS_STATUS_INVALID_VALUE;
  const float a_scale = *static_cast<const float*>(alpha), b_scale = *static_cast<const float*>(beta);
  Operation op;
  op.what = "cublasGemmEx";
  op.run = [=] {
    for (int j = 0; j < n; ++j)
      for (int i = 0; i < m; ++i) {
        double sum = 0;
        for (int p = 0; p < k; ++p) {
          const size_t ai = transa == CUBLAS_OP_N ? size_t(p) * lda + i : size_t(i) * lda + p;
          const size_t bi = transb == CUBLAS_OP_N ? size_t(j) * ldb + p : size_t(p) * ldb + j;
          sum += double(load(A, Atype, ai)) * double(load(B, Btype, bi));
        }
        const size_t ci = size_t(j) * ldc + i;
        // beta == 0: C is not read (it may hold NaN), as in BLAS.
        const float prior = b_scale == 0.0f ? 0.0f : b_scale * load(C, Ctype, ci);
        store(C, Ctype, ci, float(a_scale * sum) + prior);
      }
  };
  enqueue(stream, std::move(op));
  return CUBLAS_STATUS_SUCCESS;
}
