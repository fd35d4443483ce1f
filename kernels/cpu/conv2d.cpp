#include "kernels/cpu/conv2d.h"

#include "core/tensor.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <memory>
#include <type_traits>
#include <vector>

#include "kernels/cpu/bias_activation.h"
#include "kernels/cpu/float_convert.h"
#include "kernels/cpu/isa.h"
#include "kernels/scalar_math.h"

namespace sg::cpu {
namespace {

// Scratch from the CPU allocator: it counts against the memory cap like any tensor, and the
// allocator's cache hands the same blocks back every step instead of fresh, page-faulting ones.
class Buffer {
 public:
  explicit Buffer(int64_t n)
      : tensor_(Tensor::empty({int64_t(conv2d_cpu_buffer_bytes(n) / sizeof(float))}, DType::f32, Device::cpu(),
                              "conv2d workspace")) {}
  float* get() const { return static_cast<float*>(tensor_.data()); }

 private:
  Tensor tensor_;
};
Buffer make_buffer(int64_t n) { return Buffer(n); }

template <class T>
constexpr bool kIsFloat = std::is_same_v<T, float>;

void fill_zero(float* dst, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > 32768)
  for (int64_t i = 0; i < n; ++i) dst[i] = 0.0f;
}

int to_blas_int(int64_t v) {
  SG_CHECK(v >= 0 && v <= INT_MAX, "conv2d: GEMM dimension ", v, " does not fit OpenBLAS's int");
  return int(v);
}

// Row-major C[m, n] = alpha * op(A)[m, k] * op(B)[k, n] + beta * C. Called from serial code
// only: OpenBLAS (pthread build) threads itself.
void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
           int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, to_blas_int(m),
              to_blas_int(n), to_blas_int(k), 1.0f, a, to_blas_int(lda), b, to_blas_int(ldb), beta, c,
              to_blas_int(ldc));
}

bool is_depthwise(const Conv2dParams& p, const Conv2dShape& s) {
  return p.groups == s.c_in && s.c_in == s.c_out && p.groups > 1;
}

// A 1x1 stride-1 unpadded convolution is a plain GEMM on the activations: x [N*H*W, Cin].
bool is_pointwise_direct(const Conv2dParams& p) {
  return p.kernel_h == 1 && p.kernel_w == 1 && p.stride_h == 1 && p.stride_w == 1 && p.pad_top == 0 &&
         p.pad_bottom == 0 && p.pad_left == 0 && p.pad_right == 0;
}

// Output rows (one row = Wo pixels) per chunk so that `floats_per_pixel` of scratch stays bounded.
int64_t rows_per_chunk(const Conv2dShape& s, int64_t floats_per_pixel, int64_t scratch_bytes) {
  const int64_t per_row = std::max<int64_t>(1, s.out_w * floats_per_pixel * int64_t(sizeof(float)));
  return std::clamp<int64_t>(scratch_bytes / per_row, 1, std::max<int64_t>(1, s.n * s.out_h));
}

// ---- dense / grouped / pointwise: implicit GEMM -------------------------------------------
// A chunk is output rows [r0, r1) with r = n * Ho + oh, i.e. pixels [r0 * Wo, r1 * Wo) of y.
// The GEMM of group g: y[:, g*cout_g : (g+1)*cout_g] = cols_g [M, k_g] * w_g^T, with
// k = (i, j, c) matching OHWI, so w_g is w[g*cout_g : (g+1)*cout_g] as a [cout_g, k_g] matrix.

struct GemmGeometry {
  int64_t cin_g, cout_g, k_g;
  GemmGeometry(const Conv2dParams& p, const Conv2dShape& s)
      : cin_g(s.c_in / p.groups), cout_g(s.c_out / p.groups), k_g(p.kernel_h * p.kernel_w * (s.c_in / p.groups)) {}
};

// cols [(r1 - r0) * Wo, k_g]: the input channels of group g under every tap, zero outside.
template <class T>
void im2col(const Conv2dParams& p, const Conv2dShape& s, const T* x, int64_t g, int64_t r0, int64_t r1,
            float* cols) {
  const GemmGeometry geo(p, s);
  const int64_t pixels = (r1 - r0) * s.out_w;
#pragma omp parallel for schedule(static)
  for (int64_t m = 0; m < pixels; ++m) {
    const int64_t r = r0 + m / s.out_w, ow = m % s.out_w;
    const int64_t n = r / s.out_h, oh = r % s.out_h;
    float* col = cols + m * geo.k_g;
    for (int64_t i = 0; i < p.kernel_h; ++i) {
      const int64_t ih = oh * p.stride_h - p.pad_top + i;
      for (int64_t j = 0; j < p.kernel_w; ++j) {
        const int64_t iw = ow * p.stride_w - p.pad_left + j;
        float* dst = col + (i * p.kernel_w + j) * geo.cin_g;
        if (ih < 0 || ih >= s.h || iw < 0 || iw >= s.w) {
          std::fill(dst, dst + geo.cin_g, 0.0f);
          continue;
        }
        const T* src = x + ((n * s.h + ih) * s.w + iw) * s.c_in + g * geo.cin_g;
        to_f32(src, dst, geo.cin_g);
      }
    }
  }
}

// The adjoint of im2col for group g: dx[n, ih, iw, g*cin_g + c] += dcols[pixel, (i, j, c)] over
// the chunk's pixels that read (ih, iw). A gather per dx row, so threads never share a row.
// dx points at image n0 ([*, H, W, Cin] f32).
void col2im_add(const Conv2dParams& p, const Conv2dShape& s, int64_t g, int64_t r0, int64_t r1, int64_t n0,
                const float* dcols, float* dx) {
  const GemmGeometry geo(p, s);
  const int64_t n_first = r0 / s.out_h, n_last = (r1 - 1) / s.out_h;
  const int64_t dx_rows = (n_last - n_first + 1) * s.h;
#pragma omp parallel for schedule(static)
  for (int64_t q = 0; q < dx_rows; ++q) {
    const int64_t n = n_first + q / s.h, ih = q % s.h;
    for (int64_t i = 0; i < p.kernel_h; ++i) {
      const int64_t th = ih + p.pad_top - i;  // = oh * stride_h
      if (th < 0 || th % p.stride_h != 0) continue;
      const int64_t oh = th / p.stride_h;
      const int64_t r = n * s.out_h + oh;
      if (oh >= s.out_h || r < r0 || r >= r1) continue;
      for (int64_t iw = 0; iw < s.w; ++iw) {
        float* dst = dx + (((n - n0) * s.h + ih) * s.w + iw) * s.c_in + g * geo.cin_g;
        for (int64_t j = 0; j < p.kernel_w; ++j) {
          const int64_t tw = iw + p.pad_left - j;
          if (tw < 0 || tw % p.stride_w != 0 || tw / p.stride_w >= s.out_w) continue;
          const int64_t ow = tw / p.stride_w;
          const float* src = dcols + ((r - r0) * s.out_w + ow) * geo.k_g + (i * p.kernel_w + j) * geo.cin_g;
          for (int64_t c = 0; c < geo.cin_g; ++c) dst[c] += src[c];
        }
      }
    }
  }
}

template <class T>
void dense_forward(const Conv2dParams& p, const Conv2dShape& s, const T* x, const T* w, const T* bias, T* y,
                   int64_t scratch_bytes) {
  const GemmGeometry geo(p, s);
  const F32Input<T> w32(w, s.c_out * geo.k_g);  // [Cout, k_g]
  std::vector<float> bias32;
  if (bias) {
    bias32.resize(size_t(s.c_out));
    to_f32(bias, bias32.data(), s.c_out);
  }
  const bool direct = is_pointwise_direct(p);
  const Conv2dCpuWorkspace ws = conv2d_cpu_workspace(Conv2dPass::forward, p, s, DTypeOf<T>::value, scratch_bytes);
  const int64_t rows = s.n * s.out_h, chunk = ws.rows_per_chunk;
  Buffer cols = make_buffer(ws.buffer_floats[0]);
  Buffer y_scratch = make_buffer(ws.buffer_floats[1]);
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t r1 = std::min(rows, r0 + chunk), m = (r1 - r0) * s.out_w;
    float* yc;  // [m, Cout]
    if constexpr (kIsFloat<T>)
      yc = y + r0 * s.out_w * s.c_out;
    else
      yc = y_scratch.get();
    float beta = 0.0f;
    if (bias) {
#pragma omp parallel for schedule(static) if (m * s.c_out > 32768)
      for (int64_t q = 0; q < m; ++q) std::copy(bias32.begin(), bias32.end(), yc + q * s.c_out);
      beta = 1.0f;
    }
    if (direct) {
      const float* a;  // [m, Cin]; for a 1x1 stride-1 conv the pixels of x and y coincide
      if constexpr (kIsFloat<T>) {
        a = x + r0 * s.out_w * s.c_in;
      } else {
        to_f32_parallel(x + r0 * s.out_w * s.c_in, cols.get(), m * s.c_in);
        a = cols.get();
      }
      for (int64_t g = 0; g < p.groups; ++g)
        sgemm(false, true, m, geo.cout_g, geo.cin_g, a + g * geo.cin_g, s.c_in, w32.get() + g * geo.cout_g * geo.k_g,
              geo.k_g, beta, yc + g * geo.cout_g, s.c_out);
    } else {
      for (int64_t g = 0; g < p.groups; ++g) {
        im2col(p, s, x, g, r0, r1, cols.get());
        sgemm(false, true, m, geo.cout_g, geo.k_g, cols.get(), geo.k_g, w32.get() + g * geo.cout_g * geo.k_g, geo.k_g,
              beta, yc + g * geo.cout_g, s.c_out);
      }
    }
    if constexpr (!kIsFloat<T>) from_f32_parallel(yc, y + r0 * s.out_w * s.c_out, m * s.c_out);
  }
}

template <class T>
void dense_backward_input(const Conv2dParams& p, const Conv2dShape& s, const T* dy, const T* w, T* dx,
                          int64_t scratch_bytes) {
  const GemmGeometry geo(p, s);
  const F32Input<T> w32(w, s.c_out * geo.k_g);  // [Cout, k_g]
  const int64_t rows = s.n * s.out_h;
  const Conv2dCpuWorkspace ws =
      conv2d_cpu_workspace(Conv2dPass::backward_input, p, s, DTypeOf<T>::value, scratch_bytes);
  const int64_t chunk = ws.rows_per_chunk;

  if (is_pointwise_direct(p)) {
    // dx [M, Cin] group g = dy_g [M, cout_g] * w_g [cout_g, cin_g]: no scatter needed.
    Buffer dy_scratch = make_buffer(ws.buffer_floats[0]);
    Buffer dx_scratch = make_buffer(ws.buffer_floats[1]);
    for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
      const int64_t r1 = std::min(rows, r0 + chunk), m = (r1 - r0) * s.out_w;
      const float* dyc;
      float* dxc;
      if constexpr (kIsFloat<T>) {
        dyc = dy + r0 * s.out_w * s.c_out;
        dxc = dx + r0 * s.out_w * s.c_in;
      } else {
        to_f32_parallel(dy + r0 * s.out_w * s.c_out, dy_scratch.get(), m * s.c_out);
        dyc = dy_scratch.get();
        dxc = dx_scratch.get();
      }
      for (int64_t g = 0; g < p.groups; ++g)
        sgemm(false, false, m, geo.cin_g, geo.cout_g, dyc + g * geo.cout_g, s.c_out,
              w32.get() + g * geo.cout_g * geo.k_g, geo.k_g, 0.0f, dxc + g * geo.cin_g, s.c_in);
      if constexpr (!kIsFloat<T>) from_f32_parallel(dxc, dx + r0 * s.out_w * s.c_in, m * s.c_in);
    }
    return;
  }

  // General: dcols [M, k_g] = dy_g * w_g, then col2im into an f32 accumulator. For float that
  // is dx itself; for 16-bit storage it is a block of whole images, converted when complete.
  const int64_t image = s.h * s.w * s.c_in;
  const int64_t images_per_block = ws.images_per_block;
  Buffer acc_scratch = make_buffer(ws.buffer_floats[0]);
  Buffer dcols = make_buffer(ws.buffer_floats[1]);
  Buffer dy_scratch = make_buffer(ws.buffer_floats[2]);
  for (int64_t n0 = 0; n0 < s.n; n0 += images_per_block) {
    const int64_t n1 = std::min(s.n, n0 + images_per_block);
    float* acc;  // [n1 - n0, H, W, Cin]
    if constexpr (kIsFloat<T>)
      acc = dx + n0 * image;
    else
      acc = acc_scratch.get();
    fill_zero(acc, (n1 - n0) * image);
    for (int64_t r0 = n0 * s.out_h; r0 < n1 * s.out_h; r0 += chunk) {
      const int64_t r1 = std::min(n1 * s.out_h, r0 + chunk), m = (r1 - r0) * s.out_w;
      const float* dyc;
      if constexpr (kIsFloat<T>) {
        dyc = dy + r0 * s.out_w * s.c_out;
      } else {
        to_f32_parallel(dy + r0 * s.out_w * s.c_out, dy_scratch.get(), m * s.c_out);
        dyc = dy_scratch.get();
      }
      for (int64_t g = 0; g < p.groups; ++g) {
        sgemm(false, false, m, geo.k_g, geo.cout_g, dyc + g * geo.cout_g, s.c_out,
              w32.get() + g * geo.cout_g * geo.k_g, geo.k_g, 0.0f, dcols.get(), geo.k_g);
        col2im_add(p, s, g, r0, r1, n0, dcols.get(), acc);
      }
    }
    if constexpr (!kIsFloat<T>) from_f32_parallel(acc, dx + n0 * image, (n1 - n0) * image);
  }
}

template <class T>
void dense_backward_weight(const Conv2dParams& p, const Conv2dShape& s, const T* x, const T* dy, T* dw, T* dbias,
                           int64_t scratch_bytes) {
  const GemmGeometry geo(p, s);
  const Conv2dCpuWorkspace ws =
      conv2d_cpu_workspace(Conv2dPass::backward_weight, p, s, DTypeOf<T>::value, scratch_bytes);
  Buffer dw_scratch = make_buffer(ws.buffer_floats[0]);
  float* dw32;  // [Cout, k_g]
  if constexpr (kIsFloat<T>)
    dw32 = dw;
  else
    dw32 = dw_scratch.get();
  std::vector<float> dbias32(size_t(s.c_out), 0.0f);
  const bool direct = is_pointwise_direct(p);
  const int64_t rows = s.n * s.out_h, chunk = ws.rows_per_chunk;
  Buffer cols = make_buffer(ws.buffer_floats[1]);
  Buffer dy_scratch = make_buffer(ws.buffer_floats[2]);
  if (rows == 0) fill_zero(dw32, s.c_out * geo.k_g);
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t r1 = std::min(rows, r0 + chunk), m = (r1 - r0) * s.out_w;
    const float beta = r0 == 0 ? 0.0f : 1.0f;  // the first chunk overwrites dw
    const float* dyc;  // [m, Cout]
    if constexpr (kIsFloat<T>) {
      dyc = dy + r0 * s.out_w * s.c_out;
    } else {
      to_f32_parallel(dy + r0 * s.out_w * s.c_out, dy_scratch.get(), m * s.c_out);
      dyc = dy_scratch.get();
    }
    if (dbias)
      for (int64_t q = 0; q < m; ++q) {
        const float* row = dyc + q * s.c_out;
        float* sum = dbias32.data();
#pragma omp simd
        for (int64_t c = 0; c < s.c_out; ++c) sum[c] += row[c];
      }
    if (direct) {
      const float* a;  // [m, Cin]
      if constexpr (kIsFloat<T>) {
        a = x + r0 * s.out_w * s.c_in;
      } else {
        to_f32_parallel(x + r0 * s.out_w * s.c_in, cols.get(), m * s.c_in);
        a = cols.get();
      }
      // dw_g [cout_g, cin_g] (+)= dy_g^T [cout_g, m] * x_g [m, cin_g]
      for (int64_t g = 0; g < p.groups; ++g)
        sgemm(true, false, geo.cout_g, geo.cin_g, m, dyc + g * geo.cout_g, s.c_out, a + g * geo.cin_g, s.c_in, beta,
              dw32 + g * geo.cout_g * geo.k_g, geo.k_g);
    } else {
      for (int64_t g = 0; g < p.groups; ++g) {
        im2col(p, s, x, g, r0, r1, cols.get());
        sgemm(true, false, geo.cout_g, geo.k_g, m, dyc + g * geo.cout_g, s.c_out, cols.get(), geo.k_g, beta,
              dw32 + g * geo.cout_g * geo.k_g, geo.k_g);
      }
    }
  }
  if constexpr (!kIsFloat<T>) from_f32_parallel(dw32, dw, s.c_out * geo.k_g);
  if (dbias)
    for (int64_t c = 0; c < s.c_out; ++c) dbias[c] = from_acc<T>(dbias32[size_t(c)]);
}

// ---- depthwise (groups == Cin == Cout): direct NHWC loops over channels ------------------
// The loops work on f32 with weights transposed once to taps [kh, kw, C], so the innermost
// loop runs over contiguous channels. 16-bit tensors go through them in blocks of whole
// images converted to f32 (bounded scratch); the conversion is cheap next to a scalar
// per-element conversion inside the tap loops.
template <class T>
std::vector<float> depthwise_taps(const Conv2dParams& p, const Conv2dShape& s, const T* w) {
  const int64_t taps = p.kernel_h * p.kernel_w, c_count = s.c_in;
  std::vector<float> wt(size_t(taps * c_count));
  for (int64_t c = 0; c < c_count; ++c)
    for (int64_t t = 0; t < taps; ++t) wt[size_t(t * c_count + c)] = to_acc(w[c * taps + t]);
  return wt;
}

}  // namespace

// One copy of the depthwise loops per ISA (kernels/cpu/isa.h), and calls to the current one.
#define SG_CPU_ISA_LOOPS "kernels/cpu/depthwise_loops.inc"
#include "kernels/cpu/isa_variants.inc"

namespace {

void depthwise_forward_f32(math::Activation act, const Conv2dParams& p, const Conv2dShape& s, const float* x,
                           const float* taps, const float* bias32, float* y) {
  SG_CPU_ISA_DISPATCH(depthwise_forward_act_f32, act, p, s, x, taps, bias32, y);
}
void depthwise_backward_input_f32(const Conv2dParams& p, const Conv2dShape& s, const float* dy, const float* taps,
                                  float* dx) {
  SG_CPU_ISA_DISPATCH(depthwise_backward_input_f32, p, s, dy, taps, dx);
}
void depthwise_weight_partials_f32(const Conv2dParams& p, const Conv2dShape& s, const float* x, const float* dy,
                                   float* partial, int threads) {
  SG_CPU_ISA_DISPATCH(depthwise_weight_partials_f32, p, s, x, dy, partial, threads);
}

// Images per block when 16-bit tensors are converted: `floats_per_image` of scratch each.
int64_t images_per_block(const Conv2dShape& s, int64_t floats_per_image, int64_t scratch_bytes) {
  return std::clamp<int64_t>(scratch_bytes / std::max<int64_t>(1, floats_per_image * int64_t(sizeof(float))), 1,
                             std::max<int64_t>(1, s.n));
}

}  // namespace

Conv2dCpuWorkspace conv2d_cpu_workspace(Conv2dPass pass, const Conv2dParams& p, const Conv2dShape& s, DType dtype,
                                        int64_t scratch_bytes) {
  const bool f32 = dtype == DType::f32;
  Conv2dCpuWorkspace ws;
  if (is_depthwise(p, s)) {
    if (f32) return ws;  // direct loops on the tensors; the weight gradient's per-thread partials are a std::vector
    // 16-bit: blocks of whole images converted to f32, input and output side by side.
    const int64_t in = s.h * s.w * s.c_in, out = s.out_h * s.out_w * s.c_in;
    ws.images_per_block = images_per_block(s, in + out, scratch_bytes);
    const int64_t block = ws.images_per_block;
    if (pass == Conv2dPass::backward_input)
      ws.buffer_floats = {block * out, block * in};  // dy, dx
    else
      ws.buffer_floats = {block * in, block * out};  // x and y (forward) or dy (weight gradient)
    return ws;
  }
  const GemmGeometry geo(p, s);
  const bool direct = is_pointwise_direct(p);
  // cols: none for f32 pointwise; x converted [M, Cin] for 16-bit pointwise; else im2col [M, k_g].
  const int64_t cols_width = direct ? (f32 ? 0 : s.c_in) : geo.k_g;
  const int64_t out_width = f32 ? 0 : s.c_out;  // y or dy converted, [M, Cout]
  const auto chunked = [&](int64_t width) { return width ? ws.rows_per_chunk * s.out_w * width : 0; };
  switch (pass) {
    case Conv2dPass::forward:
      ws.rows_per_chunk = rows_per_chunk(s, cols_width + out_width, scratch_bytes);
      ws.buffer_floats = {chunked(cols_width), chunked(out_width)};  // cols, y
      break;
    case Conv2dPass::backward_input:
      if (direct) {
        const int64_t dx_width = f32 ? 0 : s.c_in;
        ws.rows_per_chunk = rows_per_chunk(s, out_width + dx_width, scratch_bytes);
        ws.buffer_floats = {chunked(out_width), chunked(dx_width)};  // dy, dx
        break;
      }
      {
        // col2im adds into an f32 accumulator: dx itself for f32, else a block of whole images.
        const int64_t image = s.h * s.w * s.c_in;
        ws.images_per_block = f32 ? std::max<int64_t>(s.n, 1) : images_per_block(s, image, scratch_bytes);
        ws.rows_per_chunk = rows_per_chunk(s, geo.k_g + out_width, scratch_bytes);
        ws.buffer_floats = {f32 ? 0 : ws.images_per_block * image, ws.rows_per_chunk * s.out_w * geo.k_g,
                            chunked(out_width)};  // accumulator, dcols, dy
      }
      break;
    case Conv2dPass::backward_weight:
      ws.rows_per_chunk = rows_per_chunk(s, cols_width + out_width, scratch_bytes);
      ws.buffer_floats = {f32 ? 0 : s.c_out * geo.k_g, chunked(cols_width), chunked(out_width)};  // dw, cols, dy
      break;
  }
  return ws;
}

namespace {

// y = act(depthwise(x) + bias); bias32 f32 [C] or null (no bias).
template <class T>
void depthwise_forward(const Conv2dParams& p, const Conv2dShape& s, const T* x, const T* w, const float* bias32,
                       math::Activation act, T* y, int64_t scratch_bytes) {
  const int64_t c_count = s.c_in;
  const std::vector<float> taps = depthwise_taps(p, s, w);  // [kh, kw, C]
  std::vector<float> bias_or_zero(size_t(c_count), 0.0f);
  if (bias32) std::copy(bias32, bias32 + c_count, bias_or_zero.begin());
  if constexpr (kIsFloat<T>) {
    depthwise_forward_f32(act, p, s, x, taps.data(), bias_or_zero.data(), y);
  } else {
    const int64_t in = s.h * s.w * c_count, out = s.out_h * s.out_w * c_count;
    const Conv2dCpuWorkspace ws = conv2d_cpu_workspace(Conv2dPass::forward, p, s, DTypeOf<T>::value, scratch_bytes);
    const int64_t block = ws.images_per_block;
    Buffer xb = make_buffer(ws.buffer_floats[0]), yb = make_buffer(ws.buffer_floats[1]);
    for (int64_t n0 = 0; n0 < s.n; n0 += block) {
      Conv2dShape sub = s;
      sub.n = std::min(s.n, n0 + block) - n0;
      to_f32_parallel(x + n0 * in, xb.get(), sub.n * in);
      depthwise_forward_f32(act, p, sub, xb.get(), taps.data(), bias_or_zero.data(), yb.get());
      from_f32_parallel(yb.get(), y + n0 * out, sub.n * out);
    }
  }
}

template <class T>
void depthwise_backward_input(const Conv2dParams& p, const Conv2dShape& s, const T* dy, const T* w, T* dx,
                              int64_t scratch_bytes) {
  const int64_t c_count = s.c_in;
  const std::vector<float> taps = depthwise_taps(p, s, w);  // [kh, kw, C]
  if constexpr (kIsFloat<T>) {
    depthwise_backward_input_f32(p, s, dy, taps.data(), dx);
  } else {
    const int64_t in = s.h * s.w * c_count, out = s.out_h * s.out_w * c_count;
    const Conv2dCpuWorkspace ws =
        conv2d_cpu_workspace(Conv2dPass::backward_input, p, s, DTypeOf<T>::value, scratch_bytes);
    const int64_t block = ws.images_per_block;
    Buffer dyb = make_buffer(ws.buffer_floats[0]), dxb = make_buffer(ws.buffer_floats[1]);
    for (int64_t n0 = 0; n0 < s.n; n0 += block) {
      Conv2dShape sub = s;
      sub.n = std::min(s.n, n0 + block) - n0;
      to_f32_parallel(dy + n0 * out, dyb.get(), sub.n * out);
      depthwise_backward_input_f32(p, sub, dyb.get(), taps.data(), dxb.get());
      from_f32_parallel(dxb.get(), dx + n0 * in, sub.n * in);
    }
  }
}

// dw[c, i, j] = sum over n, oh, ow of x[n, ih, iw, c] * dy[n, oh, ow, c]. The per-thread
// partial sums are added in thread order, so the result is the same on every run with the
// same thread count.
template <class T>
void depthwise_backward_weight(const Conv2dParams& p, const Conv2dShape& s, const T* x, const T* dy, T* dw, T* dbias,
                               int64_t scratch_bytes) {
  const int64_t c_count = s.c_in, taps = p.kernel_h * p.kernel_w;
  const int64_t slice = (taps + 1) * c_count;  // per thread: [taps, C] weights then [C] bias
  const int threads = omp_get_max_threads();
  std::vector<float> partial(size_t(threads) * size_t(slice), 0.0f);
  if constexpr (kIsFloat<T>) {
    depthwise_weight_partials_f32(p, s, x, dy, partial.data(), threads);
  } else {
    const int64_t in = s.h * s.w * c_count, out = s.out_h * s.out_w * c_count;
    const Conv2dCpuWorkspace ws =
        conv2d_cpu_workspace(Conv2dPass::backward_weight, p, s, DTypeOf<T>::value, scratch_bytes);
    const int64_t block = ws.images_per_block;
    Buffer xb = make_buffer(ws.buffer_floats[0]), dyb = make_buffer(ws.buffer_floats[1]);
    for (int64_t n0 = 0; n0 < s.n; n0 += block) {
      Conv2dShape sub = s;
      sub.n = std::min(s.n, n0 + block) - n0;
      to_f32_parallel(x + n0 * in, xb.get(), sub.n * in);
      to_f32_parallel(dy + n0 * out, dyb.get(), sub.n * out);
      depthwise_weight_partials_f32(p, sub, xb.get(), dyb.get(), partial.data(), threads);
    }
  }
  for (int t = 1; t < threads; ++t)
    for (int64_t k = 0; k < slice; ++k) partial[size_t(k)] += partial[size_t(int64_t(t) * slice + k)];
  for (int64_t c = 0; c < c_count; ++c)
    for (int64_t t = 0; t < taps; ++t) dw[c * taps + t] = from_acc<T>(partial[size_t(t * c_count + c)]);
  if (dbias)
    for (int64_t c = 0; c < c_count; ++c) dbias[c] = from_acc<T>(partial[size_t(taps * c_count + c)]);
}

}  // namespace

void conv2d_forward(const Conv2dParams& p, const Conv2dShape& s, DType dtype, const void* x, const void* w,
                    const void* bias, void* y, int64_t scratch_bytes) {
  dispatch_floating(dtype, "conv2d_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const auto* xt = static_cast<const T*>(x);
    const auto* wt = static_cast<const T*>(w);
    const auto* bt = static_cast<const T*>(bias);
    auto* yt = static_cast<T*>(y);
    if (is_depthwise(p, s)) {
      std::vector<float> bias32;
      if (bt) {
        bias32.resize(size_t(s.c_out));
        to_f32(bt, bias32.data(), s.c_out);
      }
      depthwise_forward(p, s, xt, wt, bt ? bias32.data() : nullptr, math::Activation::identity, yt, scratch_bytes);
    } else
      dense_forward(p, s, xt, wt, bt, yt, scratch_bytes);
  });
}

void conv2d_backward_input(const Conv2dParams& p, const Conv2dShape& s, DType dtype, const void* dy, const void* w,
                           void* dx, int64_t scratch_bytes) {
  dispatch_floating(dtype, "conv2d_backward_input", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const auto* dyt = static_cast<const T*>(dy);
    const auto* wt = static_cast<const T*>(w);
    auto* dxt = static_cast<T*>(dx);
    if (is_depthwise(p, s))
      depthwise_backward_input(p, s, dyt, wt, dxt, scratch_bytes);
    else
      dense_backward_input(p, s, dyt, wt, dxt, scratch_bytes);
  });
}

void conv2d_backward_weight(const Conv2dParams& p, const Conv2dShape& s, DType dtype, const void* x, const void* dy,
                            void* dw, void* dbias, int64_t scratch_bytes) {
  dispatch_floating(dtype, "conv2d_backward_weight", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const auto* xt = static_cast<const T*>(x);
    const auto* dyt = static_cast<const T*>(dy);
    auto* dwt = static_cast<T*>(dw);
    auto* dbt = static_cast<T*>(dbias);
    if (is_depthwise(p, s))
      depthwise_backward_weight(p, s, xt, dyt, dwt, dbt, scratch_bytes);
    else
      dense_backward_weight(p, s, xt, dyt, dwt, dbt, scratch_bytes);
  });
}

void conv2d_bias_activation_forward(const Conv2dParams& p, const Conv2dShape& s, DType dtype, const void* x,
                                    const void* w, const float* bias, math::Activation act, void* y,
                                    int64_t scratch_bytes) {
  dispatch_floating(dtype, "conv2d_bias_activation_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const auto* xt = static_cast<const T*>(x);
    const auto* wt = static_cast<const T*>(w);
    auto* yt = static_cast<T*>(y);
    if (is_depthwise(p, s)) return depthwise_forward(p, s, xt, wt, bias, act, yt, scratch_bytes);
    dense_forward<T>(p, s, xt, wt, nullptr, yt, scratch_bytes);
    if (!bias && act == math::Activation::identity) return;
    std::vector<float> zeros;
    if (!bias) zeros.assign(size_t(s.c_out), 0.0f);
    bias_activation_forward(act, dtype, y, bias ? bias : zeros.data(), y, s.n * s.out_h * s.out_w, s.c_out);
  });
}

namespace {

// Below this many pixels per image the gate is applied to a copy of x and one GEMM runs.
constexpr int64_t kGateFoldMinPixels = 256;

// The gate folded into per-image weights: y[b] = x[b] (w * gate[b])^T, no gated copy of x.
template <class T>
void gated_per_image(int64_t n, int64_t hw, int64_t c_in, int64_t c_out, const T* xt, const T* gt, const float* w0,
                     T* yt) {
  Buffer wn = make_buffer(c_out * c_in);
  std::vector<float> g32(static_cast<size_t>(c_in));
  // 16-bit storage: one image at a time through f32 scratch.
  Buffer x_scratch = make_buffer(kIsFloat<T> ? 0 : hw * c_in), y_scratch = make_buffer(kIsFloat<T> ? 0 : hw * c_out);
  for (int64_t b = 0; b < n; ++b) {
    to_f32(gt + b * c_in, g32.data(), c_in);
    float* wb = wn.get();
    for (int64_t o = 0; o < c_out; ++o) {
#pragma omp simd
      for (int64_t c = 0; c < c_in; ++c) wb[o * c_in + c] = w0[o * c_in + c] * g32[size_t(c)];
    }
    const float* xb;
    float* yb;
    if constexpr (kIsFloat<T>) {
      xb = xt + b * hw * c_in;
      yb = yt + b * hw * c_out;
    } else {
      to_f32_parallel(xt + b * hw * c_in, x_scratch.get(), hw * c_in);
      xb = x_scratch.get();
      yb = y_scratch.get();
    }
    sgemm(false, true, hw, c_out, c_in, xb, c_in, wb, c_in, 0.0f, yb, c_out);
    if constexpr (!kIsFloat<T>) from_f32_parallel(yb, yt + b * hw * c_out, hw * c_out);
  }
}

}  // namespace

void pointwise_gated_forward(int64_t n, int64_t hw, int64_t c_in, int64_t c_out, DType dtype, const void* x,
                             const void* gate, const void* w, const float* bias, math::Activation act, void* y) {
  dispatch_floating(dtype, "pointwise_gated_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const auto* xt = static_cast<const T*>(x);
    const auto* gt = static_cast<const T*>(gate);
    auto* yt = static_cast<T*>(y);
    const F32Input<T> w32(static_cast<const T*>(w), c_out * c_in);  // [Cout, Cin]
    if (hw < kGateFoldMinPixels) {
      // Small images: one GEMM over the whole batch on gated activations beats N small GEMMs
      // (each one threaded by OpenBLAS); the gated copy is small here.
      Buffer gated = make_buffer(n * hw * c_in);
      float* g = gated.get();
#pragma omp parallel
      {
        std::vector<float> xs(static_cast<size_t>(c_in)), gs(static_cast<size_t>(c_in));
#pragma omp for schedule(static)
        for (int64_t r = 0; r < n * hw; ++r) {
          const float* xr = f32_row(xt + r * c_in, xs.data(), c_in);
          const float* gr = f32_row(gt + (r / hw) * c_in, gs.data(), c_in);
          float* out = g + r * c_in;
#pragma omp simd
          for (int64_t c = 0; c < c_in; ++c) out[c] = xr[c] * gr[c];
        }
      }
      Buffer y_all = make_buffer(kIsFloat<T> ? 0 : n * hw * c_out);
      float* yc;
      if constexpr (kIsFloat<T>)
        yc = yt;
      else
        yc = y_all.get();
      sgemm(false, true, n * hw, c_out, c_in, g, c_in, w32.get(), c_in, 0.0f, yc, c_out);
      if constexpr (!kIsFloat<T>) from_f32_parallel(yc, yt, n * hw * c_out);
    } else {
      gated_per_image(n, hw, c_in, c_out, xt, gt, w32.get(), yt);
    }
    if (!bias && act == math::Activation::identity) return;
    std::vector<float> zeros;
    if (!bias) zeros.assign(size_t(c_out), 0.0f);
    bias_activation_forward(act, dtype, y, bias ? bias : zeros.data(), y, n * hw, c_out);
  });
}

}  // namespace sg::cpu
