// Fully connected layer: finite differences on the double reference, fast CPU vs reference,
// CUDA vs reference, PyTorch golden values (F.linear and its gradients), and bad arguments.
#include <gtest/gtest.h>

#include "kernels/cpu/linear_ref.h"
#include "kernels/linear.h"
#include "tests/support/testing.h"

namespace sg {
namespace {

using testing::all_close;
using testing::Rng;

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

// Sums of K products of values in [-1, 1): f32 summation order differs between BLAS and the
// reference; f16/bf16 outputs may then round to the neighbouring value.
testing::Tolerance gemm_tolerance(DType dtype, int64_t reduction) {
  const testing::Tolerance t = testing::tolerance_for(dtype);
  return {t.abs + (dtype == DType::f32 ? 1e-6 * double(reduction) : 0.0), t.rel};
}

TEST(Linear, BackwardMatchesFiniteDifferences) {
  Rng rng;
  SG_TRACE_SEED(rng);
  const int64_t M = 3, K = 5, N = 4;
  const std::vector<double> x = testing::random_doubles(rng, M * K), w = testing::random_doubles(rng, N * K),
                            b = testing::random_doubles(rng, N), g = testing::random_doubles(rng, M * N);
  // loss = sum(y * g), so dloss/dy = g.
  auto loss = [&](const std::vector<double>& xx, const std::vector<double>& ww, const std::vector<double>& bb) {
    std::vector<double> y(size_t(M * N));
    cpu::ref::linear_forward(xx.data(), ww.data(), bb.data(), y.data(), M, K, N);
    double s = 0;
    for (size_t i = 0; i < y.size(); ++i) s += y[i] * g[i];
    return s;
  };
  std::vector<double> dx(size_t(M * K)), dw(size_t(N * K)), db(static_cast<size_t>(N));
  cpu::ref::linear_backward_input(g.data(), w.data(), dx.data(), M, K, N);
  cpu::ref::linear_backward_weight(x.data(), g.data(), dw.data(), db.data(), M, K, N);
  EXPECT_TRUE(testing::gradient_matches([&](const std::vector<double>& v) { return loss(v, w, b); }, x, dx));
  EXPECT_TRUE(testing::gradient_matches([&](const std::vector<double>& v) { return loss(x, v, b); }, w, dw));
  EXPECT_TRUE(testing::gradient_matches([&](const std::vector<double>& v) { return loss(x, w, v); }, b, db));
}

void check_against_reference(Rng& rng, Device device, DType dtype, int64_t M, int64_t K, int64_t N) {
  SCOPED_TRACE(::testing::Message() << dtype_name(dtype) << " M=" << M << " K=" << K << " N=" << N << " on "
                                    << device.str());
  Tensor x = testing::random_tensor(rng, {M, K}, dtype), w = testing::random_tensor(rng, {N, K}, dtype);
  Tensor b = testing::random_tensor(rng, {N}, dtype), dy = testing::random_tensor(rng, {M, N}, dtype);
  const Reference r = reference(x, w, b, dy);
  Tensor xd = x.to(device), wd = w.to(device), bd = b.to(device), dyd = dy.to(device);
  Tensor y = Tensor::empty({M, N}, dtype, device), y_nobias = Tensor::empty({M, N}, dtype, device);
  Tensor dx = Tensor::empty({M, K}, dtype, device), dw = Tensor::empty({N, K}, dtype, device);
  Tensor db = Tensor::empty({N}, dtype, device), dw_only = Tensor::empty({N, K}, dtype, device);
  for (Tensor* t : {&y, &y_nobias, &dx, &dw, &db, &dw_only}) testing::poison(*t);
  linear_forward(xd, wd, &bd, y);
  linear_forward(xd, wd, nullptr, y_nobias);
  linear_backward_input(dyd, wd, dx);
  linear_backward_weight(xd, dyd, dw, &db);
  linear_backward_weight(xd, dyd, dw_only, nullptr);
  EXPECT_TRUE(all_close(y, r.y, gemm_tolerance(dtype, K)));
  EXPECT_TRUE(all_close(dx, r.dx, gemm_tolerance(dtype, N)));
  EXPECT_TRUE(all_close(dw, r.dw, gemm_tolerance(dtype, M)));
  EXPECT_TRUE(all_close(dw_only, r.dw, gemm_tolerance(dtype, M)));
  EXPECT_TRUE(all_close(db, r.db, gemm_tolerance(dtype, M)));
  // Without bias: the reference with a zero bias.
  Tensor zero_bias = Tensor::zeros({N}, dtype);
  EXPECT_TRUE(all_close(y_nobias, reference(x, w, zero_bias, dy).y, gemm_tolerance(dtype, K)));
}

TEST(Linear, FastCpuMatchesReference) {
  Rng rng;
  SG_TRACE_SEED(rng);
  for (DType dtype : kFloatTypes)
    for (int64_t M : {1, 3, 7, 17, 33})
      for (auto [K, N] : {std::pair<int64_t, int64_t>{5, 3}, {13, 29}, {37, 6}, {100, 11}})
        check_against_reference(rng, Device::cpu(), dtype, M, K, N);
}

TEST(Linear, CudaMatchesReference) {
  SG_REQUIRE_CUDA();
  Rng rng;
  SG_TRACE_SEED(rng);
  for (DType dtype : kFloatTypes) {
    for (int64_t M : {1, 3, 7, 17, 33})
      for (auto [K, N] : {std::pair<int64_t, int64_t>{5, 3}, {13, 29}, {37, 6}, {100, 11}})
        check_against_reference(rng, Device::cuda(0), dtype, M, K, N);
    check_against_reference(rng, Device::cuda(0), dtype, 70, 1280, 5);      // the binned head
    check_against_reference(rng, Device::cuda(0), dtype, 300, 129, 1000);  // many rows for the bias gradient
  }
}

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
