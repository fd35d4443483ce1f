#pragma once
// The emulated CUDA device: CUDA's runtime API (cuda_runtime_api.h) plus what device code needs
// (qualifiers, vector types, thread indices, barriers, warp intrinsics, math functions and the
// kernel launch), all as host C++. tests/emulated_cuda/translate_cuda.py turns the three CUDA
// constructs that are not C++ (kernel<<<...>>> launches, inline PTX asm statements, __shared__
// declarations) into calls declared here; everything else in a .cu file compiles as it is.
#include <math.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <tuple>
#include <type_traits>
#include <utility>

#include "cuda_bf16.h"
#include "cuda_fp16.h"
#include "cuda_runtime_api.h"

// ---- Qualifiers ------------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __constant__ static
// Static shared memory: every __shared__ variable lives in one section, so a load or store can
// be recognised as a shared-memory access by its address alone. Blocks run one at a time, so one
// copy of each variable serves every block (tests/emulated_cuda/README.md).
#define SG_EMU_SHARED static __attribute__((section("sg_emu_shared"), aligned(16)))

// ---- Vector types ------------------------------------------------------------------------------
// Member-wise copies on purpose: a struct copy is one memcpy that the load/store tracing of the
// kernel translation units does not see, and 16-byte copies into shared memory must be seen.
#define SG_EMU_VECTOR4(name, T)                                                                 \
  struct alignas(4 * sizeof(T)) name {                                                          \
    T x, y, z, w;                                                                               \
    name() = default;                                                                           \
    name(T x_, T y_, T z_, T w_) : x(x_), y(y_), z(z_), w(w_) {}                                \
    name(const name& o) : x(o.x), y(o.y), z(o.z), w(o.w) {}                                     \
    name& operator=(const name& o) {                                                            \
      x = o.x, y = o.y, z = o.z, w = o.w;                                                       \
      return *this;                                                                             \
    }                                                                                           \
  };                                                                                            \
  inline name make_##name(T x, T y, T z, T w) { return name(x, y, z, w); }
#define SG_EMU_VECTOR2(name, T)                                                                 \
  struct alignas(2 * sizeof(T)) name {                                                          \
    T x, y;                                                                                     \
    name() = default;                                                                           \
    name(T x_, T y_) : x(x_), y(y_) {}                                                          \
    name(const name& o) : x(o.x), y(o.y) {}                                                     \
    name& operator=(const name& o) {                                                            \
      x = o.x, y = o.y;                                                                         \
      return *this;                                                                             \
    }                                                                                           \
  };                                                                                            \
  inline name make_##name(T x, T y) { return name(x, y); }
SG_EMU_VECTOR4(uint4, unsigned)
SG_EMU_VECTOR4(int4, int)
SG_EMU_VECTOR4(float4, float)
SG_EMU_VECTOR2(uint2, unsigned)
SG_EMU_VECTOR2(int2, int)
SG_EMU_VECTOR2(float2, float)
#undef SG_EMU_VECTOR4
#undef SG_EMU_VECTOR2

struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
};

namespace sg_emu {

// ---- The thread that is running device code (null in host code) ------------------------------
uint3 thread_index();  // by value: the state lives in host memory the hooks would refuse
uint3 block_index();
dim3 block_dim();
dim3 grid_dim();

// ---- Barriers and warp collectives (tests/emulated_cuda/executor.cpp) -------------------------
void syncthreads(const char* file, int line);
int syncthreads_reduce(int predicate, int how, const char* file, int line);  // how: 0 or, 1 and, 2 count
void syncwarp(unsigned mask, const char* file, int line);
// A warp shuffle of up to 8 bytes: mode 0 idx, 1 up, 2 down, 3 xor.
uint64_t shuffle(unsigned mask, uint64_t value, int mode, int operand, int width, const char* file, int line);
unsigned vote(unsigned mask, int predicate, int how, const char* file, int line);  // 0 ballot, 1 any, 2 all
[[noreturn]] void trap(const char* file, int line);
size_t shared_offset(const void* p, const char* file, int line);
void* dynamic_shared_memory();
void note_static_shared(const void* variable, size_t bytes);
void kernel_entry(const char* name, int launch_bounds, int compiled_arch);

template <class T>
T shuffle_as(unsigned mask, T value, int mode, int operand, int width, const char* file, int line) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "__shfl_*_sync: a value of up to 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof(T));
  bits = shuffle(mask, bits, mode, operand, width, file, line);
  T out;
  std::memcpy(&out, &bits, sizeof(T));
  return out;
}

// ---- Inline PTX (tests/emulated_cuda/inline_ptx.cpp) -------------------------------------------
// One operand of an asm statement: its constraint and where its value is (outputs) or the value.
struct PtxOperand {
  char constraint = 0;  // 'r' (32 bits), 'l' (64 bits), 'f' (f32), 'h' (16 bits), 'n' (immediate)
  bool output = false;
  bool read_write = false;  // "+"
  void* lvalue = nullptr;
  size_t size = 0;
  uint64_t value = 0;
};
template <class T>
PtxOperand ptx_out(const char* constraint, T& lvalue) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>);
  PtxOperand o;
  o.output = true;
  o.read_write = constraint[0] == '+';
  o.constraint = constraint[1];
  o.lvalue = &lvalue;
  o.size = sizeof(T);
  if (o.read_write) std::memcpy(&o.value, &lvalue, sizeof(T));
  return o;
}
template <class T>
PtxOperand ptx_in(const char* constraint, const T& value) {
  PtxOperand o;
  o.constraint = constraint[0];
  if constexpr (std::is_pointer_v<T>) {
    o.value = reinterpret_cast<uintptr_t>(value);
    o.size = 8;
  } else {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>);
    std::memcpy(&o.value, &value, sizeof(T));
    o.size = sizeof(T);
  }
  return o;
}
// Executes one asm statement's PTX text for the calling device thread (warp-collective
// instructions wait for the whole warp). Outputs are written through their lvalues.
void ptx_asm(const char* ptx, std::initializer_list<PtxOperand> outputs, std::initializer_list<PtxOperand> inputs,
             const char* file, int line);

// ---- Launch ------------------------------------------------------------------------------------
// The type-erased body of a launch: runs the kernel for the current device thread.
struct KernelBody {
  virtual ~KernelBody() = default;
  virtual void run() = 0;
  virtual const void* parameters() const = 0;  // the parameter block (kernels may read it)
  virtual size_t parameter_bytes() const = 0;
  virtual const void* kernel() const = 0;
};
// Validates the configuration and queues the launch on the stream (lazily executed); launch
// errors become the thread's last error, as on a GPU.
void enqueue_launch(KernelBody* body, dim3 grid, dim3 block, size_t dynamic_shared_bytes, cudaStream_t stream);

template <class... Params>
struct KernelLaunch {
  void (*kernel)(Params...);
  dim3 grid, block;
  size_t shared_bytes;
  cudaStream_t stream;

  template <class... Args>
  void operator()(Args&&... args) const {
    struct Body final : KernelBody {
      void (*function_)(Params...);
      std::tuple<std::decay_t<Params>...> parameters_;
      Body(void (*k)(Params...), Args&&... a) : function_(k), parameters_(std::forward<Args>(a)...) {}
      void run() override { std::apply(function_, parameters_); }
      // The whole body: run() reads the kernel's address from it too.
      const void* parameters() const override { return this; }
      size_t parameter_bytes() const override { return sizeof(*this); }
      const void* kernel() const override { return reinterpret_cast<const void*>(function_); }
    };
    enqueue_launch(new Body(kernel, std::forward<Args>(args)...), grid, block, shared_bytes, stream);
  }
};

template <class... Params>
KernelLaunch<Params...> launch(void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared_bytes = 0,
                               cudaStream_t stream = nullptr) {
  return {kernel, grid, block, shared_bytes, stream};
}

template <class T>
T* dynamic_shared() {
  return static_cast<T*>(dynamic_shared_memory());
}

}  // namespace sg_emu

#define SG_EMU_KERNEL_ENTRY(name, bounds) ::sg_emu::kernel_entry(name, bounds, SG_EMU_COMPILED_ARCH)

// ---- Built-in variables ------------------------------------------------------------------------
#define threadIdx (::sg_emu::thread_index())
#define blockIdx (::sg_emu::block_index())
#define blockDim (::sg_emu::block_dim())
#define gridDim (::sg_emu::grid_dim())
constexpr int warpSize = 32;

// ---- Barriers, warp intrinsics, traps ----------------------------------------------------------
#define __syncthreads() ::sg_emu::syncthreads(__FILE__, __LINE__)
#define __syncthreads_or(p) ::sg_emu::syncthreads_reduce((p), 0, __FILE__, __LINE__)
#define __syncthreads_and(p) ::sg_emu::syncthreads_reduce((p), 1, __FILE__, __LINE__)
#define __syncthreads_count(p) ::sg_emu::syncthreads_reduce((p), 2, __FILE__, __LINE__)
#define __syncwarp(...) ::sg_emu::syncwarp(SG_EMU_FIRST_OR_ALL(__VA_ARGS__), __FILE__, __LINE__)
#define SG_EMU_FIRST_OR_ALL(...) (0xffffffffu __VA_OPT__(& 0 | (__VA_ARGS__)))
#define __shfl_sync(mask, v, lane, ...) \
  ::sg_emu::shuffle_as((mask), (v), 0, (lane), (32 __VA_OPT__(&0 | (__VA_ARGS__))), __FILE__, __LINE__)
#define __shfl_up_sync(mask, v, delta, ...) \
  ::sg_emu::shuffle_as((mask), (v), 1, (delta), (32 __VA_OPT__(&0 | (__VA_ARGS__))), __FILE__, __LINE__)
#define __shfl_down_sync(mask, v, delta, ...) \
  ::sg_emu::shuffle_as((mask), (v), 2, (delta), (32 __VA_OPT__(&0 | (__VA_ARGS__))), __FILE__, __LINE__)
#define __shfl_xor_sync(mask, v, lane_mask, ...) \
  ::sg_emu::shuffle_as((mask), (v), 3, (lane_mask), (32 __VA_OPT__(&0 | (__VA_ARGS__))), __FILE__, __LINE__)
#define __ballot_sync(mask, p) ::sg_emu::vote((mask), (p), 0, __FILE__, __LINE__)
#define __any_sync(mask, p) int(::sg_emu::vote((mask), (p), 1, __FILE__, __LINE__))
#define __all_sync(mask, p) int(::sg_emu::vote((mask), (p), 2, __FILE__, __LINE__))
#define __trap() ::sg_emu::trap(__FILE__, __LINE__)
#define __cvta_generic_to_shared(p) ::sg_emu::shared_offset((p), __FILE__, __LINE__)

// ---- Loads, bit casts, integer intrinsics --------------------------------------------------------
template <class T>
inline T __ldg(const T* p) {
  return *p;
}
inline unsigned __float_as_uint(float f) {
  unsigned u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline int __float_as_int(float f) {
  int i;
  std::memcpy(&i, &f, 4);
  return i;
}
inline float __uint_as_float(unsigned u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline float __int_as_float(int i) {
  float f;
  std::memcpy(&f, &i, 4);
  return f;
}
inline unsigned __umulhi(unsigned a, unsigned b) { return unsigned((uint64_t(a) * uint64_t(b)) >> 32); }
inline int __mulhi(int a, int b) { return int((int64_t(a) * int64_t(b)) >> 32); }
inline int __popc(unsigned v) { return __builtin_popcount(v); }
inline int __clz(unsigned v) { return v ? __builtin_clz(v) : 32; }
inline int __ffs(unsigned v) { return __builtin_ffs(int(v)); }

// ---- Device math: CUDA's global overloads -----------------------------------------------------------
// min/max of mixed integer types give the common type, as CUDA's overloads do.
template <class A, class B>
inline std::common_type_t<A, B> min(A a, B b) {
  using C = std::common_type_t<A, B>;
  return C(a) < C(b) ? C(a) : C(b);
}
template <class A, class B>
inline std::common_type_t<A, B> max(A a, B b) {
  using C = std::common_type_t<A, B>;
  return C(a) < C(b) ? C(b) : C(a);
}
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x); }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
// Rounded operations CUDA never contracts into an FMA: one IEEE operation each (the emulated build
// targets x86-64 without FMA for device code, and clang contracts only within one expression).
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
