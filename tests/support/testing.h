#pragma once
// Shared test helpers: fresh random inputs, per-dtype tolerances, closeness checks,
// finite differences, CUDA skips and the PyTorch golden files.
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <random>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/tensor.h"

namespace sg::testing {

// A generator seeded freshly for every test (std::random_device) unless SG_TEST_SEED is set;
// the seed is printed on failure through a SCOPED_TRACE so any failure can be replayed.
class Rng {
 public:
  Rng();  // seeded from SG_TEST_SEED when it is set, else a fresh random seed
  explicit Rng(uint64_t seed) : seed_(seed), engine_(seed) {}  // a fixed seed: regression cases
  uint64_t seed() const { return seed_; }
  float uniform(float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(engine_); }
  double uniform_double(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(engine_); }
  int64_t integer(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(engine_); }
  std::mt19937_64& engine() { return engine_; }

 private:
  uint64_t seed_;
  std::mt19937_64 engine_;
};

#define SG_TRACE_SEED(rng) SCOPED_TRACE(::testing::Message() << "replay with SG_TEST_SEED=" << (rng).seed())

// Uniform random values in [lo, hi) stored in `dtype` on the CPU (rounded for f16/bf16).
Tensor random_tensor(Rng& rng, Shape shape, DType dtype = DType::f32, float lo = -1.0f, float hi = 1.0f);
std::vector<double> random_doubles(Rng& rng, size_t n, double lo = -1.0, double hi = 1.0);
std::vector<double> to_doubles(const Tensor& t);
// Fills a tensor's bytes with 0xFF (NaN for every floating dtype) so unwritten outputs show.
void poison(Tensor& t);
// An uninitialised tensor on `device`, poisoned: for outputs.
Tensor empty_on(const Shape& shape, DType dtype, Device device = Device::cpu());
// Same shape, dtype and bytes (a bit-for-bit comparison; CPU tensors).
bool same_bits(const Tensor& a, const Tensor& b);

// Calls fn(TypeTag<T>{}) with T the storage type of a floating dtype, for running the templated
// references (kernels/cpu/*_ref.h) on a tensor's data.
template <class Fn>
void with_type(DType dtype, Fn&& fn) {
  dispatch_floating(dtype, "test", [&](auto tag) { fn(tag); });
}

// Runs fn and expects an sg::Error whose message contains every one of `parts`.
template <class Fn>
void expect_error_containing(Fn&& fn, std::initializer_list<std::string> parts) {
  try {
    fn();
    ADD_FAILURE() << "no sg::Error thrown; expected one containing \"" << *parts.begin() << "\"";
  } catch (const Error& e) {
    const std::string message = e.what();
    for (const std::string& part : parts)
      EXPECT_NE(message.find(part), std::string::npos) << "\"" << part << "\" not in: " << message;
  }
}
template <class Fn>
void expect_error_containing(Fn&& fn, const std::string& text) {
  expect_error_containing(std::forward<Fn>(fn), {text});
}

// |actual - expected| <= abs + rel * |expected|, element by element.
struct Tolerance {
  double abs;
  double rel;
};
// Defaults for one elementwise op with f32 accumulation: f32 tight, f16 ~ 2^-10, bf16 ~ 2^-7.
Tolerance tolerance_for(DType dtype);

::testing::AssertionResult all_close(const std::vector<double>& actual, const std::vector<double>& expected,
                                     Tolerance tol);
::testing::AssertionResult all_close(const Tensor& actual, const Tensor& expected, Tolerance tol);
::testing::AssertionResult all_close(const Tensor& actual, const std::vector<double>& expected, Tolerance tol);

// sum a[i] * b[i]: the scalar loss dot(forward(x), dy) of the finite-difference checks.
inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// Central differences of a scalar function f at x, compared with an analytic gradient.
// Run it on the double reference: eps 1e-6 gives errors near 1e-9.
::testing::AssertionResult gradient_matches(const std::function<double(const std::vector<double>&)>& f,
                                            const std::vector<double>& x, const std::vector<double>& analytic,
                                            double eps = 1e-6, Tolerance tol = {1e-6, 1e-5});

// True when cuda:0 is the emulated CUDA device of the test build (tests/emulated_cuda): tests that
// would take minutes there run smaller, keeping their full size on a real GPU.
inline bool on_emulated_cuda() {
  return ::sg::cuda_available() && ::sg::cuda_device_name(0).rfind("emulated CUDA device", 0) == 0;
}

// Skips (visibly, as SKIPPED with the reason) when there is no usable GPU.
#define SG_REQUIRE_CUDA()                                                                    \
  do {                                                                                       \
    if (!::sg::cuda_available()) GTEST_SKIP() << "no CUDA device: " << ::sg::cuda_unavailable_reason(); \
  } while (0)

// A PyTorch golden file from tests/golden/data (written by tests/golden/make_golden.py).
class GoldenFile {
 public:
  explicit GoldenFile(const std::string& name);  // e.g. "activation" -> activation.h5
  bool has(const std::string& dataset) const;
  // Reads a dataset as a CPU tensor of `dtype` (values rounded to nearest even).
  Tensor tensor(const std::string& dataset, DType dtype = DType::f32) const;
  std::vector<double> doubles(const std::string& dataset) const;
  double scalar(const std::string& dataset) const;
  std::string torch_version() const;

 private:
  std::string path_;
};

}  // namespace sg::testing
