// Optimizers: a case table (tests/support/op_harness.h) of SGD, AdamW, gradient clipping and
// unscaling run on the fast CPU path and CUDA against the reference, PyTorch golden steps (SGD with momentum and
// Nesterov, AdamW, clip_grad_norm_), inf/NaN detection with unscaling, the loss-scale rule,
// and bad arguments.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <optional>

#include "kernels/cpu/optimizer_ref.h"
#include "kernels/optimizer.h"
#include "kernels/tensor_ops.h"
#include "tests/support/op_harness.h"

namespace sg {
namespace {

using testing::all_close;
using testing::OpCase;
using testing::OpInputs;
using testing::OpOutputs;
using testing::Rng;

const DType kFloatTypes[] = {DType::f32, DType::f16, DType::bf16};

// Reference SGD over three steps on host copies; the device runs the same steps through the API.
// Inputs: the f32 parameters, then one gradient per step (the case's dtype). Outputs: the
// parameters after each step, then the momentum buffer after each step (when there is one). The
// same update formula in f32: only FMA contraction (a GPU) can move the last bit.
constexpr int kSteps = 3;

std::string sgd_name(const SgdParams& s) {
  return "sgd lr " + testing::describe(s.lr) + " momentum " + testing::describe(s.momentum) + " dampening " +
         testing::describe(s.dampening) + " wd " + testing::describe(s.weight_decay) + (s.nesterov ? " nesterov" : "");
}

OpInputs parameters_and_gradients(Rng& rng, DType grad_dtype, int64_t n) {
  std::vector<Tensor> tensors{testing::random_tensor(rng, {n}, DType::f32)};
  for (int step = 1; step <= kSteps; ++step) tensors.push_back(testing::random_tensor(rng, {n}, grad_dtype));
  return OpInputs(std::move(tensors));
}

// A copy on the same device.
Tensor copy_of(const Tensor& t) {
  Tensor copy = Tensor::empty(t.shape(), t.dtype(), t.device());
  copy.copy_from(t);
  return copy;
}

Tensor f32_tensor(const std::vector<float>& values) { return Tensor::from_floats(values, {int64_t(values.size())}); }

OpCase sgd_case(const SgdParams& s, DType grad_dtype, int64_t n, bool cuda_only) {
  OpCase k;
  k.op = sgd_name(s);
  k.description = "grad " + testing::describe(grad_dtype, {n});
  k.cuda_only = cuda_only;
  const bool momentum = s.momentum != 0;
  for (int step = 1; step <= kSteps; ++step) k.outputs.push_back({"param after step " + std::to_string(step)});
  if (momentum)
    for (int step = 1; step <= kSteps; ++step) k.outputs.push_back({"momentum buffer after step " + std::to_string(step)});
  k.make_inputs = [=](Rng& rng) { return parameters_and_gradients(rng, grad_dtype, n); };
  k.reference = [=](const OpInputs& in) {
    std::vector<float> param = in.tensors[0].to_floats(), buffer(static_cast<size_t>(n), 0.0f);
    OpOutputs params, buffers;
    for (int step = 1; step <= kSteps; ++step) {
      testing::with_type(grad_dtype, [&](auto tag) {
        using G = typename decltype(tag)::type;
        cpu::ref::sgd_step(s, param.data(), in.tensors[size_t(step)].data_as<G>(), buffer.data(), step == 1, n);
      });
      params.push_back(f32_tensor(param));
      buffers.push_back(f32_tensor(buffer));
    }
    if (momentum) params.insert(params.end(), buffers.begin(), buffers.end());
    return params;
  };
  k.run = [=](const OpInputs& in, OpOutputs& o) {
    Tensor param = copy_of(in.tensors[0]);
    Tensor buffer = Tensor::empty({n}, DType::f32, param.device());
    testing::poison(buffer);  // the first step must not read it
    for (int step = 1; step <= kSteps; ++step) {
      sgd_step(s, param, in.tensors[size_t(step)], &buffer, step == 1);
      o[size_t(step - 1)].copy_from(param);
      if (momentum) o[size_t(kSteps + step - 1)].copy_from(buffer);
    }
  };
  k.bytes = double(kSteps * n * (4 * 4 + int64_t(dtype_size(grad_dtype))));
  return k;
}

// Outputs: the parameters, exp_avg and exp_avg_sq after each step.
OpCase adamw_case(DType grad_dtype, int64_t n, bool cuda_only) {
  const AdamWParams a{1e-2f, 0.9f, 0.999f, 1e-8f, 1e-2f};
  OpCase k;
  k.op = "adamw";
  k.description = "grad " + testing::describe(grad_dtype, {n});
  k.cuda_only = cuda_only;
  for (const char* what : {"param", "exp_avg", "exp_avg_sq"})
    for (int step = 1; step <= kSteps; ++step) k.outputs.push_back({std::string(what) + " after step " + std::to_string(step)});
  k.make_inputs = [=](Rng& rng) { return parameters_and_gradients(rng, grad_dtype, n); };
  k.reference = [=](const OpInputs& in) {
    std::vector<float> param = in.tensors[0].to_floats(), m(static_cast<size_t>(n), 0.0f), v(static_cast<size_t>(n), 0.0f);
    OpOutputs params, ms, vs;
    for (int step = 1; step <= kSteps; ++step) {
      testing::with_type(grad_dtype, [&](auto tag) {
        using G = typename decltype(tag)::type;
        cpu::ref::adamw_step(a, step, param.data(), in.tensors[size_t(step)].data_as<G>(), m.data(), v.data(), n);
      });
      params.push_back(f32_tensor(param));
      ms.push_back(f32_tensor(m));
      vs.push_back(f32_tensor(v));
    }
    params.insert(params.end(), ms.begin(), ms.end());
    params.insert(params.end(), vs.begin(), vs.end());
    return params;
  };
  k.run = [=](const OpInputs& in, OpOutputs& o) {
    const Device device = in.tensors[0].device();
    Tensor param = copy_of(in.tensors[0]);
    Tensor m = Tensor::zeros({n}, DType::f32, device), v = Tensor::zeros({n}, DType::f32, device);
    for (int step = 1; step <= kSteps; ++step) {
      adamw_step(a, step, param, in.tensors[size_t(step)], m, v);
      o[size_t(step - 1)].copy_from(param);
      o[size_t(kSteps + step - 1)].copy_from(m);
      o[size_t(2 * kSteps + step - 1)].copy_from(v);
    }
  };
  k.bytes = double(kSteps * n * (7 * 4 + int64_t(dtype_size(grad_dtype))));
  return k;
}

// For the in-place ops over a list of gradients: copies input i into output i + 1 (output 0 is
// the op's scalar result) and returns those outputs for the op to work on.
std::vector<Tensor*> gradients_in_outputs(const OpInputs& in, OpOutputs& o) {
  std::vector<Tensor*> grads;
  for (size_t i = 0; i < in.tensors.size(); ++i) {
    o[i + 1].copy_from(in.tensors[i]);
    grads.push_back(&o[i + 1]);
  }
  return grads;
}

// clip_grad_norm over a list of tensors of one dtype; `max_norm` picks whether it clips. Outputs:
// the total norm (f32 [1]: a sum of squares of every element, in another order on a GPU), then
// each tensor after clipping.
OpCase clip_case(DType dtype, std::vector<int64_t> sizes, float max_norm, bool cuda_only) {
  int64_t elements = 0;
  for (int64_t n : sizes) elements += n;
  OpCase k;
  k.op = "clip_grad_norm max_norm " + testing::describe(max_norm);
  k.description = std::string(dtype_name(dtype)) + " " + std::to_string(sizes.size()) + " tensors of " +
                  std::to_string(elements) + " elements";
  k.cuda_only = cuda_only;
  k.reads_values = true;  // the norm comes back to the host
  k.outputs.push_back({.name = "total norm", .summed_terms = double(elements)});
  for (size_t i = 0; i < sizes.size(); ++i) k.outputs.push_back({"tensor " + std::to_string(i)});
  k.make_inputs = [=](Rng& rng) {
    std::vector<Tensor> tensors;
    for (int64_t n : sizes) tensors.push_back(testing::random_tensor(rng, {n}, dtype));
    return OpInputs(std::move(tensors));
  };
  k.reference = [=](const OpInputs& in) {
    OpOutputs out{Tensor()};
    for (const Tensor& t : in.tensors) out.push_back(copy_of(t));
    double norm = 0;
    testing::with_type(dtype, [&](auto tag) {
      using G = typename decltype(tag)::type;
      std::vector<G*> ptrs;
      for (size_t i = 1; i < out.size(); ++i) ptrs.push_back(out[i].data_as<G>());
      norm = cpu::ref::clip_grad_norm(ptrs, sizes, double(max_norm));
    });
    out[0] = f32_tensor({float(norm)});
    return out;
  };
  k.run = [=](const OpInputs& in, OpOutputs& o) {
    const std::vector<Tensor*> grads = gradients_in_outputs(in, o);  // clipped in place
    o[0].copy_from(f32_tensor({clip_grad_norm(grads, max_norm)}));
  };
  k.bytes = double(3 * elements * int64_t(dtype_size(dtype)));
  return k;
}

// non_finite_check_and_unscale over three tensors, `special` (inf, -inf or NaN) planted at a random
// place of one of them, or none (NaN `special` false: all finite, where found_inf must keep the
// value it had, 0 or 1: the check never clears it). Outputs: found_inf, then each tensor unscaled.
// Unscaling multiplies by a power of two, in f32 then rounded to the storage type, as the reference
// does: bit for bit, infinities and NaN included.
OpCase unscale_case(DType dtype, std::vector<int64_t> sizes, std::optional<float> special, float found_before) {
  const float inv_scale = 1.0f / 1024.0f;
  OpCase k;
  k.op = "non_finite_check_and_unscale";
  k.description = std::string(dtype_name(dtype)) + (special ? " with " + testing::describe(*special) : " all finite") +
                  ", found_inf " + testing::describe(found_before) + " before";
  k.outputs.push_back({.name = "found_inf", .exact = true});
  for (size_t i = 0; i < sizes.size(); ++i) k.outputs.push_back({.name = "tensor " + std::to_string(i), .exact = true});
  k.make_inputs = [=](Rng& rng) {
    std::vector<Tensor> tensors;
    for (int64_t n : sizes) tensors.push_back(testing::random_tensor(rng, {n}, dtype, -2000, 2000));
    if (special) {  // in one tensor at a random place; the others stay finite
      Tensor& target = tensors[size_t(rng.integer(0, int64_t(sizes.size()) - 1))];
      std::vector<float> v = target.to_floats();
      v[size_t(rng.integer(0, int64_t(v.size()) - 1))] = *special;
      target = Tensor::from_floats(v, target.shape(), dtype);
    }
    return OpInputs(std::move(tensors));
  };
  k.reference = [=](const OpInputs& in) {
    OpOutputs out{f32_tensor({found_before})};
    bool found = false;
    for (const Tensor& t : in.tensors) {
      out.push_back(copy_of(t));
      testing::with_type(dtype, [&](auto tag) {
        using G = typename decltype(tag)::type;
        found |= cpu::ref::non_finite_check_and_unscale(out.back().data_as<G>(), t.numel(), inv_scale);
      });
    }
    if (found) out[0] = f32_tensor({1.0f});
    return out;
  };
  k.run = [=](const OpInputs& in, OpOutputs& o) {
    const std::vector<Tensor*> grads = gradients_in_outputs(in, o);  // unscaled in place
    fill_(o[0], found_before);  // in place: no host tensor, which would count on the CPU alone
    non_finite_check_and_unscale(grads, o[0], inv_scale);
  };
  return k;
}

std::vector<OpCase> optimizer_cases() {
  const SgdParams sgd_configs[] = {
      {0.1f, 0.0f, 0.0f, 0.0f, false},    // plain
      {0.1f, 0.0f, 0.0f, 1e-2f, false},   // weight decay only
      {0.05f, 0.9f, 0.0f, 1e-2f, false},  // momentum
      {0.05f, 0.9f, 0.0f, 1e-2f, true},   // Nesterov
      {0.05f, 0.9f, 0.1f, 0.0f, false},   // dampening
  };
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<OpCase> cases;
  for (DType dtype : kFloatTypes) {
    for (int64_t n : {1, 3, 7, 17, 33, 1000, 4099}) {
      for (const SgdParams& s : sgd_configs) cases.push_back(sgd_case(s, dtype, n, false));
      cases.push_back(adamw_case(dtype, n, false));
    }
    // Grids of many CUDA blocks.
    cases.push_back(sgd_case(sgd_configs[3], dtype, (1 << 20) + 5, true));
    cases.push_back(adamw_case(dtype, (1 << 20) + 5, true));
    cases.push_back(clip_case(dtype, {1, 7, 33, 4099}, 1.0f, false));
    cases.push_back(clip_case(dtype, {1, 7, 33, 4099, 1 << 20}, 1.0f, true));
    cases.push_back(clip_case(dtype, {3, 17}, 1e4f, false));
    for (float special : {inf, -inf, std::numeric_limits<float>::quiet_NaN()})
      cases.push_back(unscale_case(dtype, {5, 4099, 33}, special, 0.0f));
    for (float before : {0.0f, 1.0f}) cases.push_back(unscale_case(dtype, {100}, std::nullopt, before));
  }
  return cases;
}
[[maybe_unused]] const bool kRegistered = testing::register_op_tests("Optimizer", "", optimizer_cases);

TEST(Optimizer, CudaClipIsDeterministic) {
  SG_REQUIRE_CUDA();
  Rng rng;
  Tensor g = testing::random_tensor(rng, {3 << 20}, DType::f32).to(Device::cuda(0));
  Tensor* ptr = &g;
  const float first = clip_grad_norm(std::span<Tensor* const>(&ptr, 1), 1e9f);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(clip_grad_norm(std::span<Tensor* const>(&ptr, 1), 1e9f), first);
}

// ---- PyTorch ----------------------------------------------------------------------------------

// Three steps of each optimizer from the same start; PyTorch runs in f32 too.
TEST(Optimizer, SgdMatchesPyTorchGolden) {
  const testing::GoldenFile golden("optimizer");
  const std::pair<const char*, SgdParams> configs[] = {{"sgd_momentum", {0.1f, 0.9f, 0.0f, 1e-2f, false}},
                                                       {"sgd_nesterov", {0.1f, 0.9f, 0.0f, 1e-2f, true}},
                                                       {"sgd_plain", {0.1f, 0.0f, 0.0f, 1e-2f, false}}};
  for (const auto& [name, s] : configs) {
    SCOPED_TRACE(name);
    Tensor param = golden.tensor("param_0"), buf = Tensor::empty(param.shape(), DType::f32);
    for (int step = 1; step <= 3; ++step) {
      sgd_step(s, param, golden.tensor("grad_" + std::to_string(step)), &buf, step == 1);
      EXPECT_TRUE(all_close(param, golden.doubles(std::string(name) + "/param_" + std::to_string(step)),
                            {1e-6, 1e-5}))
          << "step " << step;
    }
  }
}

TEST(Optimizer, AdamWMatchesPyTorchGolden) {
  const testing::GoldenFile golden("optimizer");
  const AdamWParams a{1e-2f, 0.9f, 0.999f, 1e-8f, 0.01f};
  Tensor param = golden.tensor("param_0");
  Tensor m = Tensor::zeros(param.shape(), DType::f32), v = Tensor::zeros(param.shape(), DType::f32);
  for (int step = 1; step <= 3; ++step) {
    adamw_step(a, step, param, golden.tensor("grad_" + std::to_string(step)), m, v);
    EXPECT_TRUE(all_close(param, golden.doubles("adamw/param_" + std::to_string(step)), {1e-6, 1e-5}))
        << "step " << step;
  }
}

TEST(Optimizer, ClipGradNormMatchesPyTorchGolden) {
  const testing::GoldenFile golden("optimizer");
  for (int max_norm : {1, 100}) {
    SCOPED_TRACE(max_norm);
    const std::string key = "clip/max_norm_" + std::to_string(max_norm);
    Tensor a = golden.tensor("clip/grad_a"), b = golden.tensor("clip/grad_b");
    Tensor* grads[] = {&a, &b};
    const float norm = clip_grad_norm(grads, float(max_norm));
    EXPECT_NEAR(norm, golden.scalar(key + "/total_norm"), 1e-5);
    EXPECT_TRUE(all_close(a, golden.doubles(key + "/grad_a"), {1e-6, 1e-5}));
    EXPECT_TRUE(all_close(b, golden.doubles(key + "/grad_b"), {1e-6, 1e-5}));
  }
}

// ---- loss scaling ----------------------------------------------------------------------------

TEST(Optimizer, LossScaleRule) {
  const LossScaleParams p{1024.0f, 2.0f, 0.5f, 3};
  LossScaleState s{p.init_scale, 0};
  EXPECT_TRUE(update_loss_scale(s, false, p));
  EXPECT_TRUE(update_loss_scale(s, false, p));
  EXPECT_EQ(s.scale, 1024.0f);
  EXPECT_EQ(s.growth_tracker, 2);
  EXPECT_FALSE(update_loss_scale(s, true, p));  // inf: halve, restart the count
  EXPECT_EQ(s.scale, 512.0f);
  EXPECT_EQ(s.growth_tracker, 0);
  for (int i = 0; i < 2; ++i) update_loss_scale(s, false, p);
  EXPECT_EQ(s.scale, 512.0f);
  update_loss_scale(s, false, p);  // the third good step in a row doubles
  EXPECT_EQ(s.scale, 1024.0f);
  EXPECT_EQ(s.growth_tracker, 0);
  LossScaleState huge{std::numeric_limits<float>::max(), 2};
  update_loss_scale(huge, false, p);  // growth that would overflow is skipped
  EXPECT_EQ(huge.scale, std::numeric_limits<float>::max());
  EXPECT_EQ(huge.growth_tracker, 0);
  EXPECT_THROW(update_loss_scale(s, false, {1024.0f, 2.0f, 0.5f, 0}), Error);
}

// ---- bad arguments ------------------------------------------------------------------------------

TEST(Optimizer, RejectsBadArguments) {
  Tensor p = Tensor::zeros({4, 3}, DType::f32), g = Tensor::zeros({4, 3}, DType::f32);
  Tensor g_bad = Tensor::zeros({3, 4}, DType::f32), g_int = Tensor::zeros({4, 3}, DType::i32);
  Tensor buf = Tensor::zeros({4, 3}, DType::f32), buf_f16 = Tensor::zeros({4, 3}, DType::f16);
  Tensor p_f16 = Tensor::zeros({4, 3}, DType::f16);
  const SgdParams momentum{0.1f, 0.9f, 0.0f, 0.0f, false};
  EXPECT_THROW(
      {
        try {
          sgd_step(momentum, p, g_bad, &buf, true);
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("sgd_step: grad has shape [3, 4], expected [4, 3]"), std::string::npos)
              << e.what();
          throw;
        }
      },
      Error);
  EXPECT_THROW(
      {
        try {
          sgd_step(momentum, p, g, nullptr, true);
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("sgd_step: momentum 0.9 needs a momentum_buffer"), std::string::npos)
              << e.what();
          throw;
        }
      },
      Error);
  EXPECT_THROW(sgd_step(momentum, p, g_int, &buf, true), Error);
  EXPECT_THROW(sgd_step(momentum, p, g, &buf_f16, true), Error);
  EXPECT_THROW(sgd_step(momentum, p_f16, g, &buf, true), Error);
  EXPECT_THROW(sgd_step({0.1f, 0.0f, 0.0f, 0.0f, true}, p, g, &buf, true), Error);  // Nesterov without momentum
  EXPECT_NO_THROW(sgd_step({0.1f, 0.0f, 0.0f, 0.0f, false}, p, g, nullptr, true));

  Tensor m = Tensor::zeros({4, 3}, DType::f32), v = Tensor::zeros({4, 3}, DType::f32);
  Tensor v_bad = Tensor::zeros({12}, DType::f32);
  EXPECT_THROW(
      {
        try {
          adamw_step({}, 0, p, g, m, v);
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("adamw_step: step is 0, expected >= 1"), std::string::npos) << e.what();
          throw;
        }
      },
      Error);
  EXPECT_THROW(adamw_step({}, 1, p, g, m, v_bad), Error);
  EXPECT_THROW(adamw_step({1e-3f, 1.0f, 0.999f, 1e-8f, 0.0f}, 1, p, g, m, v), Error);

  Tensor* none[] = {nullptr};
  Tensor* ints[] = {&g_int};
  Tensor* ok[] = {&g};
  EXPECT_THROW(clip_grad_norm(none, 1.0f), Error);
  EXPECT_THROW(clip_grad_norm(ints, 1.0f), Error);
  EXPECT_THROW(clip_grad_norm(ok, -1.0f), Error);
  Tensor found = Tensor::zeros({1}, DType::f32), found_bad = Tensor::zeros({2}, DType::f32);
  EXPECT_THROW(
      {
        try {
          non_finite_check_and_unscale(ok, found_bad, 1.0f);
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("non_finite_check_and_unscale: found_inf has shape [2], expected [1]"),
                    std::string::npos)
              << e.what();
          throw;
        }
      },
      Error);
  if (cuda_available()) {
    Tensor g_gpu = g.to(Device::cuda(0));
    Tensor* mixed[] = {&g, &g_gpu};
    EXPECT_THROW(clip_grad_norm(mixed, 1.0f), Error);
    // (This passed the CPU gradients until the test first ran with a CUDA device, on the emulated one.)
    Tensor* on_gpu[] = {&g_gpu};
    EXPECT_THROW(non_finite_check_and_unscale(on_gpu, found, 1.0f), Error) << "found_inf on the CPU, grads on the GPU";
    EXPECT_THROW(sgd_step(momentum, p, g_gpu, &buf, true), Error);
  }
}

}  // namespace
}  // namespace sg
