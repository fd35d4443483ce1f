// Tensor ops (channel scale, add/axpy/mul/fill/scale, channel concat): finite differences on
// the double reference, fast CPU and CUDA vs the reference, PyTorch golden values, bad arguments.
#include <gtest/gtest.h>

#include "kernels/cpu/tensor_ops_ref.h"
#include "kernels/tensor_ops.h"
#include "tests/support/testing.h"

namespace sg {
namespace {

using testing::all_close;
using testing::Rng;

const DType kFloatTypes[] = {DType::f32, DType::f16, DType::bf16};
const int64_t kSpatial[] = {1, 3, 7, 17, 33};
const int64_t kBatches[] = {1, 3};
const int64_t kChannels[] = {1, 3, 5, 13, 67, 16};

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

template <class Fn>
void with_type(DType dtype, Fn&& fn) {
  dispatch_floating(dtype, "test", [&](auto tag) { fn(tag); });
}

Tensor empty_on(const Shape& shape, DType dtype, Device device) {
  Tensor t = Tensor::empty(shape, dtype, device);
  testing::poison(t);
  return t;
}

// ---- Finite differences ---------------------------------------------------------------------------

TEST(TensorOps, ChannelScaleBackwardMatchesFiniteDifferences) {
  Rng rng;
  SG_TRACE_SEED(rng);
  const int64_t n = 2, hw = 6, c = 5;
  const std::vector<double> x = testing::random_doubles(rng, size_t(n * hw * c));
  const std::vector<double> s = testing::random_doubles(rng, size_t(n * c));
  const std::vector<double> g = testing::random_doubles(rng, x.size());
  auto loss = [&](const std::vector<double>& xv, const std::vector<double>& sv) {
    std::vector<double> y(x.size());
    cpu::ref::channel_scale_forward(xv.data(), sv.data(), y.data(), n, hw, c);
    return dot(y, g);
  };
  std::vector<double> dx(x.size()), ds(s.size());
  cpu::ref::channel_scale_backward(x.data(), s.data(), g.data(), dx.data(), ds.data(), n, hw, c);
  EXPECT_TRUE(testing::gradient_matches([&](const std::vector<double>& v) { return loss(v, s); }, x, dx)) << "dx";
  EXPECT_TRUE(testing::gradient_matches([&](const std::vector<double>& v) { return loss(x, v); }, s, ds)) << "ds";
}

TEST(TensorOps, MulBackwardMatchesFiniteDifferences) {
  Rng rng;
  SG_TRACE_SEED(rng);
  const size_t count = 37;
  const std::vector<double> a = testing::random_doubles(rng, count), b = testing::random_doubles(rng, count);
  const std::vector<double> g = testing::random_doubles(rng, count);
  auto loss = [&](const std::vector<double>& av, const std::vector<double>& bv) {
    std::vector<double> y(count);
    cpu::ref::mul(av.data(), bv.data(), y.data(), int64_t(count));
    return dot(y, g);
  };
  std::vector<double> da(count), db(count);
  cpu::ref::mul_backward(a.data(), b.data(), g.data(), da.data(), db.data(), int64_t(count));
  EXPECT_TRUE(testing::gradient_matches([&](const std::vector<double>& v) { return loss(v, b); }, a, da)) << "da";
  EXPECT_TRUE(testing::gradient_matches([&](const std::vector<double>& v) { return loss(a, v); }, b, db)) << "db";
}

TEST(TensorOps, ConcatBackwardMatchesFiniteDifferences) {
  Rng rng;
  SG_TRACE_SEED(rng);
  const int64_t rows = 6, widths[] = {3, 1, 4};
  std::vector<double> packed = testing::random_doubles(rng, size_t(rows * 8));  // all inputs, one after another
  const std::vector<double> g = testing::random_doubles(rng, packed.size());
  auto pointers = [&](std::vector<double>& v) {
    return std::vector<double*>{v.data(), v.data() + rows * 3, v.data() + rows * 4};
  };
  auto loss = [&](const std::vector<double>& in) {
    std::vector<double> copy = in, y(in.size());
    const std::vector<double*> p = pointers(copy);
    const double* inputs[] = {p[0], p[1], p[2]};
    cpu::ref::concat_channels_forward(inputs, widths, 3, y.data(), rows);
    return dot(y, g);
  };
  std::vector<double> grad(packed.size());
  const std::vector<double*> p = pointers(grad);
  cpu::ref::concat_channels_backward(g.data(), p.data(), widths, 3, rows);
  EXPECT_TRUE(testing::gradient_matches(loss, packed, grad));
}

// ---- Fast CPU and CUDA vs the reference ------------------------------------------------------------

void check_channel_scale(Device device, Rng& rng) {
  for (DType dtype : kFloatTypes)
    for (int64_t hw : kSpatial)
      for (int64_t n : kBatches)
        for (int repeat = 0; repeat < 2; ++repeat) {
          const int64_t c = kChannels[rng.integer(0, std::size(kChannels) - 1)];
          const int64_t h = hw, w = hw == 1 ? 1 : hw + 2;
          SCOPED_TRACE(::testing::Message() << dtype_name(dtype) << " x [" << n << ", " << h << ", " << w << ", " << c
                                            << "]");
          const Shape in{n, h, w, c}, per_channel{n, c};
          Tensor x = testing::random_tensor(rng, in, dtype), s = testing::random_tensor(rng, per_channel, dtype, 0, 1);
          Tensor dy = testing::random_tensor(rng, in, dtype);
          Tensor y_ref = Tensor::empty(in, dtype), dx_ref = Tensor::empty(in, dtype), ds_ref = Tensor::empty(per_channel, dtype);
          with_type(dtype, [&](auto tag) {
            using T = typename decltype(tag)::type;
            cpu::ref::channel_scale_forward(x.data_as<T>(), s.data_as<T>(), y_ref.data_as<T>(), n, h * w, c);
            cpu::ref::channel_scale_backward(x.data_as<T>(), s.data_as<T>(), dy.data_as<T>(), dx_ref.data_as<T>(),
                                             ds_ref.data_as<T>(), n, h * w, c);
          });
          Tensor xd = x.to(device), sd = s.to(device), dyd = dy.to(device);
          Tensor y = empty_on(in, dtype, device), dx = empty_on(in, dtype, device), ds = empty_on(per_channel, dtype, device);
          channel_scale_forward(xd, sd, y);
          channel_scale_backward(xd, sd, dyd, dx, ds);
          const testing::Tolerance tol = testing::tolerance_for(dtype);
          EXPECT_TRUE(all_close(y.to(Device::cpu()), y_ref, tol)) << "y";
          EXPECT_TRUE(all_close(dx.to(Device::cpu()), dx_ref, tol)) << "dx";
          // ds sums h * w products; the GPU adds them in another order (f32 reassociation).
          const double terms = double(h * w);
          const testing::Tolerance ds_tol =
              dtype == DType::f32 ? testing::Tolerance{1e-6 * terms, 1e-5} : testing::tolerance_for(dtype);
          EXPECT_TRUE(all_close(ds.to(Device::cpu()), ds_ref, ds_tol)) << "ds";
        }
}

void check_elementwise(Device device, Rng& rng) {
  for (DType dtype : kFloatTypes)
    for (int64_t count : {1, 3, 7, 17, 33, 1000, 4099, 70001}) {
      SCOPED_TRACE(::testing::Message() << dtype_name(dtype) << " n=" << count);
      const Shape shape{count};
      Tensor a = testing::random_tensor(rng, shape, dtype), b = testing::random_tensor(rng, shape, dtype);
      Tensor dy = testing::random_tensor(rng, shape, dtype);
      const float alpha = rng.uniform(-2, 2), value = rng.uniform(-3, 3);
      Tensor add_ref = Tensor::empty(shape, dtype), axpy_ref = Tensor::empty(shape, dtype);
      Tensor mul_ref = Tensor::empty(shape, dtype), da_ref = Tensor::empty(shape, dtype);
      Tensor db_ref = Tensor::empty(shape, dtype), fill_ref = Tensor::empty(shape, dtype);
      Tensor scale_ref = Tensor::empty(shape, dtype);
      with_type(dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        cpu::ref::add(a.data_as<T>(), b.data_as<T>(), add_ref.data_as<T>(), count);
        axpy_ref.copy_from(b);
        cpu::ref::axpy(alpha, a.data_as<T>(), axpy_ref.data_as<T>(), count);
        cpu::ref::mul(a.data_as<T>(), b.data_as<T>(), mul_ref.data_as<T>(), count);
        cpu::ref::mul_backward(a.data_as<T>(), b.data_as<T>(), dy.data_as<T>(), da_ref.data_as<T>(),
                               db_ref.data_as<T>(), count);
        cpu::ref::fill(fill_ref.data_as<T>(), value, count);
        cpu::ref::scale(a.data_as<T>(), alpha, scale_ref.data_as<T>(), count);
      });
      // Same formula, f32 arithmetic: equal to the last rounding (the GPU may fuse a * x + y).
      const testing::Tolerance tol = testing::tolerance_for(dtype);
      Tensor ad = a.to(device), bd = b.to(device), dyd = dy.to(device);
      Tensor y = empty_on(shape, dtype, device);
      add(ad, bd, y);
      EXPECT_TRUE(all_close(y.to(Device::cpu()), add_ref, tol)) << "add";
      Tensor acc = bd.to(device);
      add_(acc, ad);
      EXPECT_TRUE(all_close(acc.to(Device::cpu()), add_ref, tol)) << "add_";
      acc.copy_from(bd);
      axpy(alpha, ad, acc);
      EXPECT_TRUE(all_close(acc.to(Device::cpu()), axpy_ref, tol)) << "axpy";
      mul(ad, bd, y);
      EXPECT_TRUE(all_close(y.to(Device::cpu()), mul_ref, tol)) << "mul";
      Tensor da = empty_on(shape, dtype, device), db = empty_on(shape, dtype, device);
      mul_backward(ad, bd, dyd, da, db);
      EXPECT_TRUE(all_close(da.to(Device::cpu()), da_ref, tol)) << "mul da";
      EXPECT_TRUE(all_close(db.to(Device::cpu()), db_ref, tol)) << "mul db";
      fill_(y, value);
      EXPECT_TRUE(all_close(y.to(Device::cpu()), fill_ref, {0, 0})) << "fill_";
      scale(ad, alpha, y);
      EXPECT_TRUE(all_close(y.to(Device::cpu()), scale_ref, tol)) << "scale";
      Tensor in_place = ad.to(device);
      scale(in_place, alpha, in_place);
      EXPECT_TRUE(all_close(in_place.to(Device::cpu()), scale_ref, tol)) << "scale in place";
    }
}

void check_concat(Device device, Rng& rng) {
  for (DType dtype : kFloatTypes)
    for (int64_t hw : kSpatial)
      for (int64_t n : kBatches) {
        const int count = int(rng.integer(1, 4));
        std::vector<int64_t> widths;
        int64_t total = 0;
        for (int i = 0; i < count; ++i) {
          widths.push_back(kChannels[rng.integer(0, std::size(kChannels) - 1)]);
          total += widths.back();
        }
        SCOPED_TRACE(::testing::Message() << dtype_name(dtype) << " " << count << " inputs, [" << n << ", " << hw
                                          << ", " << hw << ", *] total " << total);
        std::vector<Tensor> inputs, inputs_dev, grads;
        std::vector<const void*> input_ptrs;
        for (int64_t c : widths) {
          inputs.push_back(testing::random_tensor(rng, {n, hw, hw, c}, dtype));
          inputs_dev.push_back(inputs.back().to(device));
          grads.push_back(empty_on({n, hw, hw, c}, dtype, device));
        }
        const Shape out{n, hw, hw, total};
        Tensor dy = testing::random_tensor(rng, out, dtype);
        Tensor y_ref = Tensor::empty(out, dtype);
        std::vector<Tensor> grads_ref;
        for (int64_t c : widths) grads_ref.push_back(Tensor::empty({n, hw, hw, c}, dtype));
        with_type(dtype, [&](auto tag) {
          using T = typename decltype(tag)::type;
          std::vector<const T*> in;
          std::vector<T*> gr;
          for (int i = 0; i < count; ++i) {
            in.push_back(inputs[size_t(i)].data_as<T>());
            gr.push_back(grads_ref[size_t(i)].data_as<T>());
          }
          cpu::ref::concat_channels_forward(in.data(), widths.data(), count, y_ref.data_as<T>(), n * hw * hw);
          cpu::ref::concat_channels_backward(dy.data_as<T>(), gr.data(), widths.data(), count, n * hw * hw);
        });
        Tensor y = empty_on(out, dtype, device);
        concat_channels_forward(inputs_dev, y);
        concat_channels_backward(dy.to(device), grads);
        EXPECT_TRUE(all_close(y.to(Device::cpu()), y_ref, {0, 0})) << "concat";
        for (int i = 0; i < count; ++i)
          EXPECT_TRUE(all_close(grads[size_t(i)].to(Device::cpu()), grads_ref[size_t(i)], {0, 0})) << "split " << i;
      }
}

TEST(TensorOps, FastCpuChannelScaleMatchesReference) {
  Rng rng;
  SG_TRACE_SEED(rng);
  check_channel_scale(Device::cpu(), rng);
}

TEST(TensorOps, FastCpuElementwiseMatchesReference) {
  Rng rng;
  SG_TRACE_SEED(rng);
  check_elementwise(Device::cpu(), rng);
}

TEST(TensorOps, FastCpuConcatMatchesReference) {
  Rng rng;
  SG_TRACE_SEED(rng);
  check_concat(Device::cpu(), rng);
}

TEST(TensorOps, CudaChannelScaleMatchesReference) {
  SG_REQUIRE_CUDA();
  Rng rng;
  SG_TRACE_SEED(rng);
  check_channel_scale(Device::cuda(0), rng);
}

TEST(TensorOps, CudaElementwiseMatchesReference) {
  SG_REQUIRE_CUDA();
  Rng rng;
  SG_TRACE_SEED(rng);
  check_elementwise(Device::cuda(0), rng);
}

TEST(TensorOps, CudaConcatMatchesReference) {
  SG_REQUIRE_CUDA();
  Rng rng;
  SG_TRACE_SEED(rng);
  check_concat(Device::cuda(0), rng);
}

// ---- PyTorch golden ---------------------------------------------------------------------------------

TEST(TensorOps, MatchesPyTorchGolden) {
  const testing::GoldenFile golden("tensor_ops");
  for (DType dtype : kFloatTypes) {
    SCOPED_TRACE(std::string(dtype_name(dtype)));
    // f16/bf16 inputs were rounded from the golden's float inputs: compare loosely there.
    const testing::Tolerance tol = dtype == DType::f32 ? testing::Tolerance{1e-5, 1e-5} : testing::Tolerance{0.05, 0.02};
    Tensor x = golden.tensor("scale/x", dtype), s = golden.tensor("scale/s", dtype), dy = golden.tensor("scale/dy", dtype);
    Tensor y = Tensor::empty(x.shape(), dtype), dx = Tensor::empty(x.shape(), dtype), ds = Tensor::empty(s.shape(), dtype);
    channel_scale_forward(x, s, y);
    channel_scale_backward(x, s, dy, dx, ds);
    EXPECT_TRUE(all_close(y, golden.doubles("scale/y"), tol)) << "scale y";
    EXPECT_TRUE(all_close(dx, golden.doubles("scale/dx"), tol)) << "scale dx";
    // ds sums 35 products: loosen f16/bf16 further.
    EXPECT_TRUE(all_close(ds, golden.doubles("scale/ds"), dtype == DType::f32 ? tol : testing::Tolerance{0.2, 0.05}))
        << "scale ds";

    Tensor a = golden.tensor("mul/a", dtype), b = golden.tensor("mul/b", dtype), g = golden.tensor("mul/dy", dtype);
    Tensor m = Tensor::empty(a.shape(), dtype), da = Tensor::empty(a.shape(), dtype), db = Tensor::empty(a.shape(), dtype);
    mul(a, b, m);
    mul_backward(a, b, g, da, db);
    EXPECT_TRUE(all_close(m, golden.doubles("mul/y"), tol)) << "mul y";
    EXPECT_TRUE(all_close(da, golden.doubles("mul/da"), tol)) << "mul da";
    EXPECT_TRUE(all_close(db, golden.doubles("mul/db"), tol)) << "mul db";

    std::vector<Tensor> parts, grads;
    for (int i = 0; i < 3; ++i) {
      parts.push_back(golden.tensor("cat/x" + std::to_string(i), dtype));
      grads.push_back(Tensor::empty(parts.back().shape(), dtype));
    }
    Tensor cat_dy = golden.tensor("cat/dy", dtype);
    Tensor cat = Tensor::empty(cat_dy.shape(), dtype);
    concat_channels_forward(parts, cat);
    concat_channels_backward(cat_dy, grads);
    EXPECT_TRUE(all_close(cat, golden.doubles("cat/y"), tol)) << "cat y";
    for (int i = 0; i < 3; ++i)
      EXPECT_TRUE(all_close(grads[size_t(i)], golden.doubles("cat/dx" + std::to_string(i)), tol)) << "cat dx" << i;
  }
}

// ---- Bad arguments ----------------------------------------------------------------------------------

template <class Fn>
void expect_error_containing(Fn&& fn, const std::string& text) {
  try {
    fn();
    ADD_FAILURE() << "no sg::Error thrown; expected one containing \"" << text << "\"";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
  }
}

TEST(TensorOps, RejectsBadArguments) {
  Tensor x = Tensor::zeros({2, 4, 4, 6}, DType::f32);
  Tensor s = Tensor::zeros({2, 6}, DType::f32);
  Tensor s_wrong = Tensor::zeros({2, 5}, DType::f32);
  Tensor x_half = Tensor::zeros({2, 4, 4, 6}, DType::f16);
  Tensor other = Tensor::zeros({2, 4, 4, 5}, DType::f32);
  expect_error_containing([&] { channel_scale_forward(x, s_wrong, x); },
                          "channel_scale_forward: s has shape [2, 5], expected [2, 6]");
  expect_error_containing([&] { channel_scale_forward(x, s, x_half); }, "channel_scale_forward: mixed dtypes");
  Tensor ds_wrong = Tensor::zeros({6}, DType::f32);
  expect_error_containing([&] { channel_scale_backward(x, s, x, x, ds_wrong); },
                          "channel_scale_backward: ds has shape [6], expected [2, 6]");
  expect_error_containing([&] { add(x, other, x); }, "add: b has shape [2, 4, 4, 5], expected [2, 4, 4, 6]");
  expect_error_containing([&] { add_(x, x_half); }, "add_: mixed dtypes");
  expect_error_containing([&] { axpy(1.0f, other, x); }, "axpy: y has shape [2, 4, 4, 6], expected [2, 4, 4, 5]");
  expect_error_containing([&] { mul_backward(x, x, x, x, other); }, "mul_backward: db has shape");
  Tensor ints = Tensor::zeros({3}, DType::i32);
  expect_error_containing([&] { fill_(ints, 1.0f); }, "fill_: t is i32, expected f32, f16 or bf16");
  expect_error_containing([&] { scale(x, 2.0f, other); }, "scale: y has shape");
  Tensor cat = Tensor::zeros({2, 4, 4, 11}, DType::f32);
  std::vector<Tensor> parts{x, other};
  concat_channels_forward(parts, cat);  // 6 + 5 = 11: fine
  Tensor cat_bad = Tensor::zeros({2, 4, 4, 12}, DType::f32);
  expect_error_containing([&] { concat_channels_forward(parts, cat_bad); },
                          "concat_channels_forward: y has shape [2, 4, 4, 12], expected 11 channels");
  std::vector<Tensor> mismatched{x, Tensor::zeros({2, 4, 3, 5}, DType::f32)};
  expect_error_containing([&] { concat_channels_forward(mismatched, cat); },
                          "concat_channels_forward: inputs[1] has shape [2, 4, 3, 5], expected [2, 4, 4] + [channels]");
  std::vector<Tensor> mixed{x, Tensor::zeros({2, 4, 4, 5}, DType::f16)};
  expect_error_containing([&] { concat_channels_backward(cat, mixed); },
                          "concat_channels_backward: dinputs[1] is f16, expected f32");
  expect_error_containing([&] { concat_channels_forward(std::vector<Tensor>{}, cat); },
                          "concat_channels_forward: no inputs tensors");
  if (cuda_available()) {
    Tensor on_gpu = Tensor::zeros({2, 4, 4, 6}, DType::f32, Device::cuda(0));
    expect_error_containing([&] { add(x, on_gpu, x); }, "add: tensors on different devices");
  }
}

}  // namespace
}  // namespace sg
