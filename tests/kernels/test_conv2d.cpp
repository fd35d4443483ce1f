// conv2d: case tables (tests/support/op_harness.h) run on the fast CPU path and CUDA against the
// reference (cycled odd shapes and every EfficientNet-B0 kind of layer, f32/f16/bf16), the CPU
// launchers in small scratch chunks, finite differences on the double reference, TF-SAME padding,
// PyTorch golden values, and bad arguments.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "kernels/conv2d.h"
#include "kernels/cpu/conv2d_ref.h"
#include "tests/kernels/conv2d_op_case.h"
#include "tests/support/op_harness.h"

namespace sg {
namespace {

using testing::all_close;
using testing::Conv2dGeometry;
using testing::conv2d_geometry;
using testing::conv2d_op_case;
using testing::Conv2dRun;
using testing::expect_error_containing;
using testing::GradientCase;
using testing::OpCase;
using testing::Rng;
using Doubles = std::vector<std::vector<double>>;

const DType kFloatTypes[] = {DType::f32, DType::f16, DType::bf16};

// ---- 1. finite differences on the double reference ------------------------------------------
// The forward's y (with bias) against d/dx = backward_input(dy), d/dw and d/dbias = backward_weight(x, dy).
GradientCase gradient_case(const Conv2dGeometry& g, const std::string& what) {
  const Conv2dParams p = g.p;
  const Conv2dShape s = g.s;
  const size_t x_size = size_t(g.x_shape().numel()), w_size = size_t(g.w_shape().numel()),
               y_size = size_t(g.y_shape().numel()), b_size = size_t(s.c_out);
  GradientCase c;
  c.op = "conv2d";
  c.description = what + ": " + g.str();
  c.input_names = {"x", "w", "bias"};
  c.make_inputs = [=](Rng& rng) {
    return Doubles{testing::random_doubles(rng, x_size), testing::random_doubles(rng, w_size),
                   testing::random_doubles(rng, b_size)};
  };
  c.forward = [=](const Doubles& in) {
    std::vector<double> y(y_size);
    cpu::ref::conv2d_forward(p, s, in[0].data(), in[1].data(), in[2].data(), y.data());
    return y;
  };
  c.backward = [=](const Doubles& in, const std::vector<double>& dy) {
    Doubles grads{std::vector<double>(x_size, std::nan("")), std::vector<double>(w_size, std::nan("")),
                  std::vector<double>(b_size, std::nan(""))};
    cpu::ref::conv2d_backward_input(p, s, dy.data(), in[1].data(), grads[0].data());
    cpu::ref::conv2d_backward_weight(p, s, in[0].data(), dy.data(), grads[1].data(), grads[2].data());
    return grads;
  };
  return c;
}

std::vector<GradientCase> conv2d_gradient_cases() {
  return {
      gradient_case(conv2d_geometry(2, 5, 6, 3, 4, 3, 1, Padding::symmetric, 1), "dense 3x3"),
      gradient_case(conv2d_geometry(2, 6, 7, 3, 4, 3, 2, Padding::symmetric, 1), "dense 3x3 stride 2"),
      gradient_case(conv2d_geometry(2, 6, 7, 3, 2, 3, 2, Padding::tf_same, 1), "dense 3x3 stride 2, pads (0, 1) rows"),
      gradient_case(conv2d_geometry(2, 8, 6, 5, 5, 3, 2, Padding::tf_same, 5), "depthwise 3x3 stride 2: pads (0, 1)"),
      gradient_case(conv2d_geometry(1, 8, 9, 4, 4, 5, 2, Padding::tf_same, 4),
                    "depthwise 5x5 stride 2: pads (1, 2) / (2, 2)"),
      gradient_case(conv2d_geometry(2, 4, 5, 6, 3, 1, 1, Padding::symmetric, 1), "pointwise"),
      gradient_case(conv2d_geometry(2, 5, 5, 4, 6, 3, 1, Padding::symmetric, 2), "grouped, groups = 2"),
  };
}
[[maybe_unused]] const bool kGradientsRegistered =
    testing::register_gradient_tests("Conv2d", "BackwardMatchesFiniteDifferences", conv2d_gradient_cases);

// ---- 2. the case tables: fast CPU and CUDA against the reference ----------------------------------

enum class Kind { dense, depthwise, pointwise, grouped };
const Kind kKinds[] = {Kind::dense, Kind::depthwise, Kind::pointwise, Kind::grouped};
const int64_t kSpatial[] = {1, 3, 7, 17, 33};

// The case numbered `next` of one kind at one spatial size. The old tests drew these choices at
// random; they now cycle deterministically through the same values: the kernel (1, 3, 5) and a
// non-square width (a third of the cases) through next % 3 and next / 3 % 3, the batch (1, 3), the
// stride (1, 2) and the padding through the bits 1 to 3 of next, channels through next % 7 and
// next / 7 % 7 (dense, pointwise), 1 + next % 6 (depthwise: 3 to 24), and groups 2 or 3 times 1 to
// 5 / 1 to 4 channels (grouped).
Conv2dGeometry cycled_case(size_t next, Kind kind, int64_t h) {
  const int64_t channels[] = {1, 3, 5, 6, 13, 19, 24};
  const int64_t kernels[] = {1, 3, 5};
  const int64_t w = (next / 3) % 3 == 0 ? kSpatial[(next / 9 + 2) % 5] : h;  // mostly square, sometimes not
  const int64_t n = (next >> 1) & 1 ? 3 : 1;
  const int64_t stride = (next >> 2) & 1 ? 2 : 1;
  const Padding padding = (next >> 3) & 1 ? Padding::tf_same : Padding::symmetric;
  const int64_t k = kernels[next % 3];
  switch (kind) {
    case Kind::dense:
      return conv2d_geometry(n, h, w, channels[next % 7], channels[(next / 7) % 7], k, stride, padding, 1);
    case Kind::depthwise: {
      const int64_t c = channels[1 + next % 6];
      return conv2d_geometry(n, h, w, c, c, k, stride, padding, c);
    }
    case Kind::pointwise:  // stride 1 or 2
      return conv2d_geometry(n, h, w, channels[next % 7], channels[(next / 7) % 7], 1, stride, padding, 1);
    case Kind::grouped: {
      const int64_t groups = 2 + int64_t((next / 5) % 2);
      return conv2d_geometry(n, h, w, groups * int64_t(1 + next % 5), groups * int64_t(1 + (next / 2) % 4), k,
                             stride, padding, groups);
    }
  }
  return {};
}

// Every EfficientNet-B0 kind of layer at a small size, each kind named (the cycled cases may miss one).
std::vector<Conv2dGeometry> efficientnet_layers() {
  return {
      conv2d_geometry(2, 32, 32, 3, 32, 3, 2, Padding::symmetric, 1),     // stem
      conv2d_geometry(2, 32, 32, 3, 32, 3, 2, Padding::tf_same, 1),       // stem, Keras padding
      conv2d_geometry(2, 16, 16, 96, 96, 3, 2, Padding::tf_same, 96),     // depthwise 3x3 stride 2
      conv2d_geometry(2, 14, 14, 120, 120, 5, 1, Padding::tf_same, 120),  // depthwise 5x5
      conv2d_geometry(2, 15, 15, 40, 40, 5, 2, Padding::symmetric, 40),   // depthwise 5x5 stride 2, odd input
      conv2d_geometry(2, 14, 14, 24, 144, 1, 1, Padding::symmetric, 1),   // pointwise expand
      conv2d_geometry(2, 7, 7, 320, 64, 1, 1, Padding::symmetric, 1),     // pointwise project
  };
}

// Per dtype: every kind at every spatial size twice (40 cases), then the EfficientNet layers; the
// forward adds a bias in every other case, dbias is always computed. Both devices run all of them.
std::vector<OpCase> conv2d_cases() {
  std::vector<OpCase> cases;
  size_t next = 0;
  for (DType dtype : kFloatTypes) {
    for (Kind kind : kKinds)
      for (int64_t h : kSpatial)
        for (int repeat = 0; repeat < 2; ++repeat, ++next)
          cases.push_back(conv2d_op_case("conv2d", dtype, cycled_case(next, kind, h), next % 2 == 0, true));
    for (const Conv2dGeometry& g : efficientnet_layers())
      cases.push_back(conv2d_op_case("conv2d EfficientNet", dtype, g, next++ % 2 == 0, true));
  }
  return cases;
}
[[maybe_unused]] const bool kRegistered = testing::register_op_tests("Conv2d", "", conv2d_cases, {.every_cpu_isa = true});

// The CPU launchers with a tiny scratch bound (one output row per chunk, one image per f32
// accumulator block): cycled cases (15 per dtype), and kernels taller than the stride, where
// consecutive chunks scatter into the same dx rows. A CPU-only table (the bound is an argument of
// the CPU launchers), so an ordinary TEST that runs it on the CPU.
std::vector<OpCase> small_chunk_cases() {
  std::vector<OpCase> cases;
  size_t next = 0;
  for (DType dtype : kFloatTypes)
    for (int trial = 0; trial < 15; ++trial, ++next)
      cases.push_back(conv2d_op_case("conv2d", dtype, cycled_case(next + 1000, kKinds[next % 4], kSpatial[next % 5]),
                                     next % 2 == 0, true, Conv2dRun::small_chunks));
  for (DType dtype : kFloatTypes)
    for (const Conv2dGeometry& g : {conv2d_geometry(3, 9, 7, 5, 6, 5, 1, Padding::symmetric, 1),
                                    conv2d_geometry(3, 10, 9, 4, 6, 3, 2, Padding::tf_same, 2),
                                    conv2d_geometry(3, 9, 8, 6, 6, 3, 2, Padding::tf_same, 6),      // depthwise
                                    conv2d_geometry(3, 5, 6, 10, 7, 1, 1, Padding::symmetric, 1)})  // pointwise
      cases.push_back(conv2d_op_case("conv2d", dtype, g, next++ % 2 == 0, true, Conv2dRun::small_chunks));
  return cases;
}

TEST(Conv2d, FastCpuMatchesReferenceInSmallChunks) {
  Rng rng;
  SG_TRACE_SEED(rng);
  testing::run_op_cases(small_chunk_cases(), Device::cpu(), rng);
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
