// The per-ISA variants of the fast CPU loops (kernels/cpu/isa.h): every variant this CPU can
// run (baseline SSE4.2, AVX2 + FMA, AVX-512) against the references. Batch norm, bias +
// activation and convolution run their whole case tables on every variant
// (<Suite>.CpuIsaVariantsMatchReference: tests/support/op_harness.h every_cpu_isa); here, the
// depthwise convolution fused with bias + activation (inference, not in the Conv2d table) beside
// its plain passes, and the ISA switch itself.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/activation.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/conv2d_ref.h"
#include "kernels/cpu/isa.h"
#include "kernels/conv2d.h"
#include "tests/support/op_harness.h"

namespace sg {
namespace {

using math::Activation;
using testing::all_close;
using testing::Rng;
using testing::Tolerance;

const DType kFloatTypes[] = {DType::f32, DType::f16, DType::bf16};


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

// Depthwise: the plain convolution (forward, backward input, backward weight) and the fused
// act(conv + bias) of conv2d_bias_activation_forward, against the reference convolution.
TEST(CpuIsa, DepthwiseVariantsMatchReference) {
  Rng rng;
  SG_TRACE_SEED(rng);
  for (cpu::Isa isa : supported_isas()) {
    const testing::CpuIsaScope scope(isa);
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
