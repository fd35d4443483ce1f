#include "tests/support/op_harness.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <sstream>
#include <stdexcept>

#include "core/cuda/device_code.h"
#include "core/cuda/runtime.h"
#include "core/meta_device.h"
#include "kernels/linear.h"
#include "kernels/cpu/isa.h"

namespace sg::testing {
namespace {

// Comparisons made by the runners in this process, printed at the end of the run.
size_t total_comparisons = 0;

class PrintTotalAtExit : public ::testing::Environment {
 public:
  void TearDown() override {
    if (total_comparisons) std::printf("[op harness] %zu comparisons in total\n", total_comparisons);
  }
};
[[maybe_unused]] ::testing::Environment* const print_total =
    ::testing::AddGlobalTestEnvironment(new PrintTotalAtExit);

bool performance_mode() {
  const char* value = std::getenv("SG_OP_PERF");
  return value && *value && std::string(value) != "0";
}

class FunctionTest : public ::testing::Test {
 public:
  explicit FunctionTest(std::function<void()> body) : body_(std::move(body)) {}
  void TestBody() override { body_(); }

 private:
  std::function<void()> body_;
};

void register_test(const std::string& suite, const std::string& name, std::function<void()> body, const char* file,
                   int line) {
  // The factory's return type, ::testing::Test*, gives these tests the fixture of TEST(), so a
  // suite may mix them with ordinary TESTs.
  ::testing::RegisterTest(suite.c_str(), name.c_str(), nullptr, nullptr, file, line,
                          [body]() -> ::testing::Test* { return new FunctionTest(body); });
}

void synchronize(Device device) {
  if (device.is_cuda()) cuda::device_synchronize(device.index);
}

// Times repeated runs (at least 3, and at least 20 ms) of a case whose outputs already exist;
// prints nothing for a case without a byte or FLOP count.
void report_performance(const OpCase& c, const OpInputs& inputs, OpOutputs& outputs, Device device) {
  if (c.bytes <= 0 && c.flops <= 0) return;
  using Clock = std::chrono::steady_clock;
  synchronize(device);
  int runs = 0;
  const auto start = Clock::now();
  double seconds = 0;
  while (runs < 3 || seconds < 0.02) {
    c.run(inputs, outputs);
    ++runs;
    synchronize(device);
    seconds = std::chrono::duration<double>(Clock::now() - start).count();
  }
  const double per_run = seconds / runs;
  std::printf("[op perf] %-28s %-36s %-7s %10.3f us", c.op.c_str(), c.description.c_str(), device.str().c_str(),
              per_run * 1e6);
  if (c.bytes > 0) std::printf("  %9.2f GB/s", c.bytes / per_run * 1e-9);
  if (c.flops > 0) std::printf("  %9.2f GFLOP/s", c.flops / per_run * 1e-9);
  std::printf("\n");
}

// Bit for bit (so -0 differs from +0), except that any NaN matches any NaN: payloads are not
// specified across devices (a GPU widening an f16 NaN may set other payload bits). Names the first
// difference.
::testing::AssertionResult bitwise_equal(const Tensor& actual, const Tensor& expected) {
  if (actual.shape() != expected.shape() || actual.dtype() != expected.dtype())
    return ::testing::AssertionFailure() << actual.str() << " != expected " << expected.str();
  if (same_bits(actual, expected)) return ::testing::AssertionSuccess();
  const size_t size = dtype_size(actual.dtype());
  const auto* a = static_cast<const unsigned char*>(actual.data());
  const auto* e = static_cast<const unsigned char*>(expected.data());
  const std::vector<double> av = to_doubles(actual), ev = to_doubles(expected);
  size_t first = 0, differing = 0;
  for (size_t i = 0; i < av.size(); ++i)
    if (std::memcmp(a + i * size, e + i * size, size) != 0 && !(std::isnan(av[i]) && std::isnan(ev[i])) &&
        differing++ == 0)
      first = i;
  if (!differing) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << differing << " of " << actual.numel()
                                       << " elements differ in their bits (an exact output); first at " << first
                                       << ": " << av[first] << " vs " << ev[first];
}

OpInputs copy_to(const OpInputs& inputs, Device device) {
  OpInputs moved({}, inputs.scalars, inputs.integers);
  for (const Tensor& t : inputs.tensors) moved.tensors.push_back(t.to(device));
  return moved;
}

// One gradient case; returns how many gradients it compared.
size_t check_gradient_case(const GradientCase& c, Rng& rng, const std::string& where) {
  const std::vector<std::vector<double>> inputs = c.make_inputs(rng);
  const std::vector<double> dy = random_doubles(rng, c.forward(inputs).size());
  const std::vector<std::vector<double>> analytic = c.backward(inputs, dy);
  if (analytic.size() != c.input_names.size() || inputs.size() < c.input_names.size()) {
    ADD_FAILURE() << where << ": " << inputs.size() << " inputs, " << analytic.size() << " gradients, "
                  << c.input_names.size() << " names";
    return 0;
  }
  for (size_t i = 0; i < analytic.size(); ++i) {
    auto loss = [&](const std::vector<double>& probe) {
      std::vector<std::vector<double>> varied = inputs;
      varied[i] = probe;
      return dot(c.forward(varied), dy);
    };
    EXPECT_TRUE(gradient_matches(loss, inputs[i], analytic[i])) << where << ": d" << c.input_names[i];
  }
  return analytic.size();
}

// Zeroes the elements of `actual` and `expected` (a copy of the reference's, which other outputs'
// not_compared may still read) where `mask` is true; returns how many.
size_t leave_out(const std::vector<bool>& mask, Tensor& actual, Tensor& expected) {
  if (mask.size() != size_t(expected.numel()))
    throw std::runtime_error("not_compared gave " + std::to_string(mask.size()) + " flags for " +
                             std::to_string(expected.numel()) + " elements");
  Tensor copy = Tensor::empty(expected.shape(), expected.dtype());
  copy.copy_from(expected);
  expected = copy;
  const size_t size = dtype_size(expected.dtype());
  size_t skipped = 0;
  for (size_t i = 0; i < mask.size(); ++i) {
    if (!mask[i]) continue;
    std::memset(static_cast<char*>(actual.data()) + i * size, 0, size);
    std::memset(static_cast<char*>(expected.data()) + i * size, 0, size);
    ++skipped;
  }
  return skipped;
}

}  // namespace

Tolerance op_tolerance(DType dtype, const OutputCheck& check) {
  if (check.exact || !is_floating(dtype)) return {0, 0};
  Tolerance t = tolerance_for(dtype);
  t.abs += 1e-7 * check.summed_terms;
  t.rel += 1e-7 * check.summed_terms;
  return t;
}

std::string describe(DType dtype, const Shape& shape) { return std::string(dtype_name(dtype)) + " " + shape.str(); }

std::string describe(double value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

void run_op_cases(const std::vector<OpCase>& cases, Device device, Rng& rng, const std::string& variant) {
  const std::string on = variant.empty() ? device.str() : device.str() + " (" + variant + ")";
  const bool perf = performance_mode();
  size_t comparisons = 0;
  size_t cases_run = 0;
  for (const OpCase& c : cases) {
    if (c.cuda_only && !device.is_cuda()) continue;
    ++cases_run;
    const std::string where = c.op + " " + c.description + " on " + on;
    try {
      const OpInputs on_cpu = c.make_inputs(rng);
      const OpOutputs expected = c.reference(on_cpu);
      if (expected.size() != c.outputs.size()) {
        ADD_FAILURE() << where << ": the reference gave " << expected.size() << " outputs for " << c.outputs.size()
                      << " checks";
        continue;
      }
      const OpInputs on_device = copy_to(on_cpu, device);
      OpOutputs actual;
      for (const Tensor& e : expected) {
        actual.push_back(Tensor::empty(e.shape(), e.dtype(), device));
        poison(actual.back());
      }
      c.run(on_device, actual);
      for (size_t i = 0; i < expected.size(); ++i) {
        Tensor fetched = actual[i].to(Device::cpu());
        Tensor wanted = expected[i];
        if (c.outputs[i].not_compared) {
          const size_t skipped = leave_out(c.outputs[i].not_compared(on_cpu, expected), fetched, wanted);
          if (skipped) std::printf("[op harness] %s: output %s: %zu of %lld elements not compared\n", where.c_str(),
                                   c.outputs[i].name.c_str(), skipped, static_cast<long long>(wanted.numel()));
        }
        EXPECT_TRUE(c.outputs[i].exact ? bitwise_equal(fetched, wanted)
                                       : all_close(fetched, wanted, op_tolerance(wanted.dtype(), c.outputs[i])))
            << where << ": output " << c.outputs[i].name;
        ++comparisons;
      }
      if (perf) report_performance(c, on_device, actual, device);
    } catch (const std::exception& e) {
      ADD_FAILURE() << where << ": threw " << e.what();
    }
  }
  // A table that runs nothing on a device would pass without checking anything.
  EXPECT_GT(comparisons, 0u) << "no case of the table ran on " << on;
  total_comparisons += comparisons;
  std::printf("[op harness] %zu cases, %zu comparisons on %s\n", cases_run, comparisons, on.c_str());
}

void run_gradient_cases(const std::vector<GradientCase>& cases, Rng& rng) {
  size_t comparisons = 0;
  for (const GradientCase& c : cases) {
    const std::string where = c.op + " " + c.description;
    try {
      comparisons += check_gradient_case(c, rng, where);
    } catch (const std::exception& e) {
      ADD_FAILURE() << where << ": threw " << e.what();
    }
  }
  EXPECT_GT(comparisons, 0u) << "no gradient case ran";
  total_comparisons += comparisons;
  std::printf("[op harness] %zu gradient cases, %zu comparisons\n", cases.size(), comparisons);
}

namespace {

// The bytes a case's run takes beyond its inputs and outputs at its peak: the kernel's scratch.
size_t real_scratch(const OpCase& c, const OpInputs& on_cpu, const OpOutputs& shapes, Device device) {
  const OpInputs on_device = copy_to(on_cpu, device);
  OpOutputs outputs;
  for (const Tensor& e : shapes) outputs.push_back(Tensor::empty(e.shape(), e.dtype(), device));
  synchronize(device);
  Allocator& allocator = allocator_for(device);
  allocator.reset_peak();
  const size_t before = allocator.stats().in_use;
  c.run(on_device, outputs);
  synchronize(device);
  return allocator.stats().peak_in_use - before;
}

size_t meta_scratch(const OpCase& c, const OpInputs& on_cpu, const OpOutputs& shapes, const meta::Target& target) {
  meta::Session session(target);
  const OpInputs on_meta = copy_to(on_cpu, Device::meta());
  OpOutputs outputs;
  for (const Tensor& e : shapes) outputs.push_back(Tensor::empty(e.shape(), e.dtype(), Device::meta()));
  session.reset_peak();
  const size_t before = session.in_use();
  c.run(on_meta, outputs);
  return session.peak() - before;
}

}  // namespace

void run_meta_scratch_cases(const std::vector<OpCase>& cases, Device device, Rng& rng) {
  size_t checked = 0;
  for (const OpCase& c : cases) {
    if (c.cuda_only && !device.is_cuda()) continue;
    if (c.reads_values) continue;
    const std::string where = c.op + " " + c.description + " on meta for " + device.str();
    try {
      const OpInputs on_cpu = c.make_inputs(rng);
      const OpOutputs shapes = c.reference(on_cpu);
      meta::Target target;
      if (device.is_cuda()) {
        target.cuda = true;
        target.cuda_arch = cuda::code_architecture(device.index);
        target.cublas_workspace_held = cublas_workspace_bytes_held(device) > 0;
      }
      const size_t planned = meta_scratch(c, on_cpu, shapes, target);
      const size_t measured = real_scratch(c, on_cpu, shapes, device);
      EXPECT_EQ(planned, measured) << where << ": scratch on meta " << planned << " bytes, on " << device.str() << " "
                                   << measured;
      ++checked;
    } catch (const std::exception& e) {
      ADD_FAILURE() << where << ": threw " << e.what();
    }
  }
  EXPECT_GT(checked, 0u) << "no case of the table ran on meta";
  std::printf("[op harness] %zu cases: scratch on meta compared with %s's\n", checked, device.str().c_str());
}

bool register_op_tests(const char* suite, const char* stem, std::function<std::vector<OpCase>()> cases,
                       OpTestOptions options, const char* file, int line) {
  if (options.every_cpu_isa)
    register_test(suite, std::string("CpuIsaVariants") + stem + "MatchReference", [cases] {
      const cpu::Isa picked = cpu::isa();
      std::vector<cpu::Isa> others;
      for (cpu::Isa isa : {cpu::Isa::baseline, cpu::Isa::avx2, cpu::Isa::avx512})
        if (isa != picked && cpu::isa_supported(isa)) others.push_back(isa);
      if (others.empty() || !SG_CPU_ISA_VARIANTS)
        GTEST_SKIP() << "the fast CPU loops have no variant here besides " << cpu::isa_name(picked)
                     << (SG_CPU_ISA_VARIANTS ? "" : " (the variants are built by GCC on x86-64 only)");
      Rng rng;
      SG_TRACE_SEED(rng);
      const std::vector<OpCase> table = cases();
      for (cpu::Isa isa : others) {
        const CpuIsaScope scope(isa);
        run_op_cases(table, Device::cpu(), rng, cpu::isa_name(isa));
      }
    }, file, line);
  register_test(suite, std::string("FastCpu") + stem + "MatchesReference", [cases] {
    Rng rng;
    SG_TRACE_SEED(rng);
    run_op_cases(cases(), Device::cpu(), rng);
  }, file, line);
  register_test(suite, std::string("Cuda") + stem + "MatchesReference", [cases] {
    SG_REQUIRE_CUDA();
    Rng rng;
    SG_TRACE_SEED(rng);
    run_op_cases(cases(), Device::cuda(0), rng);
  }, file, line);
  register_test(suite, std::string("Meta") + stem + "ScratchMatchesCpu", [cases] {
    Rng rng;
    SG_TRACE_SEED(rng);
    run_meta_scratch_cases(cases(), Device::cpu(), rng);
  }, file, line);
  register_test(suite, std::string("Meta") + stem + "ScratchMatchesCuda", [cases] {
    SG_REQUIRE_CUDA();
    Rng rng;
    SG_TRACE_SEED(rng);
    run_meta_scratch_cases(cases(), Device::cuda(0), rng);
  }, file, line);
  return true;
}

bool register_gradient_tests(const char* suite, const char* test_name,
                             std::function<std::vector<GradientCase>()> cases, const char* file, int line) {
  register_test(suite, test_name, [cases] {
    Rng rng;
    SG_TRACE_SEED(rng);
    run_gradient_cases(cases(), rng);
  }, file, line);
  return true;
}

}  // namespace sg::testing
