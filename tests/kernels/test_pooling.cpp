// Pooling: case tables (tests/support/op_harness.h) run on the fast CPU path and CUDA against the
// reference, finite differences on the double reference, ties, PyTorch golden values, and bad
// arguments.
#include <gtest/gtest.h>

#include <cmath>

#include "kernels/cpu/pooling_ref.h"
#include "kernels/pooling.h"
#include "tests/support/op_harness.h"

namespace sg {
namespace {

using testing::all_close;
using testing::dot;
using testing::empty_on;
using testing::expect_error_containing;
using testing::GradientCase;
using testing::OpCase;
using testing::OpInputs;
using testing::OpOutputs;
using testing::Rng;
using testing::with_type;
using Doubles = std::vector<std::vector<double>>;

const DType kFloatTypes[] = {DType::f32, DType::f16, DType::bf16};

Pool2dParams params(int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t top, int64_t bottom, int64_t left,
                    int64_t right, bool include = true) {
  Pool2dParams p;
  p.kernel_h = kh;
  p.kernel_w = kw;
  p.stride_h = sh;
  p.stride_w = sw;
  p.pad_top = top;
  p.pad_bottom = bottom;
  p.pad_left = left;
  p.pad_right = right;
  p.count_include_pad = include;
  return p;
}

// Square symmetric, no padding, and asymmetric (TF-SAME-like) geometries.
std::vector<Pool2dParams> pool_geometries() {
  return {make_pool2d_params(3, 2, 1), make_pool2d_params(2, 2, 0), make_pool2d_params(3, 1, 1),
          params(3, 2, 2, 1, 0, 1, 1, 0), params(5, 3, 2, 2, 1, 2, 0, 2)};
}

bool fits(const Pool2dParams& p, int64_t h, int64_t w) {
  return h + p.pad_top + p.pad_bottom >= p.kernel_h && w + p.pad_left + p.pad_right >= p.kernel_w;
}

Pool2dShape shape_of(const Pool2dParams& p, int64_t n, int64_t h, int64_t w, int64_t c) {
  Pool2dShape s{n, h, w, c, 0, 0};
  s.out_h = pool2d_output_extent(h, p.kernel_h, p.stride_h, p.pad_top, p.pad_bottom);
  s.out_w = pool2d_output_extent(w, p.kernel_w, p.stride_w, p.pad_left, p.pad_right);
  return s;
}

// ---- Gradient mode: the double reference backwards against central differences -------------------

std::vector<GradientCase> pooling_gradient_cases() {
  std::vector<GradientCase> cases;
  for (const Pool2dParams& base : pool_geometries()) {
    const Pool2dShape s = shape_of(base, 2, 7, 6, 3);
    const size_t in_size = size_t(s.n * s.h * s.w * s.c);
    const std::string shape = "x [2, 7, 6, 3] ";
    // Continuous random values: ties (where the max is not differentiable) have probability 0.
    GradientCase max;
    max.op = "max_pool2d";
    max.description = shape + to_string(base);
    max.input_names = {"x"};
    max.make_inputs = [=](Rng& rng) { return Doubles{testing::random_doubles(rng, in_size)}; };
    max.forward = [=](const Doubles& in) {
      std::vector<double> y(size_t(s.n * s.out_h * s.out_w * s.c));
      cpu::ref::max_pool2d_forward(base, s, in[0].data(), y.data(), nullptr);
      return y;
    };
    max.backward = [=](const Doubles& in, const std::vector<double>& dy) {
      std::vector<double> y(dy.size());
      std::vector<int32_t> argmax(dy.size());
      Doubles dx{std::vector<double>(in_size)};
      cpu::ref::max_pool2d_forward(base, s, in[0].data(), y.data(), argmax.data());
      cpu::ref::max_pool2d_backward(s, argmax.data(), dy.data(), dx[0].data());
      return dx;
    };
    cases.push_back(std::move(max));
    for (bool include : {true, false}) {
      Pool2dParams p = base;
      p.count_include_pad = include;
      GradientCase avg;
      avg.op = "avg_pool2d";
      avg.description = shape + to_string(p);
      avg.input_names = {"x"};
      avg.make_inputs = [=](Rng& rng) { return Doubles{testing::random_doubles(rng, in_size)}; };
      avg.forward = [=](const Doubles& in) {
        std::vector<double> y(size_t(s.n * s.out_h * s.out_w * s.c));
        cpu::ref::avg_pool2d_forward(p, s, in[0].data(), y.data());
        return y;
      };
      avg.backward = [=](const Doubles&, const std::vector<double>& dy) {
        Doubles dx{std::vector<double>(in_size)};
        cpu::ref::avg_pool2d_backward(p, s, dy.data(), dx[0].data());
        return dx;
      };
      cases.push_back(std::move(avg));
    }
  }
  {
    const int64_t n = 2, hw = 15, c = 5;
    GradientCase avg;
    avg.op = "global_avg_pool";
    avg.description = "x [2, 15, 5]";
    avg.input_names = {"x"};
    avg.make_inputs = [=](Rng& rng) { return Doubles{testing::random_doubles(rng, size_t(n * hw * c))}; };
    avg.forward = [=](const Doubles& in) {
      std::vector<double> y(size_t(n * c));
      cpu::ref::global_avg_pool_forward(in[0].data(), y.data(), n, hw, c);
      return y;
    };
    avg.backward = [=](const Doubles& in, const std::vector<double>& dy) {
      Doubles dx{std::vector<double>(in[0].size())};
      cpu::ref::global_avg_pool_backward(dy.data(), dx[0].data(), n, hw, c);
      return dx;
    };
    GradientCase max;
    max.op = "global_max_pool";
    max.description = "x [2, 15, 5]";
    max.input_names = {"x"};
    max.make_inputs = avg.make_inputs;
    cases.push_back(std::move(avg));
    max.forward = [=](const Doubles& in) {
      std::vector<double> y(size_t(n * c));
      cpu::ref::global_max_pool_forward(in[0].data(), y.data(), nullptr, n, hw, c);
      return y;
    };
    max.backward = [=](const Doubles& in, const std::vector<double>& dy) {
      std::vector<double> y(dy.size());
      std::vector<int32_t> argmax(dy.size());
      Doubles dx{std::vector<double>(in[0].size())};
      cpu::ref::global_max_pool_forward(in[0].data(), y.data(), argmax.data(), n, hw, c);
      cpu::ref::global_max_pool_backward(argmax.data(), dy.data(), dx[0].data(), n, hw, c);
      return dx;
    };
    cases.push_back(std::move(max));
  }
  for (double power : {1.0, 2.5, 3.0, 6.0}) {
    const int64_t n = 2, hw = 12, c = 3;
    const double eps = 1e-6;
    GradientCase gem;
    gem.op = "gem_pool";
    gem.description = "x [2, 12, 3], p = " + testing::describe(power);
    gem.input_names = {"x", "p"};
    // Positive inputs, away from the clamp at eps where the gradient is not defined.
    gem.make_inputs = [=](Rng& rng) {
      return Doubles{testing::random_doubles(rng, size_t(n * hw * c), 0.05, 2.0), {power}};
    };
    gem.forward = [=](const Doubles& in) {
      std::vector<double> y(size_t(n * c));
      cpu::ref::gem_pool_forward(in[0].data(), in[1][0], y.data(), n, hw, c, eps);
      return y;
    };
    gem.backward = [=](const Doubles& in, const std::vector<double>& dy) {
      Doubles g{std::vector<double>(in[0].size()), {0.0}};
      cpu::ref::gem_pool_backward(in[0].data(), in[1][0], dy.data(), g[0].data(), &g[1][0], n, hw, c, eps);
      return g;
    };
    cases.push_back(std::move(gem));
  }
  return cases;
}
[[maybe_unused]] const bool kGradientsRegistered =
    testing::register_gradient_tests("Pooling", "BackwardMatchesFiniteDifferences", pooling_gradient_cases);

// ---- The case tables: fast CPU and CUDA against the reference ---------------------------------------

// Spatial sizes and batches; channel counts that are not multiples of 8 (and one that is, for the
// vector paths), cycled through so every count meets several shapes.
const int64_t kSpatial[] = {1, 3, 7, 17, 33};
const int64_t kBatches[] = {1, 3};
const int64_t kChannels[] = {1, 3, 5, 13, 67, 16};

// Max and average pooling over one geometry; both sides accumulate in f32 in the same order, so
// only the final rounding differs (plus f32 reordering on the GPU), over the window's terms.
OpCase pool2d_case(DType dtype, const Pool2dParams& p, int64_t n, int64_t h, int64_t w, int64_t c) {
  const Pool2dShape s = shape_of(p, n, h, w, c);
  const Shape in{n, h, w, c}, out{n, s.out_h, s.out_w, c};
  const double window = double(p.kernel_h * p.kernel_w);
  OpCase k;
  k.op = "pool2d";
  k.description = testing::describe(dtype, in) + " " + to_string(p);
  k.outputs = {{.name = "max y", .exact = true},
               {.name = "argmax", .exact = true},
               {.name = "max dx", .summed_terms = window},
               {.name = "avg y", .summed_terms = window},
               {.name = "avg dx", .summed_terms = window}};
  k.make_inputs = [=](Rng& rng) {
    return OpInputs({testing::random_tensor(rng, in, dtype), testing::random_tensor(rng, out, dtype)});
  };
  k.reference = [=](const OpInputs& i) {
    const Tensor &x = i.tensors[0], &dy = i.tensors[1];
    OpOutputs o{Tensor::empty(out, dtype), Tensor::empty(out, DType::i32), Tensor::empty(in, dtype),
                Tensor::empty(out, dtype), Tensor::empty(in, dtype)};
    with_type(dtype, [&](auto tag) {
      using T = typename decltype(tag)::type;
      cpu::ref::max_pool2d_forward(p, s, x.data_as<T>(), o[0].data_as<T>(), o[1].data_as<int32_t>());
      cpu::ref::max_pool2d_backward(s, o[1].data_as<int32_t>(), dy.data_as<T>(), o[2].data_as<T>());
      cpu::ref::avg_pool2d_forward(p, s, x.data_as<T>(), o[3].data_as<T>());
      cpu::ref::avg_pool2d_backward(p, s, dy.data_as<T>(), o[4].data_as<T>());
    });
    return o;
  };
  k.run = [=](const OpInputs& i, OpOutputs& o) {
    max_pool2d_forward(p, i.tensors[0], o[0], &o[1]);
    max_pool2d_backward(p, o[1], i.tensors[1], o[2]);
    avg_pool2d_forward(p, i.tensors[0], o[3]);
    avg_pool2d_backward(p, i.tensors[1], o[4]);
  };
  k.bytes = double((4 * in.numel() + 5 * out.numel()) * int64_t(dtype_size(dtype)) + 2 * out.numel() * 4);
  k.flops = double(2 * out.numel()) * window;
  return k;
}

std::vector<OpCase> pool2d_cases() {
  std::vector<OpCase> cases;
  size_t next = 0;
  for (DType dtype : kFloatTypes)
    for (int64_t hw : kSpatial)
      for (int64_t n : kBatches)
        for (const Pool2dParams& base : pool_geometries()) {
          Pool2dParams p = base;
          p.count_include_pad = next % 2 == 0;  // max ignores it; avg takes either
          const int64_t h = hw, w = hw == 1 ? 1 : hw + 1;
          const int64_t c = kChannels[next++ % std::size(kChannels)];
          if (fits(p, h, w)) cases.push_back(pool2d_case(dtype, p, n, h, w, c));
        }
  return cases;
}
[[maybe_unused]] const bool kPool2dRegistered = testing::register_op_tests("Pooling", "Pool2d", pool2d_cases);

// Global average, max and GeM pooling of x [N, H, W, C] with a learned p (an f32 [1] tensor).
OpCase global_pool_case(DType dtype, int64_t n, int64_t h, int64_t w, int64_t c) {
  const int64_t plane = h * w;
  const Shape in{n, h, w, c}, out{n, c};
  const float eps = 1e-6f;
  OpCase k;
  k.op = "global pools";
  k.description = testing::describe(dtype, in);
  // GeM: sums of pow terms in f32 on both sides (another libm on the GPU); dp sums every element's
  // term.
  k.outputs = {{.name = "avg y", .summed_terms = double(plane)},
               {.name = "avg dx", .summed_terms = double(plane)},
               {.name = "max y", .exact = true},
               {.name = "max argmax", .exact = true},
               {.name = "max dx", .exact = true},
               {.name = "gem y", .summed_terms = double(plane)},
               {.name = "gem dx", .summed_terms = double(plane)},
               {.name = "gem dp", .summed_terms = double(n * plane * c)}};
  // GeM needs positive inputs in practice (after an activation); a few sit below eps.
  k.make_inputs = [=](Rng& rng) {
    Tensor x = testing::random_tensor(rng, in, dtype, -0.05f, 2.0f), dy = testing::random_tensor(rng, out, dtype);
    return OpInputs({x, dy, Tensor::from_floats({rng.uniform(1.5f, 4.0f)}, {1})});
  };
  k.reference = [=](const OpInputs& i) {
    const Tensor &x = i.tensors[0], &dy = i.tensors[1];
    const float p = i.tensors[2].data_as<float>()[0];
    OpOutputs o{Tensor::empty(out, dtype), Tensor::empty(in, dtype),       Tensor::empty(out, dtype),
                Tensor::empty(out, DType::i32), Tensor::empty(in, dtype), Tensor::empty(out, dtype),
                Tensor::empty(in, dtype),  Tensor::empty({1}, DType::f32)};
    with_type(dtype, [&](auto tag) {
      using T = typename decltype(tag)::type;
      cpu::ref::global_avg_pool_forward(x.data_as<T>(), o[0].data_as<T>(), n, plane, c);
      cpu::ref::global_avg_pool_backward(dy.data_as<T>(), o[1].data_as<T>(), n, plane, c);
      cpu::ref::global_max_pool_forward(x.data_as<T>(), o[2].data_as<T>(), o[3].data_as<int32_t>(), n, plane, c);
      cpu::ref::global_max_pool_backward(o[3].data_as<int32_t>(), dy.data_as<T>(), o[4].data_as<T>(), n, plane, c);
      cpu::ref::gem_pool_forward(x.data_as<T>(), p, o[5].data_as<T>(), n, plane, c, eps);
      cpu::ref::gem_pool_backward(x.data_as<T>(), p, dy.data_as<T>(), o[6].data_as<T>(), o[7].data_as<float>(), n,
                                  plane, c, eps);
    });
    return o;
  };
  k.run = [=](const OpInputs& i, OpOutputs& o) {
    const Tensor &x = i.tensors[0], &dy = i.tensors[1], &p = i.tensors[2];
    global_avg_pool_forward(x, o[0]);
    global_avg_pool_backward(dy, o[1]);
    global_max_pool_forward(x, o[2], &o[3]);
    global_max_pool_backward(o[3], dy, o[4]);
    gem_pool_forward(x, p, o[5], eps);
    gem_pool_backward(x, p, dy, o[6], o[7], eps);
  };
  k.bytes = double((7 * in.numel() + 7 * out.numel()) * int64_t(dtype_size(dtype)) + 2 * out.numel() * 4);
  return k;
}

std::vector<OpCase> global_pool_cases() {
  std::vector<OpCase> cases;
  size_t next = 0;
  for (DType dtype : kFloatTypes)
    for (int64_t hw : kSpatial)
      for (int64_t n : kBatches)
        for (int repeat = 0; repeat < 2; ++repeat) {
          const int64_t h = hw, w = hw == 1 ? 1 : hw - 1 + (hw % 2);
          cases.push_back(global_pool_case(dtype, n, h, w, kChannels[next++ % std::size(kChannels)]));
        }
  return cases;
}
[[maybe_unused]] const bool kGlobalRegistered =
    testing::register_op_tests("Pooling", "GlobalPools", global_pool_cases);

// ---- Checks of their own -------------------------------------------------------------------------

// Ties: the first index in scan order wins, on every device; the gradient goes there only.
void check_ties(Device device) {
  const Pool2dParams p = make_pool2d_params(2, 2, 0);
  Tensor x = Tensor::from_floats(std::vector<float>(2 * 4 * 4 * 3, 1.0f), {2, 4, 4, 3}).to(device);
  Tensor y = Tensor::empty({2, 2, 2, 3}, DType::f32, device), argmax = Tensor::empty({2, 2, 2, 3}, DType::i32, device);
  max_pool2d_forward(p, x, y, &argmax);
  const std::vector<float> index = argmax.to(Device::cpu()).to_floats();
  for (size_t i = 0; i < index.size(); ++i) {
    const size_t cell = i / 3, ow = cell % 2, oh = (cell / 2) % 2;
    EXPECT_EQ(index[i], float(2 * oh * 4 + 2 * ow)) << "window " << cell;
  }
  Tensor gy = Tensor::empty({2, 3}, DType::f32, device), gi = Tensor::empty({2, 3}, DType::i32, device);
  global_max_pool_forward(x, gy, &gi);
  for (float v : gi.to(Device::cpu()).to_floats()) EXPECT_EQ(v, 0.0f);
}

TEST(Pooling, MaxTiesPickTheFirstIndex) { check_ties(Device::cpu()); }

TEST(Pooling, CudaMaxTiesPickTheFirstIndex) {
  SG_REQUIRE_CUDA();
  check_ties(Device::cuda(0));
}

// ---- PyTorch golden ------------------------------------------------------------------------------

testing::Tolerance golden_tolerance(DType dtype) {
  // f16/bf16 inputs were rounded from the golden's float inputs: compare loosely there.
  return dtype == DType::f32 ? testing::Tolerance{1e-5, 1e-5} : testing::Tolerance{0.05, 0.02};
}

TEST(Pooling, MatchesPyTorchGolden) {
  const testing::GoldenFile golden("pooling");
  for (DType dtype : kFloatTypes) {
    SCOPED_TRACE(std::string(dtype_name(dtype)));
    const testing::Tolerance tol = golden_tolerance(dtype);
    Tensor x = golden.tensor("x", dtype);
    for (const auto& [name, p] : {std::pair{std::string("max_k3s2p1"), make_pool2d_params(3, 2, 1)},
                                  std::pair{std::string("max_k2s2p0"), make_pool2d_params(2, 2, 0)}}) {
      SCOPED_TRACE(name);
      Tensor dy = golden.tensor(name + "/dy", dtype);
      Tensor y = Tensor::empty(dy.shape(), dtype), argmax = Tensor::empty(dy.shape(), DType::i32);
      Tensor dx = Tensor::empty(x.shape(), dtype);
      max_pool2d_forward(p, x, y, &argmax);
      max_pool2d_backward(p, argmax, dy, dx);
      EXPECT_TRUE(all_close(y, golden.doubles(name + "/y"), tol));
      if (dtype == DType::f32) {  // in f16/bf16, rounding may move a max
        EXPECT_TRUE(all_close(dx, golden.doubles(name + "/dx"), tol));
      }
    }
    for (bool include : {true, false}) {
      const std::string name = include ? "avg_k3s2p1_incl" : "avg_k3s2p1_excl";
      SCOPED_TRACE(name);
      const Pool2dParams p = make_pool2d_params(3, 2, 1, include);
      Tensor dy = golden.tensor(name + "/dy", dtype);
      Tensor y = Tensor::empty(dy.shape(), dtype), dx = Tensor::empty(x.shape(), dtype);
      avg_pool2d_forward(p, x, y);
      avg_pool2d_backward(p, dy, dx);
      EXPECT_TRUE(all_close(y, golden.doubles(name + "/y"), tol));
      EXPECT_TRUE(all_close(dx, golden.doubles(name + "/dx"), tol));
    }
    Tensor dy = golden.tensor("global/dy", dtype);
    Tensor y = Tensor::empty(dy.shape(), dtype), dx = Tensor::empty(x.shape(), dtype);
    global_avg_pool_forward(x, y);
    global_avg_pool_backward(dy, dx);
    EXPECT_TRUE(all_close(y, golden.doubles("global_avg/y"), tol));
    EXPECT_TRUE(all_close(dx, golden.doubles("global_avg/dx"), tol));
    Tensor argmax = Tensor::empty(dy.shape(), DType::i32);
    global_max_pool_forward(x, y, &argmax);
    global_max_pool_backward(argmax, dy, dx);
    EXPECT_TRUE(all_close(y, golden.doubles("global_max/y"), tol));
    if (dtype == DType::f32) {
      EXPECT_TRUE(all_close(dx, golden.doubles("global_max/dx"), tol));
    }

    Tensor xg = golden.tensor("gem/x", dtype), p = golden.tensor("gem/p");
    Tensor dp = Tensor::empty({1}, DType::f32);
    gem_pool_forward(xg, p, y);
    gem_pool_backward(xg, p, dy, dx, dp);
    EXPECT_TRUE(all_close(y, golden.doubles("gem/y"), tol)) << "gem y";
    EXPECT_TRUE(all_close(dx, golden.doubles("gem/dx"), tol)) << "gem dx";
    EXPECT_TRUE(all_close(dp, golden.doubles("gem/dp"), dtype == DType::f32 ? tol : testing::Tolerance{0.05, 0.05}))
        << "gem dp";
  }
}

// ---- Bad arguments --------------------------------------------------------------------------------

TEST(Pooling, RejectsBadArguments) {
  const Pool2dParams p = make_pool2d_params(3, 2, 1);
  Tensor x = Tensor::zeros({2, 8, 8, 5}, DType::f32);
  Tensor y = Tensor::zeros({2, 4, 4, 5}, DType::f32);
  Tensor wrong = Tensor::zeros({2, 4, 3, 5}, DType::f32);
  Tensor half = Tensor::zeros({2, 4, 4, 5}, DType::f16);
  Tensor argmax = Tensor::zeros({2, 4, 4, 5}, DType::i32);
  expect_error_containing([&] { max_pool2d_forward(p, x, wrong, nullptr); },
                          "max_pool2d_forward: y has shape [2, 4, 3, 5], expected [2, 4, 4, 5]");
  expect_error_containing([&] { max_pool2d_forward(p, x, half, nullptr); }, "max_pool2d_forward: mixed dtypes");
  expect_error_containing([&] { max_pool2d_forward(p, x, y, &y); }, "max_pool2d_forward: argmax is f32, expected i32");
  expect_error_containing([&] { max_pool2d_backward(p, argmax, wrong, x); }, "max_pool2d_backward: dy has shape");
  expect_error_containing([&] { avg_pool2d_forward(make_pool2d_params(3, 2, 3), x, y); },
                          "avg_pool2d_forward: kernel 3x3 stride 2x2 pad (3,3,3,3): each pad must be in [0, kernel)");
  expect_error_containing([&] { avg_pool2d_forward(p, Tensor::zeros({8, 8, 5}, DType::f32), y); },
                          "avg_pool2d_forward: x has shape [8, 8, 5], expected rank 4");
  expect_error_containing([&] { avg_pool2d_forward(make_pool2d_params(9, 1), x, y); },
                          "smaller than the kernel 9x9");
  Tensor pooled = Tensor::zeros({2, 5}, DType::f32);
  expect_error_containing([&] { global_avg_pool_forward(x, wrong); },
                          "global_avg_pool_forward: y has shape [2, 4, 3, 5], expected [2, 5]");
  expect_error_containing([&] { global_max_pool_backward(pooled, pooled, x); },
                          "global_max_pool_backward: argmax is f32, expected i32");
  Tensor p_bad = Tensor::zeros({2}, DType::f32), p_ok = Tensor::from_floats({3.0f}, {1});
  expect_error_containing([&] { gem_pool_forward(x, p_bad, pooled); }, "gem_pool_forward: p has shape [2], expected [1]");
  expect_error_containing([&] { gem_pool_forward(x, Tensor::zeros({1}, DType::f16), pooled); },
                          "gem_pool_forward: p is f16, expected f32");
  expect_error_containing([&] { gem_pool_forward(x, p_ok, pooled, 0.0f); }, "gem_pool_forward: eps 0 must be positive");
  Tensor dp = Tensor::zeros({1}, DType::f32);
  expect_error_containing([&] { gem_pool_backward(x, p_ok, pooled, wrong, dp); }, "gem_pool_backward: dx has shape");
  expect_error_containing([&] { global_avg_pool_forward(Tensor::zeros({2, 8, 8, 5}, DType::i32), pooled); },
                          "global_avg_pool_forward: x is i32, expected f32, f16 or bf16");
  if (cuda_available()) {
    Tensor on_gpu = Tensor::zeros({2, 5}, DType::f32, Device::cuda(0));
    expect_error_containing([&] { global_avg_pool_forward(x, on_gpu); },
                            "global_avg_pool_forward: tensors on different devices");
  }
}

}  // namespace
}  // namespace sg
