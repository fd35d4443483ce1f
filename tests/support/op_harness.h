#pragma once
// One harness for the op tests, in the spirit of ggml's test-backend-ops: an op's test is a table
// of cases (shapes, dtypes, parameters); the runner checks every case on every device the build
// has against the op's reference, with one error measure per dtype; a gradient mode checks the
// reference backward against central differences of the reference forward in double; a
// performance mode (SG_OP_PERF=1) prints GB/s and GFLOP/s per case and device.
// See tests/support/op_harness.md for the state of the migration.
#include <functional>
#include <string>
#include <vector>

#include "kernels/cpu/isa.h"
#include "tests/support/testing.h"

namespace sg::testing {

// What a case's inputs are: tensors (made on the CPU; the runner copies them to the device under
// test), and plain values drawn with them, passed to the op as they are: scalars (alpha, a fill
// value) and integers (a seed, an offset).
struct OpInputs {
  OpInputs(std::vector<Tensor> tensors_, std::vector<float> scalars_ = {}, std::vector<uint64_t> integers_ = {})
      : tensors(std::move(tensors_)), scalars(std::move(scalars_)), integers(std::move(integers_)) {}
  std::vector<Tensor> tensors;
  std::vector<float> scalars;
  std::vector<uint64_t> integers;
};
using OpOutputs = std::vector<Tensor>;

// How one output is compared with the reference. There is one error measure, per dtype:
//   |actual - expected| <= abs + rel * |expected|, (abs, rel) = tolerance_for(dtype),
// widened only for outputs that sum many terms, which another device may add in another order
// (f32 reassociation): each reassociated term adds 1e-7 (f32's unit roundoff, 6e-8, rounded up) to
// both abs and rel. Exact outputs (data movement: copies, concatenation, fill, max, argmax; masks)
// must match bit for bit (any NaN matches any NaN: payloads are not specified across devices).
struct OpInputs;
struct OutputCheck {
  std::string name;
  bool exact = false;
  double summed_terms = 0;
  // Elements left out of the comparison (true = not compared), from the CPU inputs and the
  // reference's outputs: where the op's output is not defined to the tolerance, such as a ReLU's
  // gradient at its kink, which rounding puts on either side. Empty: every element is compared.
  std::function<std::vector<bool>(const OpInputs& on_cpu, const std::vector<Tensor>& expected)> not_compared = {};
};
Tolerance op_tolerance(DType dtype, const OutputCheck& check);

// One row of an op's table.
//  - make_inputs draws the inputs (on the CPU) from the test's seeded generator;
//  - reference runs kernels/cpu/<op>_ref.h in the storage type on those CPU inputs and returns
//    the expected outputs (their shapes and dtypes also size the device outputs);
//  - run goes through the public dispatching API (kernels/<op>.h) with the inputs on the device
//    under test, writing into `outputs`: tensors of the reference's shapes on that device, filled
//    with NaN first so an element the op leaves unwritten shows. An in-place variant copies its
//    operand into the output first.
struct OpCase {
  std::string op;           // "activation swish", "tensor_ops axpy"
  std::string description;  // the rest that identifies the case: "f16 [4099]"
  // One per output; the error measure is picked by each output's dtype (an f32 dbias of an f16 op
  // is measured as f32).
  std::vector<OutputCheck> outputs;
  // Sizes that matter only to a CUDA launch (grids of many blocks), skipped on the CPU where they
  // would add seconds and no path.
  bool cuda_only = false;
  // The op hands a value back to the host (a norm), which a meta tensor does not have: left out of
  // the meta mode below.
  bool reads_values = false;
  std::function<OpInputs(Rng&)> make_inputs;
  std::function<OpOutputs(const OpInputs& on_cpu)> reference;
  std::function<void(const OpInputs& on_device, OpOutputs& outputs)> run;
  // Performance mode: bytes read + written and floating point operations of one run (0: not
  // printed). Counted from the op's definition, not from what a kernel happens to touch.
  double bytes = 0;
  double flops = 0;
};

// One row of an op's gradient table, entirely in double: the reference forward (its outputs
// flattened into one vector) and the reference backward (given dy of the forward's size, one
// gradient per differentiable input). The differentiable inputs come first, one per input_names
// entry; inputs after them are constants (targets). The runner draws dy and checks each gradient
// against central differences of dot(forward(inputs), dy) (gradient_matches).
struct GradientCase {
  std::string op;
  std::string description;
  std::vector<std::string> input_names;
  std::function<std::vector<std::vector<double>>(Rng&)> make_inputs;
  std::function<std::vector<double>(const std::vector<std::vector<double>>& inputs)> forward;
  std::function<std::vector<std::vector<double>>(const std::vector<std::vector<double>>& inputs,
                                                 const std::vector<double>& dy)>
      backward;
};

struct OpTestOptions {
  // The op's fast CPU loops have per-ISA variants (kernels/cpu/isa.h): run the table once more on
  // the CPU with each variant this CPU has besides the one it picks (baseline SSE4.2, AVX2 + FMA,
  // AVX-512), as if each were a device of its own.
  bool every_cpu_isa = false;
};

// Registers, in GoogleTest suite `suite` (so ctest lists them as it did before the harness):
//   suite.FastCpu<stem>MatchesReference   every case on the CPU fast path
//   suite.Cuda<stem>MatchesReference      every case on cuda:0 (a GPU, or the emulated device of
//                                         the emulated build); SKIPPED with the reason without one
//   suite.CpuIsaVariants<stem>MatchReference  with every_cpu_isa: every case on the CPU with each
//                                         other ISA variant; SKIPPED when the CPU (or the build:
//                                         the variants need GCC on x86-64) has no other
//   suite.Meta<stem>ScratchMatchesCpu     every case on the meta device (core/meta_device.h) with the
//                                         CPU as target: the scratch its meta branch allocates must
//                                         equal the CPU allocator's measured peak over the same call
//   suite.Meta<stem>ScratchMatchesCuda    the same against cuda:0 and its code architecture
// The table is built when the test runs. Call it from a namespace-scope initializer:
//   [[maybe_unused]] const bool registered = register_op_tests("Activation", "", activation_cases);
bool register_op_tests(const char* suite, const char* stem, std::function<std::vector<OpCase>()> cases,
                       OpTestOptions options = {}, const char* file = __builtin_FILE(), int line = __builtin_LINE());
// Registers suite.<test_name>, running a gradient table.
bool register_gradient_tests(const char* suite, const char* test_name,
                             std::function<std::vector<GradientCase>()> cases, const char* file = __builtin_FILE(),
                             int line = __builtin_LINE());

// The runners the registered tests call (a TEST may call them too). Each prints how many
// comparisons it made: one per case x output x device, one per case x input in gradient mode.
// `variant` names what runs the cases besides the device ("avx2"), for the messages.
void run_op_cases(const std::vector<OpCase>& cases, Device device, Rng& rng, const std::string& variant = {});
void run_gradient_cases(const std::vector<GradientCase>& cases, Rng& rng);
// The meta mode: each case's scratch on meta, with `device` as target, against `device`'s measured.
void run_meta_scratch_cases(const std::vector<OpCase>& cases, Device device, Rng& rng);

// ---- Helpers for writing cases --------------------------------------------------------------------

// Runs the fast CPU loops with `isa`'s variants (kernels/cpu/isa.h; it must be supported) for the
// scope's lifetime and puts the previous choice back.
class CpuIsaScope {
 public:
  explicit CpuIsaScope(cpu::Isa isa) : previous_(cpu::set_isa_for_testing(isa)) {}
  ~CpuIsaScope() { cpu::set_isa_for_testing(previous_); }
  CpuIsaScope(const CpuIsaScope&) = delete;
  CpuIsaScope& operator=(const CpuIsaScope&) = delete;

 private:
  cpu::Isa previous_;
};

// Tensor::empty on the CPU with the shape and dtype of `like`: for reference outputs.
inline Tensor empty_like(const Tensor& like) { return Tensor::empty(like.shape(), like.dtype()); }

// "f16 [2, 3, 5]", for descriptions.
std::string describe(DType dtype, const Shape& shape);
// A parameter as a person writes it: 0.1, 2.5, 1e-06 (std::to_string gives 0.100000).
std::string describe(double value);

}  // namespace sg::testing
