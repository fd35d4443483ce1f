// Tensor ops (channel scale, add/axpy/mul/fill/scale, channel concat): case tables
// (tests/support/op_harness.h) run on the fast CPU path and CUDA against the reference, finite
// differences on the double reference, PyTorch golden values, bad arguments.
#include <gtest/gtest.h>

#include "kernels/cpu/tensor_ops_ref.h"
#include "kernels/tensor_ops.h"
#include "tests/support/op_harness.h"

namespace sg {
namespace {

using testing::all_close;
using testing::dot;
using testing::empty_like;
using testing::expect_error_containing;
using testing::GradientCase;
using testing::OpCase;
using testing::OpInputs;
using testing::OpOutputs;
using testing::Rng;
using testing::with_type;
using Doubles = std::vector<std::vector<double>>;

const DType kFloatTypes[] = {DType::f32, DType::f16, DType::bf16};
const int64_t kSpatial[] = {1, 3, 7, 17, 33};
const int64_t kBatches[] = {1, 3};
// Channel counts that are not multiples of 8 (and one that is, for the vector paths); the tables
// cycle through them so every count meets several shapes.
const int64_t kChannels[] = {1, 3, 5, 13, 67, 16};
// Odd lengths for the vector tails; 70001 past the CPU's parallel threshold.
const int64_t kLengths[] = {1, 3, 7, 17, 33, 1000, 4099, 70001};

// ---- Channel scale -------------------------------------------------------------------------------

OpCase channel_scale_case(DType dtype, int64_t n, int64_t h, int64_t w, int64_t c) {
  const Shape in{n, h, w, c}, per_channel{n, c};
  OpCase k;
  k.op = "tensor_ops channel_scale";
  k.description = testing::describe(dtype, in);
  // ds sums h * w products; the GPU adds them in another order.
  k.outputs = {{"y"}, {"dx"}, {.name = "ds", .summed_terms = double(h * w)}};
  k.make_inputs = [=](Rng& rng) {
    return OpInputs({testing::random_tensor(rng, in, dtype), testing::random_tensor(rng, per_channel, dtype, 0, 1),
                     testing::random_tensor(rng, in, dtype)});
  };
  k.reference = [=](const OpInputs& i) {
    const Tensor &x = i.tensors[0], &s = i.tensors[1], &dy = i.tensors[2];
    OpOutputs out{empty_like(x), empty_like(x), empty_like(s)};
    with_type(dtype, [&](auto tag) {
      using T = typename decltype(tag)::type;
      cpu::ref::channel_scale_forward(x.data_as<T>(), s.data_as<T>(), out[0].data_as<T>(), n, h * w, c);
      cpu::ref::channel_scale_backward(x.data_as<T>(), s.data_as<T>(), dy.data_as<T>(), out[1].data_as<T>(),
                                       out[2].data_as<T>(), n, h * w, c);
    });
    return out;
  };
  k.run = [](const OpInputs& i, OpOutputs& out) {
    channel_scale_forward(i.tensors[0], i.tensors[1], out[0]);
    channel_scale_backward(i.tensors[0], i.tensors[1], i.tensors[2], out[1], out[2]);
  };
  k.bytes = double((5 * in.numel() + 2 * per_channel.numel()) * dtype_size(dtype));
  k.flops = double(3 * in.numel());
  return k;
}

std::vector<OpCase> channel_scale_cases() {
  std::vector<OpCase> cases;
  size_t next_channels = 0;
  for (DType dtype : kFloatTypes)
    for (int64_t hw : kSpatial)
      for (int64_t n : kBatches)
        for (int repeat = 0; repeat < 2; ++repeat) {
          const int64_t c = kChannels[next_channels++ % std::size(kChannels)];
          cases.push_back(channel_scale_case(dtype, n, hw, hw == 1 ? 1 : hw + 2, c));
        }
  return cases;
}
[[maybe_unused]] const bool kChannelScaleRegistered =
    testing::register_op_tests("TensorOps", "ChannelScale", channel_scale_cases);

// ---- Elementwise: add, add_, axpy, mul and its backward, fill_, scale ---------------------------------
// Same formula, f32 arithmetic: equal to the last rounding (the GPU may fuse a * x + y).

// A case on inputs a, b, dy of `count` elements and scalars alpha, value; `reference(TypeTag<T>,
// inputs, outputs)` writes the expected outputs through typed pointers, `run` calls the op.
template <class Reference, class Run>
OpCase elementwise_case(const char* name, DType dtype, int64_t count, std::vector<testing::OutputCheck> outputs,
                        int tensors_read, Reference reference, Run run) {
  OpCase k;
  k.op = std::string("tensor_ops ") + name;
  k.description = testing::describe(dtype, {count});
  k.outputs = std::move(outputs);
  k.make_inputs = [=](Rng& rng) {
    const Shape shape{count};
    return OpInputs({testing::random_tensor(rng, shape, dtype), testing::random_tensor(rng, shape, dtype),
                     testing::random_tensor(rng, shape, dtype)},
                    {rng.uniform(-2, 2), rng.uniform(-3, 3)});
  };
  const size_t output_count = k.outputs.size();
  k.reference = [=](const OpInputs& i) {
    OpOutputs expected;
    for (size_t o = 0; o < output_count; ++o) expected.push_back(empty_like(i.tensors[0]));
    with_type(dtype, [&](auto tag) { reference(tag, i, expected); });
    return expected;
  };
  k.run = run;
  k.bytes = double((tensors_read + int(k.outputs.size())) * count * dtype_size(dtype));
  return k;
}

// Typed pointers into a case's inputs and outputs, for the references.
template <class T>
T* in(const OpInputs& i, size_t n) {
  return i.tensors[n].data_as<T>();
}
template <class T>
T* out(OpOutputs& o, size_t n) {
  return o[n].data_as<T>();
}

std::vector<OpCase> elementwise_cases() {
  std::vector<OpCase> cases;
  for (DType dtype : kFloatTypes)
    for (int64_t n : kLengths) {
      cases.push_back(elementwise_case(
          "add", dtype, n, {{"y"}}, 2,
          [=]<class T>(TypeTag<T>, const OpInputs& i, OpOutputs& o) { cpu::ref::add(in<T>(i, 0), in<T>(i, 1), out<T>(o, 0), n); },
          [](const OpInputs& i, OpOutputs& o) { add(i.tensors[0], i.tensors[1], o[0]); }));
      cases.push_back(elementwise_case(
          "add_", dtype, n, {{"a"}}, 2,
          [=]<class T>(TypeTag<T>, const OpInputs& i, OpOutputs& o) { cpu::ref::add(in<T>(i, 1), in<T>(i, 0), out<T>(o, 0), n); },
          [](const OpInputs& i, OpOutputs& o) {
            o[0].copy_from(i.tensors[1]);
            add_(o[0], i.tensors[0]);
          }));
      cases.push_back(elementwise_case(
          "axpy", dtype, n, {{"y"}}, 2,
          [=]<class T>(TypeTag<T>, const OpInputs& i, OpOutputs& o) {
            o[0].copy_from(i.tensors[1]);
            cpu::ref::axpy(i.scalars[0], in<T>(i, 0), out<T>(o, 0), n);
          },
          [](const OpInputs& i, OpOutputs& o) {
            o[0].copy_from(i.tensors[1]);
            axpy(i.scalars[0], i.tensors[0], o[0]);
          }));
      cases.push_back(elementwise_case(
          "mul", dtype, n, {{"y"}}, 2,
          [=]<class T>(TypeTag<T>, const OpInputs& i, OpOutputs& o) { cpu::ref::mul(in<T>(i, 0), in<T>(i, 1), out<T>(o, 0), n); },
          [](const OpInputs& i, OpOutputs& o) { mul(i.tensors[0], i.tensors[1], o[0]); }));
      cases.push_back(elementwise_case(
          "mul_backward", dtype, n, {{"da"}, {"db"}}, 3,
          [=]<class T>(TypeTag<T>, const OpInputs& i, OpOutputs& o) {
            cpu::ref::mul_backward(in<T>(i, 0), in<T>(i, 1), in<T>(i, 2), out<T>(o, 0), out<T>(o, 1), n);
          },
          [](const OpInputs& i, OpOutputs& o) { mul_backward(i.tensors[0], i.tensors[1], i.tensors[2], o[0], o[1]); }));
      cases.push_back(elementwise_case(
          "fill_", dtype, n, {{.name = "t", .exact = true}}, 0,
          [=]<class T>(TypeTag<T>, const OpInputs& i, OpOutputs& o) { cpu::ref::fill(out<T>(o, 0), i.scalars[1], n); },
          [](const OpInputs& i, OpOutputs& o) { fill_(o[0], i.scalars[1]); }));
      cases.push_back(elementwise_case(
          "scale", dtype, n, {{"y"}}, 1,
          [=]<class T>(TypeTag<T>, const OpInputs& i, OpOutputs& o) { cpu::ref::scale(in<T>(i, 0), i.scalars[0], out<T>(o, 0), n); },
          [](const OpInputs& i, OpOutputs& o) { scale(i.tensors[0], i.scalars[0], o[0]); }));
      cases.push_back(elementwise_case(
          "scale in place", dtype, n, {{"y"}}, 1,
          [=]<class T>(TypeTag<T>, const OpInputs& i, OpOutputs& o) { cpu::ref::scale(in<T>(i, 0), i.scalars[0], out<T>(o, 0), n); },
          [](const OpInputs& i, OpOutputs& o) {
            o[0].copy_from(i.tensors[0]);
            scale(o[0], i.scalars[0], o[0]);
          }));
    }
  return cases;
}
[[maybe_unused]] const bool kElementwiseRegistered =
    testing::register_op_tests("TensorOps", "Elementwise", elementwise_cases);

// ---- Channel concatenation and its backward (the split): bit for bit -----------------------------

OpCase concat_case(DType dtype, int64_t n, int64_t hw, std::vector<int64_t> widths) {
  const int count = int(widths.size());
  int64_t total = 0;
  for (int64_t c : widths) total += c;
  const Shape out{n, hw, hw, total};
  OpCase k;
  k.op = "tensor_ops concat_channels";
  k.description = testing::describe(dtype, out) + " from " + std::to_string(count) + " inputs";
  k.outputs.push_back({.name = "y", .exact = true});
  for (int i = 0; i < count; ++i) k.outputs.push_back({.name = "dx" + std::to_string(i), .exact = true});
  // Inputs: the parts, then dy.
  k.make_inputs = [=](Rng& rng) {
    std::vector<Tensor> t;
    for (int64_t c : widths) t.push_back(testing::random_tensor(rng, {n, hw, hw, c}, dtype));
    t.push_back(testing::random_tensor(rng, out, dtype));
    return OpInputs(std::move(t));
  };
  k.reference = [=](const OpInputs& i) {
    OpOutputs o{Tensor::empty(out, dtype)};
    for (int p = 0; p < count; ++p) o.push_back(empty_like(i.tensors[size_t(p)]));
    with_type(dtype, [&](auto tag) {
      using T = typename decltype(tag)::type;
      std::vector<const T*> parts;
      std::vector<T*> grads;
      for (int p = 0; p < count; ++p) {
        parts.push_back(i.tensors[size_t(p)].data_as<T>());
        grads.push_back(o[size_t(p) + 1].data_as<T>());
      }
      cpu::ref::concat_channels_forward(parts.data(), widths.data(), count, o[0].data_as<T>(), n * hw * hw);
      cpu::ref::concat_channels_backward(i.tensors.back().data_as<T>(), grads.data(), widths.data(), count,
                                         n * hw * hw);
    });
    return o;
  };
  k.run = [count](const OpInputs& i, OpOutputs& o) {
    concat_channels_forward(std::span(i.tensors).first(size_t(count)), o[0]);
    concat_channels_backward(i.tensors.back(), std::span(o).subspan(1));
  };
  k.bytes = double(4 * out.numel() * dtype_size(dtype));
  return k;
}

std::vector<OpCase> concat_cases() {
  std::vector<OpCase> cases;
  size_t next = 0;
  for (DType dtype : kFloatTypes)
    for (int64_t hw : kSpatial)
      for (int64_t n : kBatches) {
        // 1 to 4 inputs, their widths cycling through kChannels.
        std::vector<int64_t> widths(1 + next % 4);
        for (int64_t& c : widths) c = kChannels[next++ % std::size(kChannels)];
        cases.push_back(concat_case(dtype, n, hw, widths));
      }
  return cases;
}
[[maybe_unused]] const bool kConcatRegistered = testing::register_op_tests("TensorOps", "Concat", concat_cases);

// ---- Gradient mode ----------------------------------------------------------------------------------

std::vector<GradientCase> tensor_ops_gradient_cases() {
  std::vector<GradientCase> cases;
  {
    const int64_t n = 2, hw = 6, c = 5;
    GradientCase k;
    k.op = "tensor_ops channel_scale";
    k.description = "x [2, 6, 5], s [2, 5]";
    k.input_names = {"x", "s"};
    k.make_inputs = [=](Rng& rng) {
      return Doubles{testing::random_doubles(rng, size_t(n * hw * c)), testing::random_doubles(rng, size_t(n * c))};
    };
    k.forward = [=](const Doubles& in) {
      std::vector<double> y(in[0].size());
      cpu::ref::channel_scale_forward(in[0].data(), in[1].data(), y.data(), n, hw, c);
      return y;
    };
    k.backward = [=](const Doubles& in, const std::vector<double>& dy) {
      Doubles g{std::vector<double>(in[0].size()), std::vector<double>(in[1].size())};
      cpu::ref::channel_scale_backward(in[0].data(), in[1].data(), dy.data(), g[0].data(), g[1].data(), n, hw, c);
      return g;
    };
    cases.push_back(std::move(k));
  }
  {
    const int64_t count = 37;
    GradientCase k;
    k.op = "tensor_ops mul";
    k.description = "[37]";
    k.input_names = {"a", "b"};
    k.make_inputs = [=](Rng& rng) {
      return Doubles{testing::random_doubles(rng, count), testing::random_doubles(rng, count)};
    };
    k.forward = [=](const Doubles& in) {
      std::vector<double> y(count);
      cpu::ref::mul(in[0].data(), in[1].data(), y.data(), count);
      return y;
    };
    k.backward = [=](const Doubles& in, const std::vector<double>& dy) {
      Doubles g{std::vector<double>(count), std::vector<double>(count)};
      cpu::ref::mul_backward(in[0].data(), in[1].data(), dy.data(), g[0].data(), g[1].data(), count);
      return g;
    };
    cases.push_back(std::move(k));
  }
  {
    const int64_t rows = 6;
    const std::vector<int64_t> widths{3, 1, 4};
    GradientCase k;
    k.op = "tensor_ops concat_channels";
    k.description = "[6, 3] + [6, 1] + [6, 4]";
    k.input_names = {"x0", "x1", "x2"};
    k.make_inputs = [=](Rng& rng) {
      Doubles in;
      for (int64_t c : widths) in.push_back(testing::random_doubles(rng, size_t(rows * c)));
      return in;
    };
    k.forward = [=](const Doubles& in) {
      std::vector<double> y(size_t(rows * 8));
      const double* parts[] = {in[0].data(), in[1].data(), in[2].data()};
      cpu::ref::concat_channels_forward(parts, widths.data(), 3, y.data(), rows);
      return y;
    };
    k.backward = [=](const Doubles& in, const std::vector<double>& dy) {
      Doubles g;
      for (const auto& v : in) g.emplace_back(v.size());
      double* grads[] = {g[0].data(), g[1].data(), g[2].data()};
      cpu::ref::concat_channels_backward(dy.data(), grads, widths.data(), 3, rows);
      return g;
    };
    cases.push_back(std::move(k));
  }
  return cases;
}
[[maybe_unused]] const bool kGradientsRegistered =
    testing::register_gradient_tests("TensorOps", "BackwardMatchesFiniteDifferences", tensor_ops_gradient_cases);

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
