// The per-ISA variants of the fast CPU loops (kernels/cpu/isa.h): every variant this CPU can
// run (baseline SSE4.2, AVX2 + FMA, AVX-512) against the double-free references, for the kernels
// that have variants: batch norm (+ activation) forward and backward, bias + activation, and
// depthwise convolution (forward, with the fused bias + activation, and both backwards).
// The other kernel tests run whichever variant the CPU picks; these run all of them.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/activation.h"
#include "kernels/cpu/batch_norm.h"
#include "kernels/cpu/batch_norm_ref.h"
#include "kernels/cpu/bias_activation.h"
#include "kernels/cpu/bias_activation_ref.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/conv2d_ref.h"
#include "kernels/cpu/isa.h"
#include "kernels/conv2d.h"
#include "tests/support/testing.h"

namespace sg {
namespace {

using math::Activation;
using testing::all_close;
using testing::Rng;
using testing::Tolerance;

const DType kFloatTypes[] = {DType::f32, DType::f16, DType::bf16};

// Sets the ISA for the scope and puts the previous one back.
class IsaScope {
 public:
  explicit IsaScope(cpu::Isa isa) : previous_(cpu::set_isa_for_testing(isa)) {}
  ~IsaScope() { cpu::set_isa_for_testing(previous_); }
  IsaScope(const IsaScope&) = delete;
  IsaScope& operator=(const IsaScope&) = delete;

 private:
  cpu::Isa previous_;
};

std::vector<cpu::Isa> supported_isas() {
  std::vector<cpu::Isa> out;
  for (cpu::Isa isa : {cpu::Isa::baseline, cpu::Isa::avx2, cpu::Isa::avx512})
    if (cpu::isa_supported(isa)) out.push_back(isa);
  return out;
}

Tolerance fast_tolerance(DType dtype) {
  return dtype == DType::f32 ? Tolerance{1e-4, 1e-4} : testing::tolerance_for(dtype);
}

TEST(CpuIsa, BaselineIsAlwaysSupported) {
  EXPECT_TRUE(cpu::isa_supported(cpu::Isa::baseline));
  EXPECT_TRUE(cpu::isa_supported(cpu::isa())) << cpu::isa_name(cpu::isa());
}

TEST(CpuIsa, BatchNormVariantsMatchReference) {
  Rng rng;
  SG_TRACE_SEED(rng);
  for (cpu::Isa isa : supported_isas()) {
    IsaScope scope(isa);
    for (DType dtype : kFloatTypes)
      for (Activation act : {Activation::identity, Activation::relu6, Activation::swish, Activation::mish}) {
        // C not a multiple of 16 and M not of the chunk size: the vector loops' remainders run.
        const int64_t M = rng.integer(40, 300), C = rng.integer(1, 70);
        SCOPED_TRACE(::testing::Message() << cpu::isa_name(isa) << " " << dtype_name(dtype) << " "
                                          << activation_name(act) << " M=" << M << " C=" << C);
        const Tensor x = testing::random_tensor(rng, {M, C}, dtype, -2.0f, 3.0f);
        const Tensor dy = testing::random_tensor(rng, {M, C}, dtype);
        const Tensor gamma = testing::random_tensor(rng, {C}, DType::f32, 0.5f, 1.5f);
        const Tensor beta = testing::random_tensor(rng, {C}, DType::f32, -0.5f, 0.5f);
        const std::vector<float> rm0(size_t(C), 0.1f), rv0(size_t(C), 1.2f);
        Tensor y = testing::empty_on({M, C}, dtype), y_ref = testing::empty_on({M, C}, dtype);
        Tensor dx = testing::empty_on({M, C}, dtype), dx_ref = testing::empty_on({M, C}, dtype);
        Tensor ye = testing::empty_on({M, C}, dtype), ye_ref = testing::empty_on({M, C}, dtype);
        std::vector<float> rm = rm0, rv = rv0, rm_ref = rm0, rv_ref = rv0;
        std::vector<float> sm(static_cast<size_t>(C)), si(static_cast<size_t>(C)), sm_ref(static_cast<size_t>(C)), si_ref(static_cast<size_t>(C));
        std::vector<float> dg(static_cast<size_t>(C)), db(static_cast<size_t>(C)), dg_ref(static_cast<size_t>(C)), db_ref(static_cast<size_t>(C));
        const float* g = gamma.data_as<float>();
        const float* b = beta.data_as<float>();
        const double eps = 1e-3, momentum = 0.1;
        cpu::batch_norm_forward_train(dtype, x.data(), g, b, rm.data(), rv.data(), y.data(), sm.data(), si.data(), M,
                                      C, eps, momentum, act);
        cpu::batch_norm_backward(dtype, x.data(), dy.data(), g, b, sm.data(), si.data(), true, eps, dx.data(),
                                 dg.data(), db.data(), M, C, act);
        cpu::batch_norm_forward_eval(dtype, x.data(), g, b, rm0.data(), rv0.data(), ye.data(), M, C, eps, act);
        dispatch_floating(dtype, "test", [&](auto tag) {
          using T = typename decltype(tag)::type;
          cpu::ref::batch_norm_forward_train(x.data_as<T>(), g, b, rm_ref.data(), rv_ref.data(), y_ref.data_as<T>(),
                                             sm_ref.data(), si_ref.data(), M, C, eps, momentum, act);
          cpu::ref::batch_norm_backward(x.data_as<T>(), dy.data_as<T>(), g, b, sm_ref.data(), si_ref.data(), true,
                                        dx_ref.data_as<T>(), dg_ref.data(), db_ref.data(), M, C, act);
          cpu::ref::batch_norm_forward_eval(x.data_as<T>(), g, b, rm0.data(), rv0.data(), ye_ref.data_as<T>(), M, C,
                                            eps, act);
        });
        const Tolerance tol = fast_tolerance(dtype), sums{1e-5 * double(M), 1e-4};
        auto vec = [](const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); };
        EXPECT_TRUE(all_close(y, y_ref, tol)) << "y";
        EXPECT_TRUE(all_close(ye, ye_ref, tol)) << "eval y";
        EXPECT_TRUE(all_close(dx, dx_ref, tol)) << "dx";
        EXPECT_TRUE(all_close(vec(sm), vec(sm_ref), {1e-5, 1e-4})) << "saved_mean";
        EXPECT_TRUE(all_close(vec(si), vec(si_ref), {1e-5, 1e-4})) << "saved_invstd";
        EXPECT_TRUE(all_close(vec(dg), vec(dg_ref), sums)) << "dgamma";
        EXPECT_TRUE(all_close(vec(db), vec(db_ref), sums)) << "dbeta";
      }
  }
}

TEST(CpuIsa, BiasActivationVariantsMatchReference) {
  Rng rng;
  SG_TRACE_SEED(rng);
  for (cpu::Isa isa : supported_isas()) {
    IsaScope scope(isa);
    for (DType dtype : kFloatTypes)
      for (Activation act : {Activation::relu, Activation::sigmoid, Activation::swish, Activation::mish}) {
        const int64_t M = rng.integer(1, 200), C = rng.integer(1, 70);
        SCOPED_TRACE(::testing::Message() << cpu::isa_name(isa) << " " << dtype_name(dtype) << " "
                                          << activation_name(act) << " M=" << M << " C=" << C);
        const Tensor x = testing::random_tensor(rng, {M, C}, dtype, -4.0f, 4.0f);
        const Tensor dy = testing::random_tensor(rng, {M, C}, dtype);
        const Tensor bias = testing::random_tensor(rng, {C}, DType::f32);
        Tensor y = testing::empty_on({M, C}, dtype), y_ref = testing::empty_on({M, C}, dtype);
        Tensor dx = testing::empty_on({M, C}, dtype), dx_ref = testing::empty_on({M, C}, dtype);
        std::vector<float> db(static_cast<size_t>(C)), db_ref(static_cast<size_t>(C));
        const float* b = bias.data_as<float>();
        cpu::bias_activation_forward(act, dtype, x.data(), b, y.data(), M, C);
        cpu::bias_activation_backward(act, dtype, x.data(), b, dy.data(), dx.data(), db.data(), M, C);
        dispatch_floating(dtype, "test", [&](auto tag) {
          using T = typename decltype(tag)::type;
          cpu::ref::bias_activation_forward(act, x.data_as<T>(), b, y_ref.data_as<T>(), M, C);
          cpu::ref::bias_activation_backward(act, x.data_as<T>(), b, dy.data_as<T>(), dx_ref.data_as<T>(),
                                             db_ref.data(), M, C);
        });
        EXPECT_TRUE(all_close(y, y_ref, fast_tolerance(dtype))) << "y";
        EXPECT_TRUE(all_close(dx, dx_ref, fast_tolerance(dtype))) << "dx";
        EXPECT_TRUE(all_close(std::vector<double>(db.begin(), db.end()), std::vector<double>(db_ref.begin(), db_ref.end()),
                              {1e-5 * double(M), 1e-4}))
            << "dbias";
      }
  }
}

// Depthwise: the plain convolution (forward, backward input, backward weight) and the fused
// act(conv + bias) of conv2d_bias_activation_forward, against the reference convolution.
TEST(CpuIsa, DepthwiseVariantsMatchReference) {
  Rng rng;
  SG_TRACE_SEED(rng);
  for (cpu::Isa isa : supported_isas()) {
    IsaScope scope(isa);
    for (DType dtype : kFloatTypes)
      for (int trial = 0; trial < 6; ++trial) {
        const int64_t k = trial % 2 ? 5 : 3, stride = trial % 3 == 2 ? 2 : 1, n = rng.integer(1, 2),
                      h = rng.integer(k, 11), w = rng.integer(k, 11), c = rng.integer(1, 40);
        const Padding padding = trial % 2 ? Padding::tf_same : Padding::symmetric;
        const Activation act = trial % 3 == 0 ? Activation::swish : trial % 3 == 1 ? Activation::relu6
                                                                                   : Activation::identity;
        const Conv2dParams p = make_conv2d_params(k, k, stride, padding, h, w, c);
        const Conv2dShape s = conv2d_shape("test", p, Shape{n, h, w, c}, Shape{c, k, k, 1});
        const Shape xs{n, h, w, c}, ws{c, k, k, 1}, ys{n, s.out_h, s.out_w, c};
        SCOPED_TRACE(::testing::Message() << cpu::isa_name(isa) << " " << dtype_name(dtype) << " " << to_string(p)
                                          << " x " << xs.str() << " " << activation_name(act));
        const Tensor x = testing::random_tensor(rng, xs, dtype), wt = testing::random_tensor(rng, ws, dtype);
        const Tensor dy = testing::random_tensor(rng, ys, dtype);
        const Tensor bias32 = testing::random_tensor(rng, {c}, DType::f32);
        Tensor y = testing::empty_on(ys, dtype), y_ref = testing::empty_on(ys, dtype);
        Tensor yf = testing::empty_on(ys, dtype), yf_ref = testing::empty_on(ys, dtype);
        Tensor dx = testing::empty_on(xs, dtype), dx_ref = testing::empty_on(xs, dtype);
        Tensor dw = testing::empty_on(ws, dtype), dw_ref = testing::empty_on(ws, dtype);
        Tensor db = testing::empty_on({c}, dtype), db_ref = testing::empty_on({c}, dtype);
        cpu::conv2d_forward(p, s, dtype, x.data(), wt.data(), nullptr, y.data());
        cpu::conv2d_bias_activation_forward(p, s, dtype, x.data(), wt.data(), bias32.data_as<float>(), act,
                                            yf.data());
        cpu::conv2d_backward_input(p, s, dtype, dy.data(), wt.data(), dx.data());
        cpu::conv2d_backward_weight(p, s, dtype, x.data(), dy.data(), dw.data(), db.data());
        std::vector<double> yf_expected(size_t(yf.numel()));
        dispatch_floating(dtype, "test", [&](auto tag) {
          using T = typename decltype(tag)::type;
          cpu::ref::conv2d_forward(p, s, x.data_as<T>(), wt.data_as<T>(), static_cast<const T*>(nullptr),
                                   y_ref.data_as<T>());
          cpu::ref::conv2d_backward_input(p, s, dy.data_as<T>(), wt.data_as<T>(), dx_ref.data_as<T>());
          cpu::ref::conv2d_backward_weight(p, s, x.data_as<T>(), dy.data_as<T>(), dw_ref.data_as<T>(),
                                           db_ref.data_as<T>());
        });
        // act(conv + bias) from the reference convolution, in double.
        const std::vector<double> conv = testing::to_doubles(y_ref);
        const float* b = bias32.data_as<float>();
        for (size_t i = 0; i < conv.size(); ++i)
          yf_expected[i] = math::activation(act, conv[i] + double(b[i % size_t(c)]));
        const Tolerance tol = fast_tolerance(dtype);
        EXPECT_TRUE(all_close(y, y_ref, tol)) << "y";
        EXPECT_TRUE(all_close(yf, yf_expected, dtype == DType::f32 ? tol : Tolerance{2 * tol.abs, 2 * tol.rel}))
            << "fused y";
        EXPECT_TRUE(all_close(dx, dx_ref, tol)) << "dx";
        EXPECT_TRUE(all_close(dw, dw_ref, tol)) << "dw";
        EXPECT_TRUE(all_close(db, db_ref, tol)) << "dbias";
      }
  }
}

TEST(CpuIsa, SetIsaRefusesWhatTheCpuLacks) {
  for (cpu::Isa isa : {cpu::Isa::avx2, cpu::Isa::avx512})
    if (!cpu::isa_supported(isa)) {
      EXPECT_THROW(cpu::set_isa_for_testing(isa), Error) << cpu::isa_name(isa);
    }
  // Setting a supported one returns the previous choice.
  const cpu::Isa before = cpu::isa();
  EXPECT_EQ(cpu::set_isa_for_testing(cpu::Isa::baseline), before);
  EXPECT_EQ(cpu::isa(), cpu::Isa::baseline);
  cpu::set_isa_for_testing(before);
}

}  // namespace
}  // namespace sg
