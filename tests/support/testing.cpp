#include "tests/support/testing.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "weights/hdf5_file.h"

namespace sg::testing {

Rng::Rng() {
  const char* fixed = std::getenv("SG_TEST_SEED");
  seed_ = fixed ? std::strtoull(fixed, nullptr, 10) : (uint64_t(std::random_device{}()) << 32) ^ std::random_device{}();
  engine_.seed(seed_);
}

Tensor random_tensor(Rng& rng, Shape shape, DType dtype, float lo, float hi) {
  std::vector<float> values(size_t(shape.numel()));
  for (float& v : values) v = rng.uniform(lo, hi);
  return Tensor::from_floats(values, std::move(shape), dtype);
}

std::vector<double> random_doubles(Rng& rng, size_t n, double lo, double hi) {
  std::vector<double> v(n);
  for (double& x : v) x = rng.uniform_double(lo, hi);
  return v;
}

std::vector<double> to_doubles(const Tensor& t) {
  const std::vector<float> f = t.to_floats();
  return {f.begin(), f.end()};
}

void poison(Tensor& t) {
  if (t.device().is_meta()) return;  // no values to poison (core/meta_device.h)
  if (t.device().is_cpu()) {
    std::memset(t.data(), 0xFF, t.nbytes());
  } else {
    // On the tensor's device (the legacy stream is per device), after whatever work of any stream
    // may still use its memory (the legacy stream does not wait for non-blocking streams).
    cuda::device_synchronize(t.device().index);
    const DeviceGuard on_device(t.device());
    cuda::memset_async(t.data(), 0xFF, t.nbytes(), nullptr);
    cuda::stream_synchronize(nullptr);
  }
}

Tensor empty_on(const Shape& shape, DType dtype, Device device) {
  Tensor t = Tensor::empty(shape, dtype, device);
  poison(t);
  return t;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() && std::memcmp(a.data(), b.data(), a.nbytes()) == 0;
}

Tolerance tolerance_for(DType dtype) {
  switch (dtype) {
    case DType::f16: return {2e-3, 2e-3};
    case DType::bf16: return {1.6e-2, 1.6e-2};
    default: return {1e-5, 1e-5};
  }
}

::testing::AssertionResult all_close(const std::vector<double>& actual, const std::vector<double>& expected,
                                     Tolerance tol) {
  if (actual.size() != expected.size())
    return ::testing::AssertionFailure() << "size " << actual.size() << " != expected size " << expected.size();
  size_t bad = 0, first_bad = 0, worst = 0;
  double worst_excess = -1;
  for (size_t i = 0; i < actual.size(); ++i) {
    const double limit = tol.abs + tol.rel * std::fabs(expected[i]);
    const double err = std::fabs(actual[i] - expected[i]);
    // Equal values pass (infinities included); NaN passes only against NaN.
    const bool ok = actual[i] == expected[i] || err <= limit || (std::isnan(actual[i]) && std::isnan(expected[i]));
    if (!ok) {
      if (!bad) first_bad = i;
      ++bad;
      const double excess = std::isnan(err) ? 1e300 : err / limit;
      if (excess > worst_excess) {
        worst_excess = excess;
        worst = i;
      }
    }
  }
  if (!bad) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << bad << " of " << actual.size() << " elements outside abs " << tol.abs
                                       << " + rel " << tol.rel << "; first at " << first_bad << ": "
                                       << actual[first_bad] << " vs " << expected[first_bad] << "; worst at " << worst
                                       << ": " << actual[worst] << " vs " << expected[worst];
}

::testing::AssertionResult all_close(const Tensor& actual, const Tensor& expected, Tolerance tol) {
  if (actual.shape() != expected.shape())
    return ::testing::AssertionFailure() << "shape " << actual.shape().str() << " != " << expected.shape().str();
  return all_close(to_doubles(actual), to_doubles(expected), tol);
}

::testing::AssertionResult all_close(const Tensor& actual, const std::vector<double>& expected, Tolerance tol) {
  return all_close(to_doubles(actual), expected, tol);
}

::testing::AssertionResult gradient_matches(const std::function<double(const std::vector<double>&)>& f,
                                            const std::vector<double>& x, const std::vector<double>& analytic,
                                            double eps, Tolerance tol) {
  if (analytic.size() != x.size())
    return ::testing::AssertionFailure() << "gradient has " << analytic.size() << " entries for " << x.size()
                                         << " inputs";
  std::vector<double> numeric(x.size());
  std::vector<double> probe = x;
  for (size_t i = 0; i < x.size(); ++i) {
    probe[i] = x[i] + eps;
    const double up = f(probe);
    probe[i] = x[i] - eps;
    const double down = f(probe);
    probe[i] = x[i];
    numeric[i] = (up - down) / (2 * eps);
  }
  auto result = all_close(analytic, numeric, tol);
  if (!result) result << " (analytic vs central differences, eps " << eps << ")";
  return result;
}

namespace {
// The golden folder: SG_GOLDEN_DIR from the environment (a build carried to another machine),
// else the source tree's, fixed at build time.
std::string golden_dir() {
  const char* from_env = std::getenv("SG_GOLDEN_DIR");
  return from_env ? from_env : SG_GOLDEN_DIR;
}
}  // namespace

GoldenFile::GoldenFile(const std::string& name) : path_(golden_dir() + "/" + name + ".h5") {
  Hdf5File file(path_, Hdf5File::Mode::read);
  SG_CHECK(file.read_int_attribute("/", "format_version") == 1, path_,
           ": golden format_version is not 1; rerun tests/golden/make_golden.py");
}

bool GoldenFile::has(const std::string& dataset) const { return Hdf5File(path_, Hdf5File::Mode::read).has(dataset); }

Tensor GoldenFile::tensor(const std::string& dataset, DType dtype) const {
  FloatArray a = Hdf5File(path_, Hdf5File::Mode::read).read_floats(dataset);
  return Tensor::from_floats(a.values, Shape(a.shape), dtype);
}

std::vector<double> GoldenFile::doubles(const std::string& dataset) const {
  FloatArray a = Hdf5File(path_, Hdf5File::Mode::read).read_floats(dataset);
  return {a.values.begin(), a.values.end()};
}

double GoldenFile::scalar(const std::string& dataset) const {
  const std::vector<double> v = doubles(dataset);
  SG_CHECK(v.size() == 1, path_, ": dataset \"", dataset, "\" is not a scalar");
  return v[0];
}

std::string GoldenFile::torch_version() const {
  return Hdf5File(path_, Hdf5File::Mode::read).read_string_attribute("/", "torch_version");
}

}  // namespace sg::testing
