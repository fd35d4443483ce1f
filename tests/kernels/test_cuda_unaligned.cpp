// The scalar (non-vectorised) branches of the CUDA elementwise kernels. Tensors from the
// allocator are always 256-byte aligned, so the tensor-level CUDA tests only ever take the
// 16-byte vector branch plus its tail; here the launchers get pointers one element past an
// aligned start, which forces the unaligned path, and must match the CPU on the same elements.
#include <gtest/gtest.h>

#include <cstring>

#include "kernels/activation.h"
#include "kernels/cast.h"
#include "kernels/dropout.h"
#include "kernels/dropout_math.h"
#include "kernels/tensor_ops.h"
#include "tests/support/testing.h"
#if SLIDEGRADE_WITH_CUDA
#include "core/cuda/runtime.h"
#include "kernels/cuda/activation.h"
#include "kernels/cuda/cast.h"
#include "kernels/cuda/dropout.h"
#include "kernels/cuda/tensor_ops.h"
#endif

namespace sg {
namespace {

using testing::Rng;
using testing::same_bits;

#if SLIDEGRADE_WITH_CUDA
const DType kFloatTypes[] = {DType::f32, DType::f16, DType::bf16};

// Elements 1 .. n of a CPU tensor of n + 1 elements, as a fresh (aligned) CPU tensor.
Tensor tail_of(const Tensor& full) {
  const size_t size = dtype_size(full.dtype());
  Tensor t = Tensor::empty({full.numel() - 1}, full.dtype());
  std::memcpy(t.data(), static_cast<const char*>(full.data()) + size, t.nbytes());
  return t;
}

// One element past the start of a tensor's data: misaligned for every 16-byte access.
void* shifted(const Tensor& t) { return static_cast<char*>(t.data()) + dtype_size(t.dtype()); }
#endif

TEST(CudaUnaligned, ElementwiseKernelsMatchCpu) {
  SG_REQUIRE_CUDA();
#if SLIDEGRADE_WITH_CUDA
  Rng rng;
  SG_TRACE_SEED(rng);
  const Device gpu = Device::cuda(0);
  for (DType dtype : kFloatTypes)
    for (int64_t n : {1, 7, 33, 4099}) {
      SCOPED_TRACE(::testing::Message() << dtype_name(dtype) << " n=" << n);
      const Tensor x = testing::random_tensor(rng, {n + 1}, dtype, -4, 4);
      const Tensor b = testing::random_tensor(rng, {n + 1}, dtype, -4, 4);
      const Tensor xg = x.to(gpu), bg = b.to(gpu);
      const Tensor x_tail = tail_of(x), b_tail = tail_of(b);
      const testing::Tolerance tol =
          dtype == DType::f32 ? testing::Tolerance{1e-5, 1e-5} : testing::tolerance_for(dtype);

      Tensor y = Tensor::empty({n + 1}, dtype, gpu);
      testing::poison(y);
      cuda::activation_forward(math::Activation::swish, dtype, shifted(xg), shifted(y), n, nullptr);
      Tensor expected = Tensor::empty({n}, dtype);
      activation_forward(math::Activation::swish, x_tail, expected);
      EXPECT_TRUE(all_close(tail_of(y.to(Device::cpu())), expected, tol)) << "activation_forward";

      cuda::activation_backward(math::Activation::swish, dtype, shifted(xg), shifted(bg), shifted(y), n, nullptr);
      activation_backward(math::Activation::swish, x_tail, b_tail, expected);
      EXPECT_TRUE(all_close(tail_of(y.to(Device::cpu())), expected, tol)) << "activation_backward";

      cuda::add(dtype, shifted(xg), shifted(bg), shifted(y), n, nullptr);
      add(x_tail, b_tail, expected);
      EXPECT_TRUE(all_close(tail_of(y.to(Device::cpu())), expected, tol)) << "add";

      // The dropout mask is indexed from the pointer the launcher gets: bit-identical to the
      // CPU on the shifted elements.
      const DropoutParams params{0.3, 1234, 5};
      const float p = float(params.p), scale = math::dropout_scale(params.p);
      cuda::dropout(dtype, shifted(xg), shifted(y), n, p, scale, params.seed, params.offset, nullptr);
      dropout_forward(params, x_tail, expected);
      EXPECT_TRUE(same_bits(tail_of(y.to(Device::cpu())), expected)) << "dropout";

      for (DType to : kFloatTypes) {
        if (to == dtype) continue;
        Tensor out = Tensor::empty({n + 1}, to, gpu);
        testing::poison(out);
        cuda::cast(dtype, to, shifted(xg), shifted(out), n, 1.0f, nullptr);
        Tensor cast_expected = Tensor::empty({n}, to);
        cast(x_tail, cast_expected);
        EXPECT_TRUE(same_bits(tail_of(out.to(Device::cpu())), cast_expected)) << "cast to " << dtype_name(to);
      }
    }
#endif
}

}  // namespace
}  // namespace sg
