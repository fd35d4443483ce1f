// Fully connected layer: a case table (tests/support/op_harness.h) run on the fast CPU path and
// CUDA against the reference, finite differences on the double reference, PyTorch golden values
// (F.linear and its gradients), and bad arguments.
#include <gtest/gtest.h>

#include "kernels/cpu/linear_ref.h"
#include "kernels/linear.h"
#include "tests/support/op_harness.h"

namespace sg {
namespace {

using testing::all_close;
using testing::GradientCase;
using testing::OpCase;
using testing::OpInputs;
using testing::OpOutputs;
using testing::Rng;
using Doubles = std::vector<std::vector<double>>;

const DType kFloatTypes[] = {DType::f32, DType::f16, DType::bf16};

struct Reference {
  Tensor y, dx, dw, db;
};

// The reference in the tensors' own storage type.
Reference reference(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& dy) {
  const int64_t M = x.dim(0), K = x.dim(1), N = w.dim(0);
  Reference r{Tensor::empty({M, N}, x.dtype()), Tensor::empty({M, K}, x.dtype()), Tensor::empty({N, K}, x.dtype()),
              Tensor::empty({N}, x.dtype())};
  dispatch_floating(x.dtype(), "test", [&](auto tag) {
    using T = typename decltype(tag)::type;
    cpu::ref::linear_forward(x.data_as<T>(), w.data_as<T>(), b.data_as<T>(), r.y.data_as<T>(), M, K, N);
    cpu::ref::linear_backward_input(dy.data_as<T>(), w.data_as<T>(), r.dx.data_as<T>(), M, K, N);
    cpu::ref::linear_backward_weight(x.data_as<T>(), dy.data_as<T>(), r.dw.data_as<T>(), r.db.data_as<T>(), M, K, N);
  });
  return r;
}

// ---- The case table: x [M, K], w [N, K], b [N], dy [M, N], all in the case's dtype -------------
// Outputs: y, y without bias (the reference with a zero bias), dx, dw with db, and dw alone. Each
// is a sum of K, N or M products, which BLAS and the device add in their own order.

OpCase linear_case(DType dtype, int64_t M, int64_t K, int64_t N) {
  OpCase k;
  k.op = "linear";
  k.description = std::string(dtype_name(dtype)) + " M=" + std::to_string(M) + " K=" + std::to_string(K) +
                  " N=" + std::to_string(N);
  k.outputs = {{.name = "y", .summed_terms = double(K)},  {.name = "y without bias", .summed_terms = double(K)},
               {.name = "dx", .summed_terms = double(N)}, {.name = "dw", .summed_terms = double(M)},
               {.name = "db", .summed_terms = double(M)}, {.name = "dw without db", .summed_terms = double(M)}};
  k.make_inputs = [=](Rng& rng) {
    return OpInputs({testing::random_tensor(rng, {M, K}, dtype), testing::random_tensor(rng, {N, K}, dtype),
                     testing::random_tensor(rng, {N}, dtype), testing::random_tensor(rng, {M, N}, dtype)});
  };
  k.reference = [=](const OpInputs& in) {
    const Reference r = reference(in.tensors[0], in.tensors[1], in.tensors[2], in.tensors[3]);
    const Reference no_bias = reference(in.tensors[0], in.tensors[1], Tensor::zeros({N}, dtype), in.tensors[3]);
    return OpOutputs{r.y, no_bias.y, r.dx, r.dw, r.db, r.dw};
  };
  k.run = [](const OpInputs& in, OpOutputs& o) {
    const Tensor &x = in.tensors[0], &w = in.tensors[1], &b = in.tensors[2], &dy = in.tensors[3];
    linear_forward(x, w, &b, o[0]);
    linear_forward(x, w, nullptr, o[1]);
    linear_backward_input(dy, w, o[2]);
    linear_backward_weight(x, dy, o[3], &o[4]);
    linear_backward_weight(x, dy, o[5], nullptr);
  };
  // Three GEMMs of M K N multiply-adds (the forward, dx, dw), each reading its operands once.
  k.flops = double(3 * 2 * M * K * N);
  k.bytes = double((3 * (M * K + N * K + M * N)) * int64_t(dtype_size(dtype)));
  return k;
}

std::vector<OpCase> linear_cases() {
  std::vector<OpCase> cases;
  for (DType dtype : kFloatTypes) {
    for (int64_t M : {1, 3, 7, 17, 33})
      for (auto [K, N] : {std::pair<int64_t, int64_t>{5, 3}, {13, 29}, {37, 6}, {100, 11}})
        cases.push_back(linear_case(dtype, M, K, N));
    cases.push_back(linear_case(dtype, 70, 1280, 5));    // the binned head
    cases.push_back(linear_case(dtype, 300, 129, 1000));  // many rows for the bias gradient
  }
  return cases;
}
[[maybe_unused]] const bool kRegistered = testing::register_op_tests("Linear", "", linear_cases);

// ---- Gradient mode ------------------------------------------------------------------------------

std::vector<GradientCase> linear_gradient_cases() {
  const int64_t M = 3, K = 5, N = 4;
  GradientCase k;
  k.op = "linear";
  k.description = "x [3, 5], w [4, 5], b [4]";
  k.input_names = {"x", "w", "b"};
  k.make_inputs = [=](Rng& rng) {
    return Doubles{testing::random_doubles(rng, size_t(M * K)), testing::random_doubles(rng, size_t(N * K)),
                   testing::random_doubles(rng, size_t(N))};
  };
  k.forward = [=](const Doubles& in) {
    std::vector<double> y(static_cast<size_t>(M * N));
    cpu::ref::linear_forward(in[0].data(), in[1].data(), in[2].data(), y.data(), M, K, N);
    return y;
  };
  k.backward = [=](const Doubles& in, const std::vector<double>& dy) {
    Doubles g{std::vector<double>(in[0].size()), std::vector<double>(in[1].size()), std::vector<double>(in[2].size())};
    cpu::ref::linear_backward_input(dy.data(), in[1].data(), g[0].data(), M, K, N);
    cpu::ref::linear_backward_weight(in[0].data(), dy.data(), g[1].data(), g[2].data(), M, K, N);
    return g;
  };
  return {k};
}
[[maybe_unused]] const bool kGradientsRegistered =
    testing::register_gradient_tests("Linear", "BackwardMatchesFiniteDifferences", linear_gradient_cases);

// ---- Checks of their own ------------------------------------------------------------------------

TEST(Linear, MatchesPyTorchGolden) {
  const testing::GoldenFile golden("linear");
  for (DType dtype : kFloatTypes) {
    SCOPED_TRACE(std::string(dtype_name(dtype)));
    Tensor x = golden.tensor("x", dtype), w = golden.tensor("w", dtype), b = golden.tensor("b", dtype);
    Tensor dy = golden.tensor("dy", dtype);
    const int64_t M = x.dim(0), K = x.dim(1), N = w.dim(0);
    Tensor y = Tensor::empty({M, N}, dtype), dx = Tensor::empty({M, K}, dtype);
    Tensor dw = Tensor::empty({N, K}, dtype), db = Tensor::empty({N}, dtype);
    linear_forward(x, w, &b, y);
    linear_backward_input(dy, w, dx);
    linear_backward_weight(x, dy, dw, &db);
    // f16/bf16 inputs are rounded copies of the golden's float inputs: compare loosely there.
    const testing::Tolerance tol = dtype == DType::f32 ? testing::Tolerance{1e-5, 1e-5}
                                   : dtype == DType::f16 ? testing::Tolerance{2e-2, 1e-2}
                                                         : testing::Tolerance{1e-1, 3e-2};
    EXPECT_TRUE(all_close(y, golden.doubles("y"), tol));
    EXPECT_TRUE(all_close(dx, golden.doubles("dx"), tol));
    EXPECT_TRUE(all_close(dw, golden.doubles("dw"), tol));
    EXPECT_TRUE(all_close(db, golden.doubles("db"), tol));
  }
}

TEST(Linear, RejectsBadArguments) {
  Tensor x = Tensor::zeros({2, 3}, DType::f32), w = Tensor::zeros({4, 3}, DType::f32);
  Tensor b = Tensor::zeros({4}, DType::f32), y = Tensor::zeros({2, 4}, DType::f32);
  Tensor w_bad = Tensor::zeros({4, 5}, DType::f32), w_f16 = Tensor::zeros({4, 3}, DType::f16);
  Tensor b_bad = Tensor::zeros({5}, DType::f32), y_bad = Tensor::zeros({4, 2}, DType::f32);
  Tensor integers = Tensor::zeros({2, 3}, DType::i32), empty = Tensor::zeros({0, 3}, DType::f32);
  EXPECT_THROW(
      {
        try {
          linear_forward(x, w_bad, &b, y);
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("linear_forward: w has shape [4, 5], expected [Nout, 3] (x is [2, 3])"),
                    std::string::npos)
              << e.what();
          throw;
        }
      },
      Error);
  EXPECT_THROW(
      {
        try {
          linear_forward(x, w, &b, y_bad);
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("linear_forward: y has shape [4, 2], expected [2, 4]"), std::string::npos)
              << e.what();
          throw;
        }
      },
      Error);
  EXPECT_THROW(linear_forward(x, w, &b_bad, y), Error);
  EXPECT_THROW(linear_forward(x, w_f16, &b, y), Error);
  EXPECT_THROW(linear_forward(integers, w, &b, y), Error);
  EXPECT_THROW(linear_forward(empty, w, &b, y), Error);
  Tensor dx = Tensor::zeros({2, 3}, DType::f32), dw = Tensor::zeros({4, 3}, DType::f32);
  Tensor dy_bad = Tensor::zeros({3, 4}, DType::f32);
  EXPECT_THROW(linear_backward_input(y, w_bad, dx), Error);
  EXPECT_THROW(linear_backward_input(y, w, y_bad), Error);
  EXPECT_THROW(linear_backward_weight(x, dy_bad, dw, &b), Error);
  EXPECT_THROW(linear_backward_weight(x, y, dw, &b_bad), Error);
  EXPECT_THROW(linear_backward_weight(x, y, w_bad, nullptr), Error);
  if (cuda_available()) {
    Tensor w_gpu = w.to(Device::cuda(0));
    EXPECT_THROW(linear_forward(x, w_gpu, &b, y), Error);
  }
}

}  // namespace
}  // namespace sg
