#pragma once
// Quadratic weighted kappa, PANDA's metric, over ISUP grades 0..5 (docs/panda_and_openslide.md, section 6):
//   O = confusion matrix (rows: truth, columns: prediction),
//   E = outer(row sums of O, column sums of O) / N,  W_ij = (i - j)^2,
//   kappa = 1 - sum(W * O) / sum(W * E),
// undefined (nullopt) when sum(W * E) = 0, e.g. when truth and prediction are one same grade
// throughout. The matrix is always 6 x 6, so grades absent from both sides still count, exactly as
// scikit-learn's cohen_kappa_score(truth, pred, labels=range(6), weights="quadratic").
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>

namespace sg::grading {

constexpr int kIsupGrades = 6;

struct ConfusionMatrix {
  std::array<std::array<int64_t, kIsupGrades>, kIsupGrades> counts{};  // [truth][prediction]

  // Throws sg::Error for a grade outside 0..5.
  void add(int truth, int prediction);
  int64_t total() const;
  // Share of the diagonal; 0 for an empty matrix.
  double accuracy() const;
};

std::optional<double> quadratic_weighted_kappa(const ConfusionMatrix& matrix);
// truth and prediction have the same length; throws sg::Error otherwise.
std::optional<double> quadratic_weighted_kappa(std::span<const int> truth, std::span<const int> prediction);

// QWK overall and per group (PANDA reports it per data_provider).
struct KappaReport {
  ConfusionMatrix overall;
  std::map<std::string, ConfusionMatrix> by_group;
  void add(int truth, int prediction, const std::string& group);
};

// "0.8123", or "undefined" where the kappa is.
std::string format_kappa(const std::optional<double>& kappa);

}  // namespace sg::grading
