#include "grading/quadratic_weighted_kappa.h"

#include <cstdio>

#include "core/error.h"

namespace sg::grading {

void ConfusionMatrix::add(int truth, int prediction) {
  SG_CHECK(truth >= 0 && truth < kIsupGrades && prediction >= 0 && prediction < kIsupGrades,
           "quadratic weighted kappa: grades must be 0..5, got truth ", truth, " and prediction ", prediction);
  ++counts[size_t(truth)][size_t(prediction)];
}

int64_t ConfusionMatrix::total() const {
  int64_t n = 0;
  for (const auto& row : counts)
    for (int64_t c : row) n += c;
  return n;
}

double ConfusionMatrix::accuracy() const {
  const int64_t n = total();
  if (n == 0) return 0.0;
  int64_t diagonal = 0;
  for (int i = 0; i < kIsupGrades; ++i) diagonal += counts[size_t(i)][size_t(i)];
  return double(diagonal) / double(n);
}

std::optional<double> quadratic_weighted_kappa(const ConfusionMatrix& matrix) {
  const int64_t n = matrix.total();
  if (n == 0) return std::nullopt;
  std::array<double, kIsupGrades> row_sums{}, column_sums{};
  for (int i = 0; i < kIsupGrades; ++i)
    for (int j = 0; j < kIsupGrades; ++j) {
      row_sums[size_t(i)] += double(matrix.counts[size_t(i)][size_t(j)]);
      column_sums[size_t(j)] += double(matrix.counts[size_t(i)][size_t(j)]);
    }
  double observed = 0, expected = 0;
  for (int i = 0; i < kIsupGrades; ++i)
    for (int j = 0; j < kIsupGrades; ++j) {
      const double weight = double((i - j) * (i - j));
      observed += weight * double(matrix.counts[size_t(i)][size_t(j)]);
      expected += weight * row_sums[size_t(i)] * column_sums[size_t(j)] / double(n);
    }
  if (expected == 0.0) return std::nullopt;
  return 1.0 - observed / expected;
}

std::optional<double> quadratic_weighted_kappa(std::span<const int> truth, std::span<const int> prediction) {
  SG_CHECK(truth.size() == prediction.size(), "quadratic weighted kappa: ", truth.size(), " true grades but ",
           prediction.size(), " predictions");
  ConfusionMatrix matrix;
  for (size_t i = 0; i < truth.size(); ++i) matrix.add(truth[i], prediction[i]);
  return quadratic_weighted_kappa(matrix);
}

void KappaReport::add(int truth, int prediction, const std::string& group) {
  overall.add(truth, prediction);
  by_group[group].add(truth, prediction);
}

std::string format_kappa(const std::optional<double>& kappa) {
  if (!kappa) return "undefined";
  char text[32];
  std::snprintf(text, sizeof text, "%.4f", *kappa);
  return text;
}

}  // namespace sg::grading
