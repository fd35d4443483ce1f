// CUDA streams and devices as the engine uses them: read-backs see the work of the non-blocking
// streams that Stream::create makes (the legacy default stream does not wait for them), and every
// op, allocation, stream and event goes to the device of its tensors and leaves the caller's
// current device as it was. On the emulated device, which runs queued work only when something
// waits for it and has two devices, a missing wait or a launch on the wrong device shows as wrong
// values; on one GPU the two-device test skips.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "core/allocator.h"
#include "core/cuda/runtime.h"
#include "core/tensor.h"
#include "kernels/activation.h"
#include "kernels/batch_norm.h"
#include "kernels/conv2d.h"
#include "kernels/linear.h"
#include "kernels/loss.h"
#include "kernels/optimizer.h"
#include "kernels/tensor_ops.h"
#include "tests/support/testing.h"

namespace sg {
namespace {

using testing::all_close;
using testing::Rng;

// Each value is written by a kernel queued on a created (non-blocking) stream and read back at
// once, the caller synchronising nothing: every read-back must come after the kernel.
TEST(CudaReadBack, SeesTheWorkOfANonBlockingStream) {
  SG_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  const Stream stream = Stream::create(gpu);
  constexpr int64_t n = int64_t(1) << 16;
  Tensor t = Tensor::zeros({n}, DType::f32, gpu);  // zeroed, and the zeroing is done
  fill_(t, 3.5f, stream);
  EXPECT_EQ(t.to_floats(), std::vector<float>(n, 3.5f)) << "to_floats() (default stream)";
  fill_(t, -1.25f, stream);
  EXPECT_EQ(t.to_floats(stream), std::vector<float>(n, -1.25f)) << "to_floats(stream)";
  fill_(t, 7.0f, stream);
  EXPECT_EQ(t.to(Device::cpu()).to_floats(), std::vector<float>(n, 7.0f)) << "to(cpu) (default stream)";
  fill_(t, 0.5f, stream);
  Tensor host = Tensor::empty({n}, DType::f32);
  host.copy_from(t);
  EXPECT_EQ(host.to_floats(), std::vector<float>(n, 0.5f)) << "copy_from (default stream)";
  // A result the engine reads back itself: the non-finite flag of the training step's guards.
  Tensor grad = Tensor::zeros({n}, DType::f32, gpu);
  fill_(grad, std::numeric_limits<float>::infinity(), stream);
  Tensor found_inf = Tensor::zeros({1}, DType::f32, gpu, stream);
  const std::vector<Tensor*> grads{&grad};
  non_finite_check_and_unscale(grads, found_inf, 1.0f, stream);
  EXPECT_EQ(found_inf.to_floats(stream), std::vector<float>{1.0f}) << "found_inf";
}

// Puts device 0 back as the current device when the test ends, however it ends.
struct CurrentDeviceZeroAfter {
  ~CurrentDeviceZeroAfter() {
    try {
      cuda::set_device(0);
    } catch (const Error&) {  // nothing more to do for the later tests
    }
  }
};

// Tensors on one device while the caller has the other current: allocation, upload, stream and
// event creation, freeing, and ops of every dispatch file (elementwise, reduction with scratch,
// convolution, cuBLAS, loss, optimizer with a read-back) give the CPU's results and leave the
// current device as the caller set it, on the default stream and on a created one.
TEST(CudaDevices, OpsRunOnTheDeviceOfTheirTensorsAndLeaveTheCurrentOne) {
  SG_REQUIRE_CUDA();
  if (cuda_device_count() < 2) GTEST_SKIP() << "needs two CUDA devices, found " << cuda_device_count();
  const CurrentDeviceZeroAfter restore;
  Rng rng;
  SG_TRACE_SEED(rng);
  const Tensor x = testing::random_tensor(rng, {2, 6, 6, 16}, DType::f32);
  const Tensor x2 = testing::random_tensor(rng, {2, 6, 6, 16}, DType::f32);
  const Tensor w_conv = testing::random_tensor(rng, {8, 3, 3, 16}, DType::f32);
  const Tensor features = testing::random_tensor(rng, {8, 16}, DType::f32);
  const Tensor w_linear = testing::random_tensor(rng, {5, 16}, DType::f32);
  const Tensor b_linear = testing::random_tensor(rng, {5}, DType::f32);
  const Tensor labels = Tensor::from_floats({0, 1, 2, 3, 4, 0, 1, 2}, {8}, DType::i32);
  const Tensor gamma = testing::random_tensor(rng, {16}, DType::f32, 0.5f, 1.5f);
  const Tensor beta = testing::random_tensor(rng, {16}, DType::f32);
  const Conv2dParams cp = make_conv2d_params(3, 3, 1, Padding::symmetric, 6, 6);
  const Conv2dShape cs = conv2d_shape("test", cp, x.shape(), w_conv.shape());
  const Shape conv_out{cs.n, cs.out_h, cs.out_w, cs.c_out};

  // Every op once on `device`; results on the CPU.
  struct Results {
    Tensor relu, sum, bn, conv, linear, loss;
    float norm = 0;
  };
  const auto run = [&](Device device, const Stream& stream) {
    const auto on = [&](const Tensor& t) { return t.to(device); };
    const auto back = [&](const Tensor& t) { return t.device().is_cpu() ? t : t.to(Device::cpu(), stream); };
    Results r;
    const Tensor xd = on(x);
    Tensor y = Tensor::empty(x.shape(), DType::f32, device);
    activation_forward(Activation::relu, xd, y, stream);
    r.relu = back(y);
    Tensor s = Tensor::empty(x.shape(), DType::f32, device);
    add(xd, on(x2), s, stream);
    r.sum = back(s);
    Tensor bn = Tensor::empty(x.shape(), DType::f32, device);
    Tensor rm = Tensor::zeros({16}, DType::f32, device, stream), rv = on(gamma);
    Tensor sm = Tensor::empty({16}, DType::f32, device), si = Tensor::empty({16}, DType::f32, device);
    batch_norm_forward_train(BatchNormParams{}, xd, on(gamma), on(beta), rm, rv, bn, sm, si, stream);
    r.bn = back(bn);
    Tensor conv = Tensor::empty(conv_out, DType::f32, device);
    conv2d_forward(cp, xd, on(w_conv), nullptr, conv, stream);
    r.conv = back(conv);
    Tensor logits = Tensor::empty({8, 5}, DType::f32, device);
    const Tensor bias = on(b_linear);
    linear_forward(on(features), on(w_linear), &bias, logits, stream);
    r.linear = back(logits);
    Tensor loss = Tensor::empty({1}, DType::f32, device);
    cross_entropy_forward({}, logits, on(labels), loss, stream);
    r.loss = back(loss);
    Tensor g = on(x2);
    const std::vector<Tensor*> grads{&g};
    r.norm = clip_grad_norm(grads, 1e9f, stream);
    return r;
  };
  Stream cpu_stream;
  const Results expected = run(Device::cpu(), cpu_stream);

  for (const auto& [current, target] : {std::pair{0, 1}, std::pair{1, 0}}) {
    SCOPED_TRACE(::testing::Message() << "cuda:" << current << " current, tensors on cuda:" << target);
    cuda::set_device(current);
    const Device gpu = Device::cuda(target);
    { const Tensor here = Tensor::empty({1024}, DType::f32, Device::cuda(current)); }
    {
      const Tensor there = Tensor::zeros({1 << 18}, DType::f32, gpu);
      EXPECT_EQ(cuda::current_device(), current) << "allocation and zeroing";
    }
    allocator_for(gpu).release_cached();  // cudaFree on the other device
    EXPECT_EQ(cuda::current_device(), current) << "free";
    const Stream created = Stream::create(gpu);
    Event event(gpu);
    EXPECT_EQ(cuda::current_device(), current) << "stream and event creation";
    const Stream legacy;
    for (const Stream* stream : {&legacy, &created}) {
      SCOPED_TRACE(stream == &legacy ? "default stream" : "created stream");
      const Results r = run(gpu, *stream);
      EXPECT_EQ(cuda::current_device(), current) << "after the ops";
      const testing::Tolerance tol{1e-4, 1e-4};  // GPU FMA contraction and summation order
      EXPECT_EQ(r.relu.to_floats(), expected.relu.to_floats()) << "activation_forward";
      EXPECT_EQ(r.sum.to_floats(), expected.sum.to_floats()) << "add";
      EXPECT_TRUE(all_close(r.bn, expected.bn, tol)) << "batch_norm_forward_train";
      EXPECT_TRUE(all_close(r.conv, expected.conv, tol)) << "conv2d_forward";
      EXPECT_TRUE(all_close(r.linear, expected.linear, tol)) << "linear_forward";
      EXPECT_TRUE(all_close(r.loss, expected.loss, tol)) << "cross_entropy_forward";
      EXPECT_NEAR(r.norm, expected.norm, 1e-4 * expected.norm) << "clip_grad_norm";
      event.record(*stream);
      event.synchronize();
      stream->synchronize(gpu);
      EXPECT_EQ(cuda::current_device(), current) << "event and stream synchronisation";
    }
  }
}

}  // namespace
}  // namespace sg
