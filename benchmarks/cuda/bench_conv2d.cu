// CUDA convolution on EfficientNet-B0's own layer shapes, batch 32, at 224 and 512 px: our
// kernels beside cuDNN (NHWC, the fastest forward algorithm cudnnFind reports, its workspace
// allocated) and, for pointwise layers, beside cuBLAS on the equivalent GEMM (f32 compute).
// Depthwise layers report GB/s (memory-bound: compare with BM_CudaCopy in bench_activation),
// dense and pointwise layers FLOP/s. Names put the layer first and the implementation last,
// so ours and the baselines print next to each other:
//   BM_Depthwise/224px/112x112x32_k3s1/f16/ours   ... /cudnn
//   BM_Pointwise/224px/56x56_24to144/f16/ours     ... /cudnn  ... /cublas
// Padding is symmetric here (the legacy cuDNN API has no asymmetric pads); TF-SAME costs the same.
#include <benchmark/benchmark.h>
#include <cublas_v2.h>

#include <string>
#include <vector>

#include "benchmarks/cuda/bench_cuda_util.h"
#include "core/cuda/runtime.h"
#include "kernels/conv2d_params.h"
#include "kernels/cuda/conv2d.h"

#if SLIDEGRADE_HAVE_CUDNN
#include <cudnn.h>
#endif

namespace sg {
namespace {

constexpr int64_t kBatch = 32;

struct Layer {
  int64_t h, c_in, c_out, k, stride, groups;
  Conv2dParams params() const { return make_conv2d_params(k, k, stride, Padding::symmetric, h, h, groups); }
  Conv2dShape shape() const {
    const Conv2dParams p = params();
    Conv2dShape s;
    s.n = kBatch, s.h = h, s.w = h, s.c_in = c_in, s.c_out = c_out;
    s.out_h = conv2d_output_extent(h, k, stride, p.pad_top, p.pad_bottom);
    s.out_w = conv2d_output_extent(h, k, stride, p.pad_left, p.pad_right);
    return s;
  }
  double flops() const {
    const Conv2dShape s = shape();
    return 2.0 * double(s.n * s.out_h * s.out_w) * double(c_out) * double(k * k * (c_in / groups));
  }
  size_t bytes(DType dtype) const {  // x read once, y written once, w read once
    const Conv2dShape s = shape();
    return size_t(s.n * s.h * s.w * c_in + s.n * s.out_h * s.out_w * c_out + c_out * k * k * (c_in / groups)) *
           dtype_size(dtype);
  }
};

struct Tensors {
  Tensor x, w, bias, y;
  Tensors(const Layer& l, DType dtype) {
    const Conv2dShape s = l.shape();
    const Device gpu = Device::cuda(0);
    x = bench::random_tensor({s.n, s.h, s.w, s.c_in}, dtype, gpu);
    w = bench::random_tensor({s.c_out, l.k, l.k, s.c_in / l.groups}, dtype, gpu);
    bias = bench::random_tensor({s.c_out}, dtype, gpu);
    y = Tensor::empty({s.n, s.out_h, s.out_w, s.c_out}, dtype, gpu);
  }
};

enum class Pass { forward, backward_input, backward_weight };

void report(benchmark::State& state, const Layer& l, DType dtype, bool depthwise, Pass pass) {
  if (depthwise) {
    // backward input reads dy and writes dx; backward weight reads x and dy: the same bytes.
    bench::set_bytes(state, l.bytes(dtype));
  } else {
    bench::set_flops(state, l.flops());
  }
  (void)pass;
}

void run_ours(benchmark::State& state, Layer l, DType dtype, bool depthwise, Pass pass) {
  if (bench::skip_without_gpu(state)) return;
  Tensors t(l, dtype);
  Tensor dx = Tensor::empty(t.x.shape(), dtype, Device::cuda(0));
  Tensor dw = Tensor::empty(t.w.shape(), dtype, Device::cuda(0));
  Tensor db = Tensor::empty(t.bias.shape(), dtype, Device::cuda(0));
  const Conv2dParams p = l.params();
  const Conv2dShape s = l.shape();
  bench::GpuTimer timer;
  timer.run(state, [&] {
    switch (pass) {
      case Pass::forward: cuda::conv2d_forward(p, s, dtype, t.x.data(), t.w.data(), t.bias.data(), t.y.data(), nullptr); break;
      case Pass::backward_input: cuda::conv2d_backward_input(p, s, dtype, t.y.data(), t.w.data(), dx.data(), nullptr); break;
      case Pass::backward_weight:
        cuda::conv2d_backward_weight(p, s, dtype, t.x.data(), t.y.data(), dw.data(), db.data(), nullptr);
        break;
    }
  });
  report(state, l, dtype, depthwise, pass);
}

#if SLIDEGRADE_HAVE_CUDNN
void cudnn_check(cudnnStatus_t status, const char* what) {
  if (status != CUDNN_STATUS_SUCCESS) throw Error(detail::concat(what, ": ", cudnnGetErrorString(status)));
}
#define SG_CUDNN(call) cudnn_check((call), #call)

// One convolution described to cuDNN: NHWC tensors, f32 accumulation; tensor cores allowed for
// f16, plain FMA for f32 (no TF32, so both sides do the same arithmetic).
class CudnnConv {
 public:
  CudnnConv(const Layer& l, DType dtype) {
    const Conv2dShape s = l.shape();
    const Conv2dParams p = l.params();
    const cudnnDataType_t type = dtype == DType::f16 ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT;
    SG_CUDNN(cudnnCreate(&handle_));
    SG_CUDNN(cudnnCreateTensorDescriptor(&x_));
    SG_CUDNN(cudnnCreateTensorDescriptor(&y_));
    SG_CUDNN(cudnnCreateFilterDescriptor(&w_));
    SG_CUDNN(cudnnCreateConvolutionDescriptor(&conv_));
    SG_CUDNN(cudnnSetTensor4dDescriptor(x_, CUDNN_TENSOR_NHWC, type, int(s.n), int(s.c_in), int(s.h), int(s.w)));
    SG_CUDNN(cudnnSetTensor4dDescriptor(y_, CUDNN_TENSOR_NHWC, type, int(s.n), int(s.c_out), int(s.out_h), int(s.out_w)));
    SG_CUDNN(cudnnSetFilter4dDescriptor(w_, type, CUDNN_TENSOR_NHWC, int(s.c_out), int(s.c_in / p.groups),
                                        int(p.kernel_h), int(p.kernel_w)));
    SG_CUDNN(cudnnSetConvolution2dDescriptor(conv_, int(p.pad_top), int(p.pad_left), int(p.stride_h),
                                             int(p.stride_w), 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    SG_CUDNN(cudnnSetConvolutionGroupCount(conv_, int(p.groups)));
    SG_CUDNN(cudnnSetConvolutionMathType(conv_, dtype == DType::f16 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH));
  }
  ~CudnnConv() {
    cudnnDestroyConvolutionDescriptor(conv_);
    cudnnDestroyFilterDescriptor(w_);
    cudnnDestroyTensorDescriptor(y_);
    cudnnDestroyTensorDescriptor(x_);
    cudnnDestroy(handle_);
  }
  CudnnConv(const CudnnConv&) = delete;
  CudnnConv& operator=(const CudnnConv&) = delete;

  // The fastest algorithm cudnnFind measures for each pass, with its workspace; returns a
  // callable that runs the pass.
  std::function<void()> prepare(Pass pass, Tensors& t, Tensor& dx, Tensor& dw, std::string& label) {
    int returned = 0;
    size_t bytes = 0;
    const float* one = &one_;
    const float* zero = &zero_;
    switch (pass) {
      case Pass::forward: {
        cudnnConvolutionFwdAlgoPerf_t perf;
        SG_CUDNN(cudnnFindConvolutionForwardAlgorithm(handle_, x_, w_, conv_, y_, 1, &returned, &perf));
        cudnn_check(perf.status, "cudnnFindConvolutionForwardAlgorithm result");
        SG_CUDNN(cudnnGetConvolutionForwardWorkspaceSize(handle_, x_, w_, conv_, y_, perf.algo, &bytes));
        allocate(bytes);
        label = "cuDNN fwd algo " + std::to_string(int(perf.algo));
        return [=, this, &t] {
          SG_CUDNN(cudnnConvolutionForward(handle_, one, x_, t.x.data(), w_, t.w.data(), conv_, perf.algo,
                                           workspace_.data(), bytes, zero, y_, t.y.data()));
        };
      }
      case Pass::backward_input: {
        cudnnConvolutionBwdDataAlgoPerf_t perf;
        SG_CUDNN(cudnnFindConvolutionBackwardDataAlgorithm(handle_, w_, y_, conv_, x_, 1, &returned, &perf));
        cudnn_check(perf.status, "cudnnFindConvolutionBackwardDataAlgorithm result");
        SG_CUDNN(cudnnGetConvolutionBackwardDataWorkspaceSize(handle_, w_, y_, conv_, x_, perf.algo, &bytes));
        allocate(bytes);
        label = "cuDNN bwd data algo " + std::to_string(int(perf.algo));
        return [=, this, &t, &dx] {
          SG_CUDNN(cudnnConvolutionBackwardData(handle_, one, w_, t.w.data(), y_, t.y.data(), conv_, perf.algo,
                                                workspace_.data(), bytes, zero, x_, dx.data()));
        };
      }
      case Pass::backward_weight: {
        cudnnConvolutionBwdFilterAlgoPerf_t perf;
        SG_CUDNN(cudnnFindConvolutionBackwardFilterAlgorithm(handle_, x_, y_, conv_, w_, 1, &returned, &perf));
        cudnn_check(perf.status, "cudnnFindConvolutionBackwardFilterAlgorithm result");
        SG_CUDNN(cudnnGetConvolutionBackwardFilterWorkspaceSize(handle_, x_, y_, conv_, w_, perf.algo, &bytes));
        allocate(bytes);
        label = "cuDNN bwd filter algo " + std::to_string(int(perf.algo)) + " (no dbias)";
        return [=, this, &t, &dw] {
          SG_CUDNN(cudnnConvolutionBackwardFilter(handle_, one, x_, t.x.data(), y_, t.y.data(), conv_, perf.algo,
                                                  workspace_.data(), bytes, zero, w_, dw.data()));
        };
      }
    }
    return {};
  }

 private:
  void allocate(size_t bytes) { workspace_ = Tensor::empty({int64_t(std::max<size_t>(bytes, 1))}, DType::u8, Device::cuda(0)); }
  cudnnHandle_t handle_ = nullptr;
  cudnnTensorDescriptor_t x_ = nullptr, y_ = nullptr;
  cudnnFilterDescriptor_t w_ = nullptr;
  cudnnConvolutionDescriptor_t conv_ = nullptr;
  Tensor workspace_;
  float one_ = 1.0f, zero_ = 0.0f;
};

void run_cudnn(benchmark::State& state, Layer l, DType dtype, bool depthwise, Pass pass) {
  if (bench::skip_without_gpu(state)) return;
  Tensors t(l, dtype);
  Tensor dx = Tensor::empty(t.x.shape(), dtype, Device::cuda(0));
  Tensor dw = Tensor::empty(t.w.shape(), dtype, Device::cuda(0));
  CudnnConv conv(l, dtype);
  std::string label;
  const std::function<void()> fn = conv.prepare(pass, t, dx, dw, label);
  bench::GpuTimer timer;
  timer.run(state, fn);
  state.SetLabel(label);
  report(state, l, dtype, depthwise, pass);
}
#endif  // SLIDEGRADE_HAVE_CUDNN

void cublas_check(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS) throw Error(detail::concat(what, " failed with cuBLAS status ", int(status)));
}

// Pointwise forward as one GEMM: y[M, Cout] = x[M, Cin] w[Cout, Cin]^T, M = N*H*W. In cuBLAS's
// column-major terms y^T (Cout x M) = w (as Cin x Cout, transposed) * x^T (Cin x M).
void run_cublas(benchmark::State& state, Layer l, DType dtype) {
  if (bench::skip_without_gpu(state)) return;
  Tensors t(l, dtype);
  cublasHandle_t handle = nullptr;
  cublas_check(cublasCreate(&handle), "cublasCreate");
  const int m = int(l.c_out), n = int(kBatch * l.h * l.h), k = int(l.c_in);
  const cudaDataType_t type = dtype == DType::f16 ? CUDA_R_16F : CUDA_R_32F;
  const float one = 1.0f, zero = 0.0f;
  bench::GpuTimer timer;
  timer.run(state, [&] {
    cublas_check(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &one, t.w.data(), type, k, t.x.data(), type,
                              k, &zero, t.y.data(), type, m, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                 "cublasGemmEx");
  });
  cublasDestroy(handle);
  state.SetLabel("cuBLAS GemmEx, f32 compute, no bias");
  bench::set_flops(state, l.flops());
}

std::string dims(const Layer& l) {
  const bool depthwise = l.groups > 1 && l.groups == l.c_in;
  if (depthwise)
    return detail::concat(l.h, "x", l.h, "x", l.c_in, "_k", l.k, "s", l.stride);
  if (l.k == 1) return detail::concat(l.h, "x", l.h, "_", l.c_in, "to", l.c_out);
  return detail::concat(l.h, "x", l.h, "_", l.c_in, "to", l.c_out, "_k", l.k, "s", l.stride);
}

void add(const std::string& name, std::function<void(benchmark::State&)> fn) {
  benchmark::RegisterBenchmark(name.c_str(), std::move(fn))->UseManualTime()->Unit(benchmark::kMicrosecond);
}

// EfficientNet-B0's layers, spatial size given as a divisor of the resolution.
struct LayerSpec {
  int64_t divisor, c_in, c_out, k, stride;
};
constexpr LayerSpec kDepthwise[] = {  // channels, kernel, stride at each stage's input size
    {2, 32, 32, 3, 1},   {2, 96, 96, 3, 2},   {4, 144, 144, 3, 1},  {4, 144, 144, 5, 2},
    {8, 240, 240, 5, 1}, {8, 240, 240, 3, 2}, {16, 480, 480, 3, 1}, {16, 480, 480, 5, 1},
    {16, 672, 672, 5, 1}, {16, 672, 672, 5, 2}, {32, 1152, 1152, 5, 1}, {32, 1152, 1152, 3, 1},
};
constexpr LayerSpec kPointwise[] = {  // expand / project 1x1
    {4, 24, 144, 1, 1}, {4, 144, 24, 1, 1},     {8, 40, 240, 1, 1},     {16, 80, 480, 1, 1},
    {16, 672, 112, 1, 1}, {32, 1152, 192, 1, 1}, {32, 320, 1280, 1, 1},
};
constexpr LayerSpec kStem = {1, 3, 32, 3, 2};

bool register_all() {
  for (int64_t res : {224, 512})
    for (DType dtype : {DType::f16, DType::f32}) {
      const std::string suffix = "/" + std::string(dtype_name(dtype));
      const std::string px = "/" + std::to_string(res) + "px/";
      auto layer = [&](const LayerSpec& sp, bool depthwise) {
        return Layer{res / sp.divisor, sp.c_in, sp.c_out, sp.k, sp.stride, depthwise ? sp.c_in : 1};
      };
      {
        const Layer l = layer(kStem, false);
        const std::string base = "BM_Stem" + px + dims(l) + suffix;
        add(base + "/ours", [=](benchmark::State& s) { run_ours(s, l, dtype, false, Pass::forward); });
#if SLIDEGRADE_HAVE_CUDNN
        add(base + "/cudnn", [=](benchmark::State& s) { run_cudnn(s, l, dtype, false, Pass::forward); });
#endif
      }
      for (const LayerSpec& sp : kDepthwise) {
        const Layer l = layer(sp, true);
        const std::string base = "BM_Depthwise" + px + dims(l) + suffix;
        add(base + "/ours", [=](benchmark::State& s) { run_ours(s, l, dtype, true, Pass::forward); });
#if SLIDEGRADE_HAVE_CUDNN
        add(base + "/cudnn", [=](benchmark::State& s) { run_cudnn(s, l, dtype, true, Pass::forward); });
#endif
      }
      for (const LayerSpec& sp : kPointwise) {
        const Layer l = layer(sp, false);
        const std::string base = "BM_Pointwise" + px + dims(l) + suffix;
        add(base + "/ours", [=](benchmark::State& s) { run_ours(s, l, dtype, false, Pass::forward); });
#if SLIDEGRADE_HAVE_CUDNN
        add(base + "/cudnn", [=](benchmark::State& s) { run_cudnn(s, l, dtype, false, Pass::forward); });
#endif
        add(base + "/cublas", [=](benchmark::State& s) { run_cublas(s, l, dtype); });
      }
      // Backward passes on a few shapes: one depthwise per kernel size, two pointwise.
      const LayerSpec backward_specs[] = {kDepthwise[2], kDepthwise[4], kPointwise[0], kPointwise[5]};
      for (const LayerSpec& sp : backward_specs) {
        const bool depthwise = sp.c_in == sp.c_out && sp.k > 1;
        const Layer l = layer(sp, depthwise);
        for (Pass pass : {Pass::backward_input, Pass::backward_weight}) {
          const std::string kind = pass == Pass::backward_input ? "BM_BackwardInput" : "BM_BackwardWeight";
          const std::string base = kind + (depthwise ? "Depthwise" : "Pointwise") + px + dims(l) + suffix;
          add(base + "/ours", [=](benchmark::State& s) { run_ours(s, l, dtype, depthwise, pass); });
#if SLIDEGRADE_HAVE_CUDNN
          add(base + "/cudnn", [=](benchmark::State& s) { run_cudnn(s, l, dtype, depthwise, pass); });
#endif
        }
      }
    }
  return true;
}

[[maybe_unused]] const bool kRegistered = register_all();

}  // namespace
}  // namespace sg
