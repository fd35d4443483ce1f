// conv2d: finite differences on the double reference, fast CPU vs reference (random odd
// shapes, f32/f16/bf16, chunked scratch), TF-SAME padding, CUDA vs reference, PyTorch golden
// values, and bad arguments.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kernels/conv2d.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/conv2d_ref.h"
#include "tests/support/testing.h"

namespace sg {
namespace {

using testing::all_close;
using testing::expect_error_containing;
using testing::Rng;

const DType kFloatTypes[] = {DType::f32, DType::f16, DType::bf16};

// One convolution configuration.
struct Case {
  int64_t n, h, w, c_in, c_out, kernel, stride, groups;
  Padding padding;

  Conv2dParams params() const { return make_conv2d_params(kernel, kernel, stride, padding, h, w, groups); }
  Shape x_shape() const { return {n, h, w, c_in}; }
  Shape w_shape() const { return {c_out, kernel, kernel, c_in / groups}; }
  Conv2dShape shape() const { return conv2d_shape("test", params(), x_shape(), w_shape()); }
  Shape y_shape() const {
    const Conv2dShape s = shape();
    return {s.n, s.out_h, s.out_w, s.c_out};
  }
  std::string str() const {
    return ::testing::PrintToString(x_shape()) + " -> " + std::to_string(c_out) + " " + to_string(params());
  }
};

// ---- references on tensors, in the tensors' own storage type ------------------------------
Tensor reference_forward(const Conv2dParams& p, const Tensor& x, const Tensor& w, const Tensor* bias) {
  const Conv2dShape s = conv2d_shape("test", p, x.shape(), w.shape());
  Tensor y = Tensor::empty({s.n, s.out_h, s.out_w, s.c_out}, x.dtype());
  dispatch_floating(x.dtype(), "test", [&](auto tag) {
    using T = typename decltype(tag)::type;
    cpu::ref::conv2d_forward(p, s, x.data_as<T>(), w.data_as<T>(), bias ? bias->data_as<T>() : nullptr,
                             y.data_as<T>());
  });
  return y;
}

Tensor reference_backward_input(const Conv2dParams& p, const Shape& x_shape, const Tensor& dy, const Tensor& w) {
  const Conv2dShape s = conv2d_shape("test", p, x_shape, w.shape());
  Tensor dx = Tensor::empty(x_shape, dy.dtype());
  dispatch_floating(dy.dtype(), "test", [&](auto tag) {
    using T = typename decltype(tag)::type;
    cpu::ref::conv2d_backward_input(p, s, dy.data_as<T>(), w.data_as<T>(), dx.data_as<T>());
  });
  return dx;
}

void reference_backward_weight(const Conv2dParams& p, const Tensor& x, const Tensor& dy, Tensor& dw,
                               Tensor& dbias) {
  const Conv2dShape s = conv2d_shape("test", p, x.shape(), dw.shape());
  dispatch_floating(x.dtype(), "test", [&](auto tag) {
    using T = typename decltype(tag)::type;
    cpu::ref::conv2d_backward_weight(p, s, x.data_as<T>(), dy.data_as<T>(), dw.data_as<T>(), dbias.data_as<T>());
  });
}

// ---- 1. finite differences on the double reference ------------------------------------------
// loss = sum(y * g); d loss / dx = backward_input(g), d loss / dw and d loss / dbias = backward_weight(x, g).
void check_gradients(const Case& c, Rng& rng) {
  SCOPED_TRACE(c.str());
  const Conv2dParams p = c.params();
  const Conv2dShape s = c.shape();
  std::vector<double> x = testing::random_doubles(rng, size_t(c.x_shape().numel()));
  std::vector<double> w = testing::random_doubles(rng, size_t(c.w_shape().numel()));
  std::vector<double> b = testing::random_doubles(rng, size_t(c.c_out));
  const std::vector<double> g = testing::random_doubles(rng, size_t(c.y_shape().numel()));
  auto loss = [&](const std::vector<double>& xv, const std::vector<double>& wv, const std::vector<double>& bv) {
    std::vector<double> y(g.size());
    cpu::ref::conv2d_forward(p, s, xv.data(), wv.data(), bv.data(), y.data());
    double sum = 0;
    for (size_t i = 0; i < y.size(); ++i) sum += y[i] * g[i];
    return sum;
  };
  std::vector<double> dx(x.size(), std::nan("")), dw(w.size(), std::nan("")), db(b.size(), std::nan(""));
  cpu::ref::conv2d_backward_input(p, s, g.data(), w.data(), dx.data());
  cpu::ref::conv2d_backward_weight(p, s, x.data(), g.data(), dw.data(), db.data());
  EXPECT_TRUE(testing::gradient_matches([&](const std::vector<double>& v) { return loss(v, w, b); }, x, dx)) << "dx";
  EXPECT_TRUE(testing::gradient_matches([&](const std::vector<double>& v) { return loss(x, v, b); }, w, dw)) << "dw";
  EXPECT_TRUE(testing::gradient_matches([&](const std::vector<double>& v) { return loss(x, w, v); }, b, db))
      << "dbias";
}

TEST(Conv2d, BackwardMatchesFiniteDifferences) {
  Rng rng;
  SG_TRACE_SEED(rng);
  const Case cases[] = {
      {2, 5, 6, 3, 4, 3, 1, 1, Padding::symmetric},  // dense 3x3
      {2, 6, 7, 3, 4, 3, 2, 1, Padding::symmetric},  // dense 3x3 stride 2
      {2, 6, 7, 3, 2, 3, 2, 1, Padding::tf_same},    // dense 3x3 stride 2, pads (0, 1) rows
      {2, 8, 6, 5, 5, 3, 2, 5, Padding::tf_same},    // depthwise 3x3 stride 2: pads (0, 1)
      {1, 8, 9, 4, 4, 5, 2, 4, Padding::tf_same},    // depthwise 5x5 stride 2: pads (1, 2) / (2, 2)
      {2, 4, 5, 6, 3, 1, 1, 1, Padding::symmetric},  // pointwise
      {2, 5, 5, 4, 6, 3, 1, 2, Padding::symmetric},  // grouped, groups = 2
  };
  for (const Case& c : cases) check_gradients(c, rng);
}

// ---- 2. fast CPU vs reference ---------------------------------------------------------------
Case random_case(Rng& rng) {
  const int64_t spatial[] = {1, 3, 7, 17, 33};
  const int64_t channels[] = {1, 3, 5, 6, 13, 19, 24};
  Case c{};
  c.n = rng.integer(0, 1) ? 3 : 1;
  c.h = spatial[rng.integer(0, 4)];
  c.w = rng.integer(0, 2) ? c.h : spatial[rng.integer(0, 4)];  // mostly square, sometimes not
  const int64_t kernels[] = {1, 3, 5};
  c.kernel = kernels[rng.integer(0, 2)];
  c.stride = rng.integer(1, 2);
  c.padding = rng.integer(0, 1) ? Padding::tf_same : Padding::symmetric;
  switch (rng.integer(0, 3)) {
    case 0:  // dense
      c.groups = 1;
      c.c_in = channels[rng.integer(0, 6)];
      c.c_out = channels[rng.integer(0, 6)];
      break;
    case 1:  // depthwise
      c.c_in = c.c_out = c.groups = channels[rng.integer(1, 6)];
      break;
    case 2:  // pointwise (stride 1 or 2)
      c.kernel = 1;
      c.groups = 1;
      c.c_in = channels[rng.integer(0, 6)];
      c.c_out = channels[rng.integer(0, 6)];
      break;
    default:  // grouped
      c.groups = rng.integer(2, 3);
      c.c_in = c.groups * rng.integer(1, 5);
      c.c_out = c.groups * rng.integer(1, 4);
      break;
  }
  return c;
}

// The fast path sums in a different order from the reference: f32 results agree to a few ulp
// of the sum's magnitude (K up to 25 * 24 terms forward, N*Ho*Wo up to 3267 for dw); 16-bit
// results both round one f32 sum, so they differ by at most an ulp of the storage type.
testing::Tolerance fast_tolerance(DType dtype) {
  return dtype == DType::f32 ? testing::Tolerance{1e-4, 1e-4} : testing::tolerance_for(dtype);
}

// Runs the fast path through the tensor API, or directly with a tiny scratch bound (one output
// row per chunk, one image per f32 accumulator block) to exercise the chunking.
void compare_fast_with_reference(const Case& c, DType dtype, Rng& rng, bool tiny_scratch) {
  SCOPED_TRACE(::testing::Message() << c.str() << " " << dtype_name(dtype) << (tiny_scratch ? " tiny scratch" : ""));
  const Conv2dParams p = c.params();
  const Conv2dShape s = c.shape();
  Tensor x = testing::random_tensor(rng, c.x_shape(), dtype);
  Tensor w = testing::random_tensor(rng, c.w_shape(), dtype);
  Tensor bias = testing::random_tensor(rng, {c.c_out}, dtype);
  Tensor dy = testing::random_tensor(rng, c.y_shape(), dtype);
  Tensor y = Tensor::empty(c.y_shape(), dtype), dx = Tensor::empty(c.x_shape(), dtype);
  Tensor dw = Tensor::empty(c.w_shape(), dtype), dbias = Tensor::empty({c.c_out}, dtype);
  for (Tensor* t : {&y, &dx, &dw, &dbias}) testing::poison(*t);
  const bool with_bias = rng.integer(0, 1) == 1;
  if (tiny_scratch) {
    cpu::conv2d_forward(p, s, dtype, x.data(), w.data(), with_bias ? bias.data() : nullptr, y.data(), 1);
    cpu::conv2d_backward_input(p, s, dtype, dy.data(), w.data(), dx.data(), 1);
    cpu::conv2d_backward_weight(p, s, dtype, x.data(), dy.data(), dw.data(), dbias.data(), 1);
  } else {
    conv2d_forward(p, x, w, with_bias ? &bias : nullptr, y);
    conv2d_backward_input(p, dy, w, dx);
    conv2d_backward_weight(p, x, dy, dw, &dbias);
  }
  Tensor dw_ref = Tensor::empty(c.w_shape(), dtype), dbias_ref = Tensor::empty({c.c_out}, dtype);
  reference_backward_weight(p, x, dy, dw_ref, dbias_ref);
  const testing::Tolerance tol = fast_tolerance(dtype);
  EXPECT_TRUE(all_close(y, reference_forward(p, x, w, with_bias ? &bias : nullptr), tol)) << "y";
  EXPECT_TRUE(all_close(dx, reference_backward_input(p, c.x_shape(), dy, w), tol)) << "dx";
  EXPECT_TRUE(all_close(dw, dw_ref, tol)) << "dw";
  EXPECT_TRUE(all_close(dbias, dbias_ref, tol)) << "dbias";
}

TEST(Conv2d, FastCpuMatchesReference) {
  Rng rng;
  SG_TRACE_SEED(rng);
  for (DType dtype : kFloatTypes)
    for (int trial = 0; trial < 40; ++trial) compare_fast_with_reference(random_case(rng), dtype, rng, false);
}

TEST(Conv2d, FastCpuMatchesReferenceInSmallChunks) {
  Rng rng;
  SG_TRACE_SEED(rng);
  for (DType dtype : kFloatTypes)
    for (int trial = 0; trial < 15; ++trial) compare_fast_with_reference(random_case(rng), dtype, rng, true);
  // Kernels taller than the stride: consecutive chunks scatter into the same dx rows.
  for (DType dtype : kFloatTypes) {
    compare_fast_with_reference({3, 9, 7, 5, 6, 5, 1, 1, Padding::symmetric}, dtype, rng, true);
    compare_fast_with_reference({3, 10, 9, 4, 6, 3, 2, 2, Padding::tf_same}, dtype, rng, true);
    compare_fast_with_reference({3, 9, 8, 6, 6, 3, 2, 6, Padding::tf_same}, dtype, rng, true);  // depthwise
    compare_fast_with_reference({3, 5, 6, 10, 7, 1, 1, 1, Padding::symmetric}, dtype, rng, true);  // pointwise
  }
}

// Every EfficientNet-B0 kind of layer at a small size, each kind named (the random cases may
// miss one).
TEST(Conv2d, FastCpuMatchesReferenceOnEfficientNetLayers) {
  Rng rng;
  SG_TRACE_SEED(rng);
  const Case cases[] = {
      {2, 32, 32, 3, 32, 3, 2, 1, Padding::symmetric},    // stem
      {2, 32, 32, 3, 32, 3, 2, 1, Padding::tf_same},      // stem, Keras padding
      {2, 16, 16, 96, 96, 3, 2, 96, Padding::tf_same},    // depthwise 3x3 stride 2
      {2, 14, 14, 120, 120, 5, 1, 120, Padding::tf_same}, // depthwise 5x5
      {2, 15, 15, 40, 40, 5, 2, 40, Padding::symmetric},  // depthwise 5x5 stride 2, odd input
      {2, 14, 14, 24, 144, 1, 1, 1, Padding::symmetric},  // pointwise expand
      {2, 7, 7, 320, 64, 1, 1, 1, Padding::symmetric},    // pointwise project
  };
  for (DType dtype : kFloatTypes)
    for (const Case& c : cases) compare_fast_with_reference(c, dtype, rng, false);
}

// ---- TF-SAME padding --------------------------------------------------------------------------
TEST(Conv2d, TfSamePadding) {
  auto pads = [](int64_t k, int64_t stride, Padding padding, int64_t h, int64_t w) {
    const Conv2dParams p = make_conv2d_params(k, k, stride, padding, h, w);
    return std::vector<int64_t>{p.pad_top, p.pad_bottom, p.pad_left, p.pad_right};
  };
  using V = std::vector<int64_t>;
  EXPECT_EQ(pads(3, 2, Padding::tf_same, 224, 224), (V{0, 1, 0, 1}));  // even input: the odd pixel after
  EXPECT_EQ(pads(5, 2, Padding::tf_same, 28, 28), (V{1, 2, 1, 2}));
  EXPECT_EQ(pads(3, 2, Padding::tf_same, 225, 7), (V{1, 1, 1, 1}));  // odd input: symmetric
  EXPECT_EQ(pads(5, 2, Padding::tf_same, 15, 15), (V{2, 2, 2, 2}));
  EXPECT_EQ(pads(3, 2, Padding::tf_same, 224, 7), (V{0, 1, 1, 1}));  // per axis
  EXPECT_EQ(pads(3, 1, Padding::tf_same, 10, 10), (V{1, 1, 1, 1}));
  EXPECT_EQ(pads(5, 1, Padding::tf_same, 10, 10), (V{2, 2, 2, 2}));
  EXPECT_EQ(pads(1, 1, Padding::tf_same, 10, 10), (V{0, 0, 0, 0}));
  EXPECT_EQ(pads(1, 2, Padding::tf_same, 10, 10), (V{0, 0, 0, 0}));
  EXPECT_EQ(pads(3, 2, Padding::symmetric, 224, 224), (V{1, 1, 1, 1}));
  EXPECT_EQ(pads(5, 2, Padding::symmetric, 28, 28), (V{2, 2, 2, 2}));
  // TF-SAME gives Ho = ceil(H / stride).
  for (int64_t h : {1, 2, 3, 7, 28, 33, 224, 225})
    for (int64_t k : {1, 3, 5})
      for (int64_t stride : {1, 2}) {
        const Conv2dParams p = make_conv2d_params(k, k, stride, Padding::tf_same, h, h);
        const Conv2dShape s = conv2d_shape("test", p, Shape{1, h, h, 4}, Shape{4, k, k, 4});
        EXPECT_EQ(s.out_h, (h + stride - 1) / stride) << "h " << h << " k " << k << " stride " << stride;
        EXPECT_EQ(s.out_w, s.out_h);
      }
}

// ---- 3. CUDA vs reference ---------------------------------------------------------------------
TEST(Conv2d, CudaMatchesReference) {
  SG_REQUIRE_CUDA();
  Rng rng;
  SG_TRACE_SEED(rng);
  const Device gpu = Device::cuda(0);
  std::vector<Case> cases;
  for (int trial = 0; trial < 30; ++trial) cases.push_back(random_case(rng));
  cases.push_back({2, 32, 32, 3, 32, 3, 2, 1, Padding::tf_same});
  cases.push_back({2, 16, 16, 96, 96, 3, 2, 96, Padding::tf_same});
  cases.push_back({2, 14, 14, 120, 120, 5, 1, 120, Padding::tf_same});
  cases.push_back({2, 14, 14, 24, 144, 1, 1, 1, Padding::symmetric});
  for (DType dtype : kFloatTypes)
    for (const Case& c : cases) {
      SCOPED_TRACE(::testing::Message() << c.str() << " " << dtype_name(dtype));
      const Conv2dParams p = c.params();
      Tensor x = testing::random_tensor(rng, c.x_shape(), dtype);
      Tensor w = testing::random_tensor(rng, c.w_shape(), dtype);
      Tensor bias = testing::random_tensor(rng, {c.c_out}, dtype);
      Tensor dy = testing::random_tensor(rng, c.y_shape(), dtype);
      Tensor xg = x.to(gpu), wg = w.to(gpu), bg = bias.to(gpu), dyg = dy.to(gpu);
      Tensor y = Tensor::empty(c.y_shape(), dtype, gpu), dx = Tensor::empty(c.x_shape(), dtype, gpu);
      Tensor dw = Tensor::empty(c.w_shape(), dtype, gpu), dbias = Tensor::empty({c.c_out}, dtype, gpu);
      for (Tensor* t : {&y, &dx, &dw, &dbias}) testing::poison(*t);
      conv2d_forward(p, xg, wg, &bg, y);
      conv2d_backward_input(p, dyg, wg, dx);
      conv2d_backward_weight(p, xg, dyg, dw, &dbias);
      Tensor dw_ref = Tensor::empty(c.w_shape(), dtype), dbias_ref = Tensor::empty({c.c_out}, dtype);
      reference_backward_weight(p, x, dy, dw_ref, dbias_ref);
      // Tensor-core / reordered sums: an f32 GEMM on the GPU may use TF32-free but reordered
      // reductions, so f32 is compared like the fast CPU path.
      const testing::Tolerance tol = fast_tolerance(dtype);
      EXPECT_TRUE(all_close(y.to(Device::cpu()), reference_forward(p, x, w, &bias), tol)) << "y";
      EXPECT_TRUE(all_close(dx.to(Device::cpu()), reference_backward_input(p, c.x_shape(), dy, w), tol)) << "dx";
      EXPECT_TRUE(all_close(dw.to(Device::cpu()), dw_ref, tol)) << "dw";
      EXPECT_TRUE(all_close(dbias.to(Device::cpu()), dbias_ref, tol)) << "dbias";
    }
}

// ---- 4. PyTorch golden --------------------------------------------------------------------------
TEST(Conv2d, MatchesPyTorchGolden) {
  const testing::GoldenFile golden("conv2d");
  for (const char* name :
       {"dense3x3_s1", "depthwise3x3_s2_same", "depthwise5x5_s2_same", "pointwise", "stem3x3_s2"}) {
    const std::string base = std::string(name) + "/";
    const int64_t k = int64_t(golden.scalar(base + "kernel"));
    const int64_t stride = int64_t(golden.scalar(base + "stride"));
    const int64_t groups = int64_t(golden.scalar(base + "groups"));
    const Padding padding = golden.scalar(base + "tf_same") != 0 ? Padding::tf_same : Padding::symmetric;
    const Tensor x32 = golden.tensor(base + "x");
    const Conv2dParams p = make_conv2d_params(k, k, stride, padding, x32.dim(1), x32.dim(2), groups);
    const std::vector<double> pads = golden.doubles(base + "pads");
    EXPECT_EQ(pads, (std::vector<double>{double(p.pad_top), double(p.pad_bottom), double(p.pad_left),
                                         double(p.pad_right)}))
        << name;
    for (DType dtype : kFloatTypes) {
      SCOPED_TRACE(base + std::string(dtype_name(dtype)));
      Tensor x = golden.tensor(base + "x", dtype), w = golden.tensor(base + "w", dtype);
      Tensor bias = golden.tensor(base + "bias", dtype), dy = golden.tensor(base + "dy", dtype);
      Tensor y = Tensor::empty(dy.shape(), dtype), dx = Tensor::empty(x.shape(), dtype);
      Tensor dw = Tensor::empty(w.shape(), dtype), dbias = Tensor::empty(bias.shape(), dtype);
      for (Tensor* t : {&y, &dx, &dw, &dbias}) testing::poison(*t);
      conv2d_forward(p, x, w, &bias, y);
      conv2d_backward_input(p, dy, w, dx);
      conv2d_backward_weight(p, x, dy, dw, &dbias);
      // The golden values are float64 maths on the float32-stored inputs. In 16-bit storage
      // every input is rounded (f16 2^-11, bf16 2^-8 relative) and the sums (up to 84 terms for
      // dw) carry those errors: absolute tolerances scale with the typical magnitude (~1-10).
      const testing::Tolerance tol = dtype == DType::f32   ? testing::Tolerance{2e-5, 1e-5}
                                     : dtype == DType::f16 ? testing::Tolerance{0.02, 0.01}
                                                           : testing::Tolerance{0.15, 0.03};
      EXPECT_TRUE(all_close(y, golden.doubles(base + "y"), tol)) << "y";
      EXPECT_TRUE(all_close(dx, golden.doubles(base + "dx"), tol)) << "dx";
      EXPECT_TRUE(all_close(dw, golden.doubles(base + "dw"), tol)) << "dw";
      EXPECT_TRUE(all_close(dbias, golden.doubles(base + "dbias"), tol)) << "dbias";
    }
  }
}

// ---- 5. bad arguments -------------------------------------------------------------------------

TEST(Conv2d, RejectsBadArguments) {
  const Conv2dParams p = make_conv2d_params(3, 3, 1, Padding::symmetric, 8, 8);
  Tensor x = Tensor::zeros({2, 8, 8, 4}, DType::f32);
  Tensor w = Tensor::zeros({6, 3, 3, 4}, DType::f32);
  Tensor y = Tensor::zeros({2, 8, 8, 6}, DType::f32);
  Tensor bias = Tensor::zeros({6}, DType::f32);

  // w[3] must be Cin / groups.
  Tensor w_bad_channels = Tensor::zeros({6, 3, 3, 5}, DType::f32);
  expect_error_containing([&] { conv2d_forward(p, x, w_bad_channels, nullptr, y); },
               {"conv2d_forward", "w has shape [6, 3, 3, 5]", "Cin/groups = 4", "x [2, 8, 8, 4]"});
  // groups must divide Cin and Cout.
  Conv2dParams p3 = p;
  p3.groups = 3;
  expect_error_containing([&] { conv2d_forward(p3, x, Tensor::zeros({6, 3, 3, 1}, DType::f32), nullptr, y); },
               {"conv2d_forward", "Cin 4 is not divisible by groups 3"});
  Conv2dParams p2 = p;
  p2.groups = 2;
  expect_error_containing([&] { conv2d_forward(p2, x, Tensor::zeros({5, 3, 3, 2}, DType::f32), nullptr, y); },
               {"Cout 5 is not divisible by groups 2"});
  // Kernel size of w disagrees with the params.
  expect_error_containing([&] { conv2d_forward(p, x, Tensor::zeros({6, 5, 5, 4}, DType::f32), nullptr, y); },
               {"expected kernel 3x3"});
  // Wrong output shape.
  Tensor y_bad = Tensor::zeros({2, 4, 4, 6}, DType::f32);
  expect_error_containing([&] { conv2d_forward(p, x, w, nullptr, y_bad); },
               {"conv2d_forward: y has shape [2, 4, 4, 6], expected [2, 8, 8, 6]"});
  // Wrong bias shape.
  Tensor bias_bad = Tensor::zeros({4}, DType::f32);
  expect_error_containing([&] { conv2d_forward(p, x, w, &bias_bad, y); }, {"bias has shape [4], expected [6]"});
  // Mixed dtypes.
  Tensor w16 = Tensor::zeros({6, 3, 3, 4}, DType::f16);
  expect_error_containing([&] { conv2d_forward(p, x, w16, nullptr, y); }, {"conv2d_forward", "mixed dtypes"});
  // Integer tensors and wrong ranks.
  Tensor xi = Tensor::zeros({2, 8, 8, 4}, DType::i32);
  expect_error_containing([&] { conv2d_forward(p, xi, w, nullptr, y); }, {"x is i32"});
  expect_error_containing([&] { conv2d_forward(p, Tensor::zeros({8, 8, 4}, DType::f32), w, nullptr, y); },
               {"x has shape [8, 8, 4], expected rank 4"});
  // Input smaller than the kernel: no output.
  const Conv2dParams unpadded{};
  Conv2dParams p5 = unpadded;
  p5.kernel_h = p5.kernel_w = 5;
  expect_error_containing([&] { conv2d_forward(p5, Tensor::zeros({1, 3, 3, 4}, DType::f32), Tensor::zeros({6, 5, 5, 4}, DType::f32), nullptr, y); },
               {"no output pixel"});
  // Backward: dy / dx / dw / dbias shapes and dtypes.
  Tensor dy = Tensor::zeros({2, 8, 8, 6}, DType::f32);
  Tensor dx = Tensor::zeros({2, 8, 8, 4}, DType::f32);
  Tensor dw = Tensor::zeros({6, 3, 3, 4}, DType::f32);
  expect_error_containing([&] { conv2d_backward_input(p, y_bad, w, dx); },
               {"conv2d_backward_input: dy has shape [2, 4, 4, 6], expected [2, 8, 8, 6]"});
  expect_error_containing([&] { conv2d_backward_input(p, dy, w_bad_channels, dx); }, {"conv2d_backward_input", "w has shape"});
  Tensor dx16 = Tensor::zeros({2, 8, 8, 4}, DType::f16);
  expect_error_containing([&] { conv2d_backward_input(p, dy, w, dx16); }, {"conv2d_backward_input", "mixed dtypes"});
  expect_error_containing([&] { conv2d_backward_weight(p, x, y_bad, dw, nullptr); }, {"conv2d_backward_weight: dy has shape"});
  expect_error_containing([&] { conv2d_backward_weight(p, x, dy, dw, &bias_bad); }, {"dbias has shape [4], expected [6]"});
  expect_error_containing([&] { conv2d_backward_weight(p, x, dy, w_bad_channels, nullptr); },
               {"conv2d_backward_weight", "w has shape [6, 3, 3, 5]"});
  // The right arguments pass.
  EXPECT_NO_THROW(conv2d_forward(p, x, w, &bias, y));
  EXPECT_NO_THROW(conv2d_backward_input(p, dy, w, dx));
  EXPECT_NO_THROW(conv2d_backward_weight(p, x, dy, dw, &bias));
}

TEST(Conv2d, RejectsMixedDevices) {
  SG_REQUIRE_CUDA();
  const Conv2dParams p = make_conv2d_params(1, 1, 1, Padding::symmetric, 4, 4);
  Tensor x = Tensor::zeros({1, 4, 4, 3}, DType::f32);
  Tensor w = Tensor::zeros({2, 1, 1, 3}, DType::f32, Device::cuda(0));
  Tensor y = Tensor::zeros({1, 4, 4, 2}, DType::f32);
  expect_error_containing([&] { conv2d_forward(p, x, w, nullptr, y); }, {"conv2d_forward", "different devices"});
}

}  // namespace
}  // namespace sg
