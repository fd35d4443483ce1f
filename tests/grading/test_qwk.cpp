// Quadratic weighted kappa against scikit-learn's cohen_kappa_score(..., weights="quadratic",
// labels=range(6)) on fixed cases written once by tests/golden/qwk_reference.py.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <vector>

#include "core/error.h"
#include "grading/quadratic_weighted_kappa.h"
#include "weights/hdf5_file.h"
#include "weights/hdf5_tensor.h"

namespace sg::grading {
namespace {

std::vector<int> read_ints(hid_t group, const char* name) {
  Hdf5Handle dataset(H5Dopen2(group, name, H5P_DEFAULT), H5Dclose);
  EXPECT_TRUE(dataset.valid()) << name;
  Hdf5Handle space(H5Dget_space(dataset.get()), H5Sclose);
  std::vector<int> values(size_t(H5Sget_simple_extent_npoints(space.get())));
  EXPECT_GE(H5Dread(dataset.get(), H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), 0);
  return values;
}

TEST(QuadraticWeightedKappa, MatchesScikitLearn) {
  const char* from_env = std::getenv("SG_GOLDEN_DIR");  // a build carried to another machine
  const std::string path = std::string(from_env ? from_env : SG_GOLDEN_DIR) + "/qwk.h5";
  Hdf5Handle file = h5::open_file_for_reading(path);
  const std::vector<std::string> cases = h5::child_groups(file.get(), path);
  ASSERT_GE(cases.size(), 8u);
  for (const std::string& name : cases) {
    SCOPED_TRACE(name);
    const Hdf5Handle group = h5::open_group(file.get(), name, path);
    const std::vector<int> truth = read_ints(group.get(), "truth");
    const std::vector<int> pred = read_ints(group.get(), "pred");
    const double expected = h5::read_double_attribute(group.get(), "kappa", path);
    const std::optional<double> kappa = quadratic_weighted_kappa(truth, pred);
    if (std::isnan(expected)) {
      EXPECT_FALSE(kappa.has_value()) << *kappa;
    } else {
      ASSERT_TRUE(kappa.has_value());
      EXPECT_NEAR(*kappa, expected, 1e-12);
    }
  }
}

TEST(QuadraticWeightedKappa, PerGroupReportAndAccuracy) {
  KappaReport report;
  report.add(0, 0, "karolinska");
  report.add(5, 5, "karolinska");
  report.add(1, 3, "radboud");
  report.add(4, 2, "radboud");
  EXPECT_EQ(report.overall.total(), 4);
  EXPECT_DOUBLE_EQ(report.overall.accuracy(), 0.5);
  EXPECT_DOUBLE_EQ(*quadratic_weighted_kappa(report.by_group.at("karolinska")), 1.0);
  EXPECT_EQ(format_kappa(std::nullopt), "undefined");
  EXPECT_EQ(format_kappa(0.81234), "0.8123");
}

TEST(QuadraticWeightedKappa, BadInputIsNamed) {
  ConfusionMatrix m;
  EXPECT_THROW(m.add(6, 0), Error);
  EXPECT_THROW(m.add(0, -1), Error);
  const std::vector<int> a{1, 2}, b{1};
  EXPECT_THROW(quadratic_weighted_kappa(a, b), Error);
  EXPECT_FALSE(quadratic_weighted_kappa(ConfusionMatrix{}).has_value());
}

}  // namespace
}  // namespace sg::grading
