// Dense, pointwise and grouped convolution as implicit GEMMs, NHWC / OHWI.
//
// Per group g (grid z), with taps = kh*kw, Cg = Cin / groups, Cog = Cout / groups:
//   forward          y[m, co]    = sum_k A[m, k] B[k, co]   m = (n, oy, ox), k = (tap, ci)
//                    A = x gathered through the window (zero in the padding), B[k, co] = w[co, k]
//   backward input   dx[m, ci]   = sum_k A[m, k] B[k, ci]   m = (n, iy, ix), k = (tap, co)
//                    A = dy at the output pixel whose window puts tap on (iy, ix) (zero when
//                    none: stride misalignment or outside), B[(tap, co), ci] = w[co, tap, ci]
//   backward weight  dw[co, kf]  = sum_p dy[p, co] x_gathered[p, kf]   kf = (tap, ci)
//                    split over p into partial sums, then added in a fixed order (no atomics)
// Nothing is materialised: every tile load computes its source address (or zero) per 16-byte
// chunk, with FastDivmod for the index splits.
//
// Two kernels serve the three problems:
//   igemm_mma_kernel  f16/bf16, channels per group multiples of 8: 128x64x32 tiles, 8 warps of
//                     32x32, mma.sync m16n8k16 (f32 accumulation) fed by ldmatrix, a 3-stage
//                     cp.async pipeline (sm_80+; plain loads on sm_75, where f16 runs as two
//                     m16n8k8 and bf16 takes the SIMT kernel).
//   igemm_simt_kernel any dtype and shape: 64x64x16 tiles in float shared memory, 4x4 outputs
//                     per thread; 16-byte chunks when the channels allow (f32, Cg % 4 == 0),
//                     single elements otherwise.
#include <algorithm>
#include <type_traits>

#include "kernels/cuda/conv2d_common.cuh"
#include "kernels/cuda/conv2d_internal.h"
#include "kernels/cuda/fast_divmod.h"
#include "kernels/cuda_conv2d_scratch.h"
#include "kernels/cuda_kernel_paths.h"

namespace sg::cuda::conv2d_detail {
namespace {

struct GemmGeometry {
  int n, h, w, cin, ho, wo, cout, kh, kw, sh, sw, pt, pl, groups, cg, cog, taps;
  FastDivmod div_howo, div_wo, div_hw, div_w, div_cg, div_cog, div_kw, div_sh, div_sw;
};

GemmGeometry gemm_geometry(const Conv2dParams& p, const Conv2dShape& s) {
  GemmGeometry g{};
  g.n = int(s.n), g.h = int(s.h), g.w = int(s.w), g.cin = int(s.c_in);
  g.ho = int(s.out_h), g.wo = int(s.out_w), g.cout = int(s.c_out);
  g.kh = int(p.kernel_h), g.kw = int(p.kernel_w), g.sh = int(p.stride_h), g.sw = int(p.stride_w);
  g.pt = int(p.pad_top), g.pl = int(p.pad_left), g.groups = int(p.groups);
  g.cg = g.cin / g.groups, g.cog = g.cout / g.groups, g.taps = g.kh * g.kw;
  g.div_howo = FastDivmod(std::max(1, g.ho * g.wo));
  g.div_wo = FastDivmod(std::max(1, g.wo));
  g.div_hw = FastDivmod(std::max(1, g.h * g.w));
  g.div_w = FastDivmod(std::max(1, g.w));
  g.div_cg = FastDivmod(g.cg);
  g.div_cog = FastDivmod(g.cog);
  g.div_kw = FastDivmod(g.kw);
  g.div_sh = FastDivmod(g.sh);
  g.div_sw = FastDivmod(g.sw);
  return g;
}

// Every problem gives: the GEMM extents M, N, K; whether A's and B's contiguous 16-byte chunks
// run along K (else along M or N); a_chunk(g, m, k) / b_chunk(g, k, n), the address of the
// chunk that starts there, or nullptr when it is padding (the caller checks the extents);
// store(g, split, m, n, value); and base(), any valid address (cp.async wants one even when it
// copies nothing).

template <class Storage>
struct ForwardProblem {
  using T = Storage;
  static constexpr bool a_along_k = true, b_along_k = true;
  GemmGeometry g;
  const T* x;
  const T* w;
  const T* bias;
  T* y;
  int M, N, K;  // N*Ho*Wo, Cog, taps*Cg

  __device__ const T* base() const { return x; }
  __device__ const T* a_chunk(int grp, int m, int k) const {
    int image, pixel, oy, ox, tap, ci, r, s;
    g.div_howo.divmod(m, image, pixel);
    g.div_wo.divmod(pixel, oy, ox);
    g.div_cg.divmod(k, tap, ci);
    g.div_kw.divmod(tap, r, s);
    const int iy = oy * g.sh - g.pt + r, ix = ox * g.sw - g.pl + s;
    if (unsigned(iy) >= unsigned(g.h) || unsigned(ix) >= unsigned(g.w)) return nullptr;
    return x + ((int64_t(image) * g.h + iy) * g.w + ix) * g.cin + grp * g.cg + ci;
  }
  __device__ const T* b_chunk(int grp, int k, int n) const { return w + int64_t(grp * g.cog + n) * K + k; }
  __device__ void store(int grp, int, int m, int n, float v) const {
    const int co = grp * g.cog + n;
    if (bias) v += to_acc(bias[co]);
    y[int64_t(m) * g.cout + co] = from_acc<T>(v);
  }
};

template <class Storage>
struct BackwardInputProblem {
  using T = Storage;
  static constexpr bool a_along_k = true, b_along_k = false;
  GemmGeometry g;
  const T* dy;
  const T* w;
  T* dx;
  int M, N, K;  // N*H*W, Cg, taps*Cog

  __device__ const T* base() const { return dy; }
  __device__ const T* a_chunk(int grp, int m, int k) const {
    int image, pixel, iy, ix, tap, co, r, s;
    g.div_hw.divmod(m, image, pixel);
    g.div_w.divmod(pixel, iy, ix);
    g.div_cog.divmod(k, tap, co);
    g.div_kw.divmod(tap, r, s);
    const int ty = iy + g.pt - r, tx = ix + g.pl - s;  // = oy * sh, ox * sw when tap r, s hits
    if (ty < 0 || tx < 0) return nullptr;
    int oy, ry, ox, rx;
    g.div_sh.divmod(ty, oy, ry);
    g.div_sw.divmod(tx, ox, rx);
    if (ry != 0 || rx != 0 || oy >= g.ho || ox >= g.wo) return nullptr;
    return dy + ((int64_t(image) * g.ho + oy) * g.wo + ox) * g.cout + grp * g.cog + co;
  }
  __device__ const T* b_chunk(int grp, int k, int n) const {
    int tap, co;
    g.div_cog.divmod(k, tap, co);
    return w + (int64_t(grp * g.cog + co) * g.taps + tap) * g.cg + n;
  }
  __device__ void store(int grp, int, int m, int n, float v) const {
    dx[int64_t(m) * g.cin + grp * g.cg + n] = from_acc<T>(v);
  }
};

template <class Storage>
struct BackwardWeightProblem {
  using T = Storage;
  static constexpr bool a_along_k = false, b_along_k = false;
  GemmGeometry g;
  const T* x;
  const T* dy;
  float* partial;  // [splits][Cout][taps*Cg]
  int M, N, K;     // Cog, taps*Cg, N*Ho*Wo

  __device__ const T* base() const { return dy; }
  __device__ const T* a_chunk(int grp, int m, int k) const { return dy + int64_t(k) * g.cout + grp * g.cog + m; }
  __device__ const T* b_chunk(int grp, int k, int n) const {
    int image, pixel, oy, ox, tap, ci, r, s;
    g.div_howo.divmod(k, image, pixel);
    g.div_wo.divmod(pixel, oy, ox);
    g.div_cg.divmod(n, tap, ci);
    g.div_kw.divmod(tap, r, s);
    const int iy = oy * g.sh - g.pt + r, ix = ox * g.sw - g.pl + s;
    if (unsigned(iy) >= unsigned(g.h) || unsigned(ix) >= unsigned(g.w)) return nullptr;
    return x + ((int64_t(image) * g.h + iy) * g.w + ix) * g.cin + grp * g.cg + ci;
  }
  __device__ void store(int grp, int split, int m, int n, float v) const {
    partial[((int64_t(split) * g.groups + grp) * g.cog + m) * N + n] = v;
  }
};

// ---- SIMT kernel -------------------------------------------------------------------------------
constexpr int kThreads = 256;

// Grid (ceil(M / 64), ceil(N / 64), groups * splits); split s covers K in
// [s * k_per_split, +k_per_split), k_per_split a multiple of 32.
template <class P, int CH>
__global__ void __launch_bounds__(kThreads) igemm_simt_kernel(P p, int k_per_split) {
  using T = typename P::T;
  constexpr int BM = 64, BN = 64, BK = 16;
  __shared__ __align__(16) float As[BK][BM + 4];  // [k][m]
  __shared__ __align__(16) float Bs[BK][BN + 4];  // [k][n]
  const int tid = int(threadIdx.x);
  const int grp = int(blockIdx.z) % p.g.groups, split = int(blockIdx.z) / p.g.groups;
  const int k_begin = split * k_per_split, k_end = min(p.K, k_begin + k_per_split);
  const int m0 = int(blockIdx.x) * BM, n0 = int(blockIdx.y) * BN;
  const int tx = tid % 16, ty = tid / 16;  // outputs: rows ty*4.., columns tx*4..
  float acc[4][4] = {};

  for (int k0 = k_begin; k0 < k_end; k0 += BK) {
    for (int slot = tid; slot < BM * BK / CH; slot += kThreads) {
      int mi, ki;
      if constexpr (P::a_along_k) {
        mi = slot / (BK / CH), ki = (slot % (BK / CH)) * CH;
      } else {
        ki = slot / (BM / CH), mi = (slot % (BM / CH)) * CH;
      }
      const int m = m0 + mi, k = k0 + ki;
      float vals[CH];
#pragma unroll
      for (int j = 0; j < CH; ++j) vals[j] = 0.0f;
      if (m < p.M && k < k_end) {
        const T* src = p.a_chunk(grp, m, k);
        if (src) load_floats<T, CH>(src, vals);
      }
#pragma unroll
      for (int j = 0; j < CH; ++j) {
        if constexpr (P::a_along_k)
          As[ki + j][mi] = vals[j];
        else
          As[ki][mi + j] = vals[j];
      }
    }
    for (int slot = tid; slot < BN * BK / CH; slot += kThreads) {
      int ni, ki;
      if constexpr (P::b_along_k) {
        ni = slot / (BK / CH), ki = (slot % (BK / CH)) * CH;
      } else {
        ki = slot / (BN / CH), ni = (slot % (BN / CH)) * CH;
      }
      const int n = n0 + ni, k = k0 + ki;
      float vals[CH];
#pragma unroll
      for (int j = 0; j < CH; ++j) vals[j] = 0.0f;
      if (n < p.N && k < k_end) {
        const T* src = p.b_chunk(grp, k, n);
        if (src) load_floats<T, CH>(src, vals);
      }
#pragma unroll
      for (int j = 0; j < CH; ++j) {
        if constexpr (P::b_along_k)
          Bs[ki + j][ni] = vals[j];
        else
          Bs[ki][ni + j] = vals[j];
      }
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      const float4 a = *reinterpret_cast<const float4*>(&As[kk][ty * 4]);
      const float4 b = *reinterpret_cast<const float4*>(&Bs[kk][tx * 4]);
      const float av[4] = {a.x, a.y, a.z, a.w}, bv[4] = {b.x, b.y, b.z, b.w};
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int m = m0 + ty * 4 + i, n = n0 + tx * 4 + j;
      if (m < p.M && n < p.N) p.store(grp, split, m, n, acc[i][j]);
    }
}

// ---- Tensor-core kernel ------------------------------------------------------------------------
[[maybe_unused]] __device__ __forceinline__ uint32_t smem_address(const void* p) {
  return uint32_t(__cvta_generic_to_shared(p));
}

// 16 bytes from global src to shared dst, or 16 zero bytes when src is nullptr.
__device__ __forceinline__ void copy16_or_zero(void* dst, const void* src, const void* valid_address) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const int bytes = src ? 16 : 0;  // cp.async fills the rest of the 16 with zeros
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_address(dst)),
               "l"(src ? src : valid_address), "r"(bytes)
               : "memory");
#else
  (void)valid_address;
  *reinterpret_cast<uint4*>(dst) = src ? __ldg(reinterpret_cast<const uint4*>(src)) : make_uint4(0, 0, 0, 0);
#endif
}

__device__ __forceinline__ void cp_async_commit() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}

template <int Pending>
__device__ __forceinline__ void cp_async_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group %0;\n" ::"n"(Pending) : "memory");
#endif
}

// ldmatrix and mma.sync exist from sm_75: below that (a Pascal build, -DCMAKE_CUDA_ARCHITECTURES=61)
// ptxas rejects them, so the tensor-core kernel compiles to a trap there; the launcher never
// picks it on those GPUs (see choose_path).
template <bool Transpose>
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 750
  (void)p;
  r[0] = r[1] = r[2] = r[3] = 0;
  __trap();
#else
  if constexpr (Transpose)
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_address(p)));
  else
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_address(p)));
#endif
}

// d += a (16x16, row) * b (16x8, col), f32 accumulation.
template <class T>
__device__ __forceinline__ void mma_16816(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  if constexpr (std::is_same_v<T, Half>)
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  else
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 750
  if constexpr (std::is_same_v<T, Half>) {
    // sm_75: k16 as two k8 halves (a0,a1 with b0: k 0-7; a2,a3 with b1: k 8-15).
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5}, {%6}, {%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(b[0]));
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5}, {%6}, {%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[2]), "r"(a[3]), "r"(b[1]));
  } else {
    __trap();  // bf16 MMA needs sm_80; the launcher never picks this kernel there
  }
#elif defined(__CUDA_ARCH__)
  (void)d, (void)a, (void)b;
  __trap();  // no mma.sync before sm_75; the launcher never picks this kernel there
#else
  (void)d, (void)a, (void)b;
#endif
}

constexpr int kMmaBM = kConvMmaTileM, kMmaBN = kConvMmaTileN, kMmaBK = 32, kMmaStages = 3;
constexpr int kPad = 8;  // halves: rows 16 bytes apart modulo 128, so ldmatrix is conflict-free

template <class P>
struct MmaLayout {
  // A: [BM][BK + pad] when its chunks run along K, else [BK][BM + pad]; B likewise with BN.
  static constexpr int lda = P::a_along_k ? kMmaBK + kPad : kMmaBM + kPad;
  static constexpr int ldb = P::b_along_k ? kMmaBK + kPad : kMmaBN + kPad;
  static constexpr int a_elems = P::a_along_k ? kMmaBM * lda : kMmaBK * lda;
  static constexpr int b_elems = P::b_along_k ? kMmaBN * ldb : kMmaBK * ldb;
  static constexpr int stage_elems = a_elems + b_elems;
};

// Grid (ceil(M / 128), ceil(N / 64), groups * splits). Block 256 = 8 warps in 4 (M) x 2 (N),
// each warp 32x32 = 2 x 4 m16n8 tiles.
template <class P>
__global__ void __launch_bounds__(kThreads) igemm_mma_kernel(P p, int k_per_split) {
  using T = typename P::T;
  using L = MmaLayout<P>;
  constexpr int BM = kMmaBM, BN = kMmaBN, BK = kMmaBK, STAGES = kMmaStages;
  __shared__ __align__(128) uint16_t smem[STAGES * L::stage_elems];

  const int tid = int(threadIdx.x), lane = tid % 32, warp = tid / 32;
  const int grp = int(blockIdx.z) % p.g.groups, split = int(blockIdx.z) / p.g.groups;
  const int k_begin = split * k_per_split, k_end = min(p.K, k_begin + k_per_split);
  const int m0 = int(blockIdx.x) * BM, n0 = int(blockIdx.y) * BN;
  const int k_tiles = (k_end - k_begin + BK - 1) / BK;
  const void* valid_address = p.base();

  auto load_tile = [&](int stage, int k0) {
    uint16_t* As = smem + stage * L::stage_elems;
    uint16_t* Bs = As + L::a_elems;
#pragma unroll
    for (int i = 0; i < BM * BK / 8 / kThreads; ++i) {
      const int slot = tid + i * kThreads;
      int mi, ki;
      uint16_t* dst;
      if constexpr (P::a_along_k) {
        mi = slot / (BK / 8), ki = (slot % (BK / 8)) * 8, dst = As + mi * L::lda + ki;
      } else {
        ki = slot / (BM / 8), mi = (slot % (BM / 8)) * 8, dst = As + ki * L::lda + mi;
      }
      const int m = m0 + mi, k = k0 + ki;
      copy16_or_zero(dst, m < p.M && k < k_end ? p.a_chunk(grp, m, k) : nullptr, valid_address);
    }
#pragma unroll
    for (int i = 0; i < BN * BK / 8 / kThreads; ++i) {
      const int slot = tid + i * kThreads;
      int ni, ki;
      uint16_t* dst;
      if constexpr (P::b_along_k) {
        ni = slot / (BK / 8), ki = (slot % (BK / 8)) * 8, dst = Bs + ni * L::ldb + ki;
      } else {
        ki = slot / (BN / 8), ni = (slot % (BN / 8)) * 8, dst = Bs + ki * L::ldb + ni;
      }
      const int n = n0 + ni, k = k0 + ki;
      copy16_or_zero(dst, n < p.N && k < k_end ? p.b_chunk(grp, k, n) : nullptr, valid_address);
    }
  };

  float acc[2][4][4] = {};
  const int wm = (warp % 4) * 32, wn = (warp / 4) * 32;

#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (s < k_tiles) load_tile(s, k_begin + s * BK);
    cp_async_commit();
  }
  for (int kt = 0; kt < k_tiles; ++kt) {
    cp_async_wait<STAGES - 2>();  // tile kt has landed (this thread's copies)
    __syncthreads();              // ... everyone's, and everyone is done with tile kt - 1
    const int next = kt + STAGES - 1;
    if (next < k_tiles) load_tile(next % STAGES, k_begin + next * BK);
    cp_async_commit();

    const uint16_t* As = smem + (kt % STAGES) * L::stage_elems;
    const uint16_t* Bs = As + L::a_elems;
#pragma unroll
    for (int kb = 0; kb < BK; kb += 16) {
      uint32_t a[2][4], b[4][2];
#pragma unroll
      for (int mi = 0; mi < 2; ++mi) {
        const int row = wm + mi * 16;
        if constexpr (P::a_along_k) {
          // matrices (m 0-7, k 0-7), (m 8-15, k 0-7), (m 0-7, k 8-15), (m 8-15, k 8-15)
          ldmatrix_x4<false>(a[mi], As + (row + lane % 16) * L::lda + kb + (lane / 16) * 8);
        } else {
          const int j = lane / 8, r = lane % 8;
          ldmatrix_x4<true>(a[mi], As + (kb + (j / 2) * 8 + r) * L::lda + row + (j % 2) * 8);
        }
      }
#pragma unroll
      for (int nj = 0; nj < 2; ++nj) {
        const int col = wn + nj * 16;
        uint32_t r4[4];
        if constexpr (P::b_along_k) {
          // matrices (n 0-7, k 0-7), (n 0-7, k 8-15), (n 8-15, k 0-7), (n 8-15, k 8-15)
          ldmatrix_x4<false>(r4, Bs + (col + (lane / 16) * 8 + lane % 8) * L::ldb + kb + ((lane / 8) % 2) * 8);
        } else {
          const int j = lane / 8, r = lane % 8;
          ldmatrix_x4<true>(r4, Bs + (kb + (j % 2) * 8 + r) * L::ldb + col + (j / 2) * 8);
        }
        b[2 * nj][0] = r4[0], b[2 * nj][1] = r4[1];
        b[2 * nj + 1][0] = r4[2], b[2 * nj + 1][1] = r4[3];
      }
#pragma unroll
      for (int mi = 0; mi < 2; ++mi)
#pragma unroll
        for (int ni = 0; ni < 4; ++ni) mma_16816<T>(acc[mi][ni], a[mi], b[ni]);
    }
  }
  cp_async_wait<0>();

  // Accumulator element i of tile (mi, ni): row lane/4 (+8 for i >= 2), column 2*(lane%4) + i%2.
#pragma unroll
  for (int mi = 0; mi < 2; ++mi)
#pragma unroll
    for (int ni = 0; ni < 4; ++ni)
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int m = m0 + wm + mi * 16 + lane / 4 + (i / 2) * 8;
        const int n = n0 + wn + ni * 8 + (lane % 4) * 2 + i % 2;
        if (m < p.M && n < p.N) p.store(grp, split, m, n, acc[mi][ni][i]);
      }
}

// ---- Launch ------------------------------------------------------------------------------------
// The __CUDA_ARCH__ / 10 that the code of `kernel` loaded for the current device was compiled
// for. Not the device's compute capability: a card with no machine code of its own JIT-compiles
// the newest PTX older than itself, and runs what that PTX holds.
template <class Kernel>
int compiled_arch(Kernel* kernel) {
  cudaFuncAttributes attributes{};
  SG_CUDA_CHECK(cudaFuncGetAttributes(&attributes, kernel));
  return attributes.ptxVersion;
}

bool all_aligned16(std::initializer_list<const void*> pointers) {
  for (const void* ptr : pointers)
    if (!aligned16(ptr)) return false;
  return true;
}

// The kernel for a problem: tensor cores when T is 16-bit, the chunk dimensions are multiples
// of 8 and the GPU has the instruction; the SIMT kernel with 16-byte f32 chunks when they are
// multiples of 4; single elements otherwise.
enum class Path { mma, simt_vector, simt_scalar };

template <class P>
Path choose_path(bool channels_multiple_of_8, bool channels_multiple_of_4, bool aligned) {
  using T = typename P::T;
  if constexpr (sizeof(T) == 2) {
    if (channels_multiple_of_8 && aligned) {
      // ldmatrix and mma.sync m16n8k8 (f16) need sm_75, m16n8k16 bf16 needs sm_80: below that
      // the kernel was compiled to a trap (kernels/cuda_kernel_paths.h).
      if (conv_uses_tensor_cores(DTypeOf<T>::value, compiled_arch(igemm_mma_kernel<P>))) return Path::mma;
    }
    return Path::simt_scalar;
  } else {
    return channels_multiple_of_4 && aligned ? Path::simt_vector : Path::simt_scalar;
  }
}

template <class P>
void launch(const P& prob, Path path, int splits, int k_per_split, StreamHandle stream, const char* op) {
  SG_CHECK(int64_t(prob.g.groups) * splits <= 65535, op, ": too many groups for one launch (", prob.g.groups, ")");
  if (prob.M == 0 || prob.N == 0) return;
  const unsigned z = unsigned(prob.g.groups * splits);
  if (path == Path::mma) {
    if constexpr (sizeof(typename P::T) == 2) {
      const dim3 grid(unsigned(ceil_div(prob.M, kMmaBM)), unsigned(ceil_div(prob.N, kMmaBN)), z);
      igemm_mma_kernel<P><<<grid, kThreads, 0, stream>>>(prob, k_per_split);
    }
  } else {
    const dim3 grid(unsigned(ceil_div(prob.M, 64)), unsigned(ceil_div(prob.N, 64)), z);
    if (path == Path::simt_vector) {
      if constexpr (sizeof(typename P::T) == 4) igemm_simt_kernel<P, 4><<<grid, kThreads, 0, stream>>>(prob, k_per_split);
    } else {
      igemm_simt_kernel<P, 1><<<grid, kThreads, 0, stream>>>(prob, k_per_split);
    }
  }
  SG_CUDA_CHECK_LAUNCH(op);
}

void check_extents(const GemmGeometry& g, const char* op) {
  const int64_t out_pixels = int64_t(g.n) * g.ho * g.wo, in_pixels = int64_t(g.n) * g.h * g.w;
  SG_CHECK(out_pixels < (int64_t(1) << 31) && in_pixels < (int64_t(1) << 31) &&
               int64_t(g.taps) * std::max(g.cg, g.cog) < (int64_t(1) << 31),
           op, ": tensors too large for 32-bit GEMM indices");
}

}  // namespace

void implicit_gemm_forward(const Conv2dParams& p, const Conv2dShape& s, DType dtype, const void* x, const void* w,
                           const void* bias, void* y, StreamHandle stream) {
  const GemmGeometry g = gemm_geometry(p, s);
  check_extents(g, "conv2d_forward");
  dispatch_floating(dtype, "conv2d_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const ForwardProblem<T> prob{g,
                                 static_cast<const T*>(x),
                                 static_cast<const T*>(w),
                                 static_cast<const T*>(bias),
                                 static_cast<T*>(y),
                                 g.n * g.ho * g.wo,
                                 g.cog,
                                 g.taps * g.cg};
    const Path path = choose_path<ForwardProblem<T>>(g.cg % 8 == 0, g.cg % 4 == 0, all_aligned16({x, w}));
    launch(prob, path, 1, prob.K, stream, "conv2d_forward");
  });
}

void implicit_gemm_backward_input(const Conv2dParams& p, const Conv2dShape& s, DType dtype, const void* dy,
                                  const void* w, void* dx, StreamHandle stream) {
  const GemmGeometry g = gemm_geometry(p, s);
  check_extents(g, "conv2d_backward_input");
  dispatch_floating(dtype, "conv2d_backward_input", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const BackwardInputProblem<T> prob{g,
                                       static_cast<const T*>(dy),
                                       static_cast<const T*>(w),
                                       static_cast<T*>(dx),
                                       g.n * g.h * g.w,
                                       g.cg,
                                       g.taps * g.cog};
    const bool by8 = g.cg % 8 == 0 && g.cog % 8 == 0, by4 = g.cg % 4 == 0 && g.cog % 4 == 0;
    const Path path = choose_path<BackwardInputProblem<T>>(by8, by4, all_aligned16({dy, w}));
    launch(prob, path, 1, prob.K, stream, "conv2d_backward_input");
  });
}

void implicit_gemm_backward_weight(const Conv2dParams& p, const Conv2dShape& s, DType dtype, const void* x,
                                   const void* dy, void* dw, void* dbias, StreamHandle stream) {
  const char* op = "conv2d_backward_weight";
  const GemmGeometry g = gemm_geometry(p, s);
  check_extents(g, op);
  dispatch_floating(dtype, op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const int M = g.cog, N = g.taps * g.cg, K = g.n * g.ho * g.wo;
    const bool by8 = g.cg % 8 == 0 && g.cog % 8 == 0, by4 = g.cg % 4 == 0 && g.cog % 4 == 0;
    const Path path = choose_path<BackwardWeightProblem<T>>(by8, by4, all_aligned16({x, dy}));
    // The reduction over pixels split into partial sums (kernels/cuda_conv2d_scratch.h, which the
    // memory plan counts with too).
    const int64_t weight_elems = int64_t(g.cout) * N;
    const ReductionSplit split = implicit_gemm_weight_grad_split(M, N, K, g.groups, weight_elems, path == Path::mma);
    const int64_t splits = split.splits, k_per_split = split.k_per_split;
    DeviceScratch partial(size_t(splits) * size_t(weight_elems) * sizeof(float), stream);
    if (K == 0) {
      SG_CUDA_CHECK(cudaMemsetAsync(dw, 0, size_t(weight_elems) * sizeof(T), stream));
    } else {
      const BackwardWeightProblem<T> prob{g, static_cast<const T*>(x), static_cast<const T*>(dy), partial.floats(),
                                          M, N, K};
      launch(prob, path, int(splits), int(k_per_split), stream, op);
      column_sum(partial.floats(), splits, int(weight_elems), StoreRow<T>{static_cast<T*>(dw), int(weight_elems)},
                 stream, op);
    }
    if (dbias) {
      if (K == 0)
        SG_CUDA_CHECK(cudaMemsetAsync(dbias, 0, size_t(g.cout) * sizeof(T), stream));
      else
        column_sum(static_cast<const T*>(dy), K, g.cout, StoreRow<T>{static_cast<T*>(dbias), g.cout}, stream, op);
    }
  });
}

}  // namespace sg::cuda::conv2d_detail
