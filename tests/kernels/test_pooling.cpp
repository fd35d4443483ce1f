// Pooling: finite differences on the double reference, fast CPU and CUDA vs the reference,
// PyTorch golden values, and bad arguments.
#include <gtest/gtest.h>

#include <cmath>

#include "kernels/cpu/pooling_ref.h"
#include "kernels/pooling.h"
#include "tests/support/testing.h"

namespace sg {
namespace {

using testing::all_close;
using testing::dot;
using testing::empty_on;
using testing::expect_error_containing;
using testing::Rng;
using testing::with_type;

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

// ---- Finite differences on the double reference ---------------------------------------------

TEST(Pooling, MaxPool2dBackwardMatchesFiniteDifferences) {
  Rng rng;
  SG_TRACE_SEED(rng);
  for (const Pool2dParams& p : pool_geometries()) {
    SCOPED_TRACE(to_string(p));
    const Pool2dShape s = shape_of(p, 2, 7, 6, 3);
    // Continuous random values: ties (where the max is not differentiable) have probability 0.
    const std::vector<double> x = testing::random_doubles(rng, size_t(s.n * s.h * s.w * s.c));
    const std::vector<double> g = testing::random_doubles(rng, size_t(s.n * s.out_h * s.out_w * s.c));
    auto loss = [&](const std::vector<double>& in) {
      std::vector<double> y(g.size());
      cpu::ref::max_pool2d_forward(p, s, in.data(), y.data(), nullptr);
      return dot(y, g);
    };
    std::vector<double> y(g.size()), dx(x.size());
    std::vector<int32_t> argmax(g.size());
    cpu::ref::max_pool2d_forward(p, s, x.data(), y.data(), argmax.data());
    cpu::ref::max_pool2d_backward(s, argmax.data(), g.data(), dx.data());
    EXPECT_TRUE(testing::gradient_matches(loss, x, dx));
  }
}

TEST(Pooling, AvgPool2dBackwardMatchesFiniteDifferences) {
  Rng rng;
  SG_TRACE_SEED(rng);
  for (bool include : {true, false})
    for (Pool2dParams p : pool_geometries()) {
      p.count_include_pad = include;
      SCOPED_TRACE(to_string(p));
      const Pool2dShape s = shape_of(p, 2, 7, 6, 3);
      const std::vector<double> x = testing::random_doubles(rng, size_t(s.n * s.h * s.w * s.c));
      const std::vector<double> g = testing::random_doubles(rng, size_t(s.n * s.out_h * s.out_w * s.c));
      auto loss = [&](const std::vector<double>& in) {
        std::vector<double> y(g.size());
        cpu::ref::avg_pool2d_forward(p, s, in.data(), y.data());
        return dot(y, g);
      };
      std::vector<double> dx(x.size());
      cpu::ref::avg_pool2d_backward(p, s, g.data(), dx.data());
      EXPECT_TRUE(testing::gradient_matches(loss, x, dx));
    }
}

TEST(Pooling, GlobalPoolBackwardsMatchFiniteDifferences) {
  Rng rng;
  SG_TRACE_SEED(rng);
  const int64_t n = 2, hw = 15, c = 5;
  const std::vector<double> x = testing::random_doubles(rng, size_t(n * hw * c));
  const std::vector<double> g = testing::random_doubles(rng, size_t(n * c));
  std::vector<double> dx(x.size());
  {
    auto loss = [&](const std::vector<double>& in) {
      std::vector<double> y(g.size());
      cpu::ref::global_avg_pool_forward(in.data(), y.data(), n, hw, c);
      return dot(y, g);
    };
    cpu::ref::global_avg_pool_backward(g.data(), dx.data(), n, hw, c);
    EXPECT_TRUE(testing::gradient_matches(loss, x, dx)) << "global average";
  }
  {
    auto loss = [&](const std::vector<double>& in) {
      std::vector<double> y(g.size());
      cpu::ref::global_max_pool_forward(in.data(), y.data(), nullptr, n, hw, c);
      return dot(y, g);
    };
    std::vector<double> y(g.size());
    std::vector<int32_t> argmax(g.size());
    cpu::ref::global_max_pool_forward(x.data(), y.data(), argmax.data(), n, hw, c);
    cpu::ref::global_max_pool_backward(argmax.data(), g.data(), dx.data(), n, hw, c);
    EXPECT_TRUE(testing::gradient_matches(loss, x, dx)) << "global max";
  }
}

TEST(Pooling, GemBackwardMatchesFiniteDifferencesInXAndP) {
  Rng rng;
  SG_TRACE_SEED(rng);
  const int64_t n = 2, hw = 12, c = 3;
  const double eps = 1e-6;
  for (double p : {1.0, 2.5, 3.0, 6.0}) {
    SCOPED_TRACE(::testing::Message() << "p=" << p);
    // Positive inputs, away from the clamp at eps where the gradient is not defined.
    const std::vector<double> x = testing::random_doubles(rng, size_t(n * hw * c), 0.05, 2.0);
    const std::vector<double> g = testing::random_doubles(rng, size_t(n * c));
    auto forward = [&](const std::vector<double>& in, double power) {
      std::vector<double> y(g.size());
      cpu::ref::gem_pool_forward(in.data(), power, y.data(), n, hw, c, eps);
      return dot(y, g);
    };
    std::vector<double> dx(x.size());
    double dp = 0;
    cpu::ref::gem_pool_backward(x.data(), p, g.data(), dx.data(), &dp, n, hw, c, eps);
    EXPECT_TRUE(testing::gradient_matches([&](const std::vector<double>& in) { return forward(in, p); }, x, dx));
    EXPECT_TRUE(testing::gradient_matches([&](const std::vector<double>& in) { return forward(x, in[0]); }, {p},
                                          {dp}))
        << "dp";
  }
}

// ---- Fast CPU and CUDA vs the reference --------------------------------------------------------

// Spatial sizes and batches the brief asks for; channel counts that are not multiples of 8
// (and one that is, for the vector paths).
const int64_t kSpatial[] = {1, 3, 7, 17, 33};
const int64_t kBatches[] = {1, 3};
const int64_t kChannels[] = {1, 3, 5, 13, 67, 16};

// Tolerance for a reduction over `terms` values whose inputs and output are stored in dtype:
// both sides accumulate in f32 in the same order, so only the final rounding differs (plus
// f32 reordering on the GPU).
testing::Tolerance reduction_tolerance(DType dtype, int64_t terms) {
  testing::Tolerance t = testing::tolerance_for(dtype);
  if (dtype == DType::f32) t = {1e-5 + 1e-7 * double(terms), 1e-5 + 1e-7 * double(terms)};
  return t;
}

void check_pool2d_against_reference(Device device, Rng& rng) {
  for (DType dtype : kFloatTypes)
    for (int64_t hw : kSpatial)
      for (int64_t n : kBatches)
        for (const Pool2dParams& base : pool_geometries()) {
            Pool2dParams p = base;
            p.count_include_pad = rng.integer(0, 1) == 1;  // max ignores it; avg takes either
            const int64_t h = hw, w = hw == 1 ? 1 : hw + 1;
            if (!fits(p, h, w)) continue;
            const int64_t c = kChannels[rng.integer(0, std::size(kChannels) - 1)];
            SCOPED_TRACE(::testing::Message() << dtype_name(dtype) << " x [" << n << ", " << h << ", " << w << ", "
                                              << c << "] " << to_string(p));
            const Pool2dShape s = shape_of(p, n, h, w, c);
            const Shape in{n, h, w, c}, out{n, s.out_h, s.out_w, c};
            Tensor x = testing::random_tensor(rng, in, dtype), dy = testing::random_tensor(rng, out, dtype);
            Tensor y_ref = Tensor::empty(out, dtype), y_avg_ref = Tensor::empty(out, dtype);
            Tensor dx_ref = Tensor::empty(in, dtype), dx_avg_ref = Tensor::empty(in, dtype);
            Tensor argmax_ref = Tensor::empty(out, DType::i32);
            with_type(dtype, [&](auto tag) {
              using T = typename decltype(tag)::type;
              cpu::ref::max_pool2d_forward(p, s, x.data_as<T>(), y_ref.data_as<T>(), argmax_ref.data_as<int32_t>());
              cpu::ref::max_pool2d_backward(s, argmax_ref.data_as<int32_t>(), dy.data_as<T>(), dx_ref.data_as<T>());
              cpu::ref::avg_pool2d_forward(p, s, x.data_as<T>(), y_avg_ref.data_as<T>());
              cpu::ref::avg_pool2d_backward(p, s, dy.data_as<T>(), dx_avg_ref.data_as<T>());
            });
            Tensor xd = x.to(device), dyd = dy.to(device);
            Tensor y = empty_on(out, dtype, device), argmax = empty_on(out, DType::i32, device);
            Tensor dx = empty_on(in, dtype, device);
            max_pool2d_forward(p, xd, y, &argmax);
            max_pool2d_backward(p, argmax, dyd, dx);
            const testing::Tolerance tol = reduction_tolerance(dtype, p.kernel_h * p.kernel_w);
            EXPECT_TRUE(all_close(y.to(Device::cpu()), y_ref, {0, 0})) << "max y";
            EXPECT_TRUE(all_close(argmax.to(Device::cpu()), argmax_ref, {0, 0})) << "argmax";
            EXPECT_TRUE(all_close(dx.to(Device::cpu()), dx_ref, tol)) << "max dx";
            Tensor y_avg = empty_on(out, dtype, device), dx_avg = empty_on(in, dtype, device);
            avg_pool2d_forward(p, xd, y_avg);
            avg_pool2d_backward(p, dyd, dx_avg);
            EXPECT_TRUE(all_close(y_avg.to(Device::cpu()), y_avg_ref, tol)) << "avg y";
            EXPECT_TRUE(all_close(dx_avg.to(Device::cpu()), dx_avg_ref, tol)) << "avg dx";
          }
}

void check_global_pools_against_reference(Device device, Rng& rng) {
  for (DType dtype : kFloatTypes)
    for (int64_t hw : kSpatial)
      for (int64_t n : kBatches)
        for (int repeat = 0; repeat < 2; ++repeat) {
          const int64_t c = kChannels[rng.integer(0, std::size(kChannels) - 1)];
          const int64_t h = hw, w = hw == 1 ? 1 : hw - 1 + (hw % 2);
          const int64_t plane = h * w;
          SCOPED_TRACE(::testing::Message() << dtype_name(dtype) << " x [" << n << ", " << h << ", " << w << ", " << c
                                            << "]");
          const Shape in{n, h, w, c}, out{n, c};
          // GeM needs positive inputs in practice (after an activation); a few sit below eps.
          Tensor x = testing::random_tensor(rng, in, dtype, -0.05f, 2.0f), dy = testing::random_tensor(rng, out, dtype);
          const float p_value = rng.uniform(1.5f, 4.0f), eps = 1e-6f;
          Tensor p = Tensor::from_floats({p_value}, {1});
          Tensor y_avg_ref = Tensor::empty(out, dtype), y_max_ref = Tensor::empty(out, dtype);
          Tensor y_gem_ref = Tensor::empty(out, dtype), argmax_ref = Tensor::empty(out, DType::i32);
          Tensor dx_avg_ref = Tensor::empty(in, dtype), dx_max_ref = Tensor::empty(in, dtype);
          Tensor dx_gem_ref = Tensor::empty(in, dtype);
          float dp_ref = 0;
          with_type(dtype, [&](auto tag) {
            using T = typename decltype(tag)::type;
            cpu::ref::global_avg_pool_forward(x.data_as<T>(), y_avg_ref.data_as<T>(), n, plane, c);
            cpu::ref::global_avg_pool_backward(dy.data_as<T>(), dx_avg_ref.data_as<T>(), n, plane, c);
            cpu::ref::global_max_pool_forward(x.data_as<T>(), y_max_ref.data_as<T>(), argmax_ref.data_as<int32_t>(),
                                              n, plane, c);
            cpu::ref::global_max_pool_backward(argmax_ref.data_as<int32_t>(), dy.data_as<T>(),
                                               dx_max_ref.data_as<T>(), n, plane, c);
            cpu::ref::gem_pool_forward(x.data_as<T>(), p_value, y_gem_ref.data_as<T>(), n, plane, c, eps);
            cpu::ref::gem_pool_backward(x.data_as<T>(), p_value, dy.data_as<T>(), dx_gem_ref.data_as<T>(), &dp_ref, n,
                                        plane, c, eps);
          });
          Tensor xd = x.to(device), dyd = dy.to(device), pd = p.to(device);
          const testing::Tolerance tol = reduction_tolerance(dtype, plane);
          Tensor y = empty_on(out, dtype, device), dx = empty_on(in, dtype, device);
          global_avg_pool_forward(xd, y);
          global_avg_pool_backward(dyd, dx);
          EXPECT_TRUE(all_close(y.to(Device::cpu()), y_avg_ref, tol)) << "avg y";
          EXPECT_TRUE(all_close(dx.to(Device::cpu()), dx_avg_ref, tol)) << "avg dx";

          Tensor argmax = empty_on(out, DType::i32, device);
          global_max_pool_forward(xd, y, &argmax);
          global_max_pool_backward(argmax, dyd, dx);
          EXPECT_TRUE(all_close(y.to(Device::cpu()), y_max_ref, {0, 0})) << "max y";
          EXPECT_TRUE(all_close(argmax.to(Device::cpu()), argmax_ref, {0, 0})) << "max argmax";
          EXPECT_TRUE(all_close(dx.to(Device::cpu()), dx_max_ref, {0, 0})) << "max dx";

          Tensor dp = empty_on({1}, DType::f32, device);
          gem_pool_forward(xd, pd, y, eps);
          gem_pool_backward(xd, pd, dyd, dx, dp, eps);
          // pow/log in f32 on both sides, different libm on the GPU: a few ulp more.
          testing::Tolerance gem_tol = tol;
          if (dtype == DType::f32) gem_tol = {1e-4, 1e-4};
          EXPECT_TRUE(all_close(y.to(Device::cpu()), y_gem_ref, gem_tol)) << "gem y";
          EXPECT_TRUE(all_close(dx.to(Device::cpu()), dx_gem_ref, gem_tol)) << "gem dx";
          // dp sums n * c terms in a different order on each side.
          EXPECT_TRUE(all_close(dp.to(Device::cpu()), std::vector<double>{dp_ref}, {1e-4, 1e-3})) << "gem dp";
        }
}

TEST(Pooling, FastCpuPool2dMatchesReference) {
  Rng rng;
  SG_TRACE_SEED(rng);
  check_pool2d_against_reference(Device::cpu(), rng);
}

TEST(Pooling, FastCpuGlobalPoolsMatchReference) {
  Rng rng;
  SG_TRACE_SEED(rng);
  check_global_pools_against_reference(Device::cpu(), rng);
}

TEST(Pooling, CudaPool2dMatchesReference) {
  SG_REQUIRE_CUDA();
  Rng rng;
  SG_TRACE_SEED(rng);
  check_pool2d_against_reference(Device::cuda(0), rng);
}

TEST(Pooling, CudaGlobalPoolsMatchReference) {
  SG_REQUIRE_CUDA();
  Rng rng;
  SG_TRACE_SEED(rng);
  check_global_pools_against_reference(Device::cuda(0), rng);
}

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
