// The end-of-training time report: mean seconds per part, shares of the epoch, the device wait.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "train/time_report.h"

namespace sg::train {
namespace {

// The share column of each table row ("  loading  12.3  41.0%"), by part name.
std::vector<std::pair<std::string, double>> shares(const std::string& report) {
  std::vector<std::pair<std::string, double>> rows;
  std::istringstream lines(report);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.size() < 3 || line.back() != '%' || line.rfind("  ", 0) != 0) continue;
    const size_t percent_start = line.find_last_of(' ', line.size() - 2) + 1;
    const double share = std::stod(line.substr(percent_start, line.size() - 1 - percent_start));
    const std::string rest = line.substr(2, percent_start - 2);
    const size_t name_end = rest.find_last_not_of(" 0123456789.") + 1;
    rows.emplace_back(rest.substr(0, name_end), share);
  }
  return rows;
}

TEST(TimeReport, SharesOfThePartsSumToAHundred) {
  const std::vector<EpochTimes> epochs = {{10, 1, 5, 8, 1, 2, 30}, {14, 1, 5, 8, 1, 2, 34}};
  const std::string report = format_time_report(epochs, 0.25);
  const auto rows = shares(report);
  ASSERT_EQ(rows.size(), 8u) << report;  // six parts, other, epoch
  double sum = 0;
  for (const auto& [name, share] : rows)
    if (name != "epoch") sum += share;
  EXPECT_NEAR(sum, 100.0, 0.5) << report;
  EXPECT_EQ(rows[0].first, "loading");
  EXPECT_NEAR(rows[0].second, 100.0 * 12 / 32, 0.051) << report;  // mean load 12 of a mean epoch of 32
  EXPECT_EQ(rows[6].first, "other");
  EXPECT_NEAR(rows[6].second, 100.0 * 3 / 32, 0.051) << report;
  EXPECT_EQ(rows[7].first, "epoch");
  EXPECT_DOUBLE_EQ(rows[7].second, 100.0);
  EXPECT_NE(report.find("(2 epochs"), std::string::npos) << report;
  EXPECT_NE(report.find("12.0"), std::string::npos) << report;
  EXPECT_NE(report.find("the device waited for data 25.0% of the time"), std::string::npos) << report;
}

TEST(TimeReport, PartsThatFillTheEpochLeaveNoOtherRow) {
  const std::string report = format_time_report({{2, 1, 3, 3, 0.5, 0.5, 10}}, 0.0);
  const auto rows = shares(report);
  ASSERT_EQ(rows.size(), 7u) << report;
  for (const auto& [name, share] : rows) EXPECT_NE(name, "other");
  EXPECT_NE(report.find("(1 epoch,"), std::string::npos) << report;
  EXPECT_NE(report.find("waited for data 0.0%"), std::string::npos) << report;
}

TEST(TimeReport, OverlappingPartsAreSaidToOverlap) {
  // A copy stream running beside compute: the parts add up to more than the epoch.
  const std::string report = format_time_report({{6, 4, 3, 3, 1, 1, 10}}, 0.6);
  EXPECT_NE(report.find("the parts overlap: they add up to 180.0% of the epoch"), std::string::npos) << report;
  for (const auto& [name, share] : shares(report)) EXPECT_NE(name, "other");
}

TEST(TimeReport, UnmeasuredWaitAndNoEpochs) {
  const std::string report = format_time_report({{1, 1, 1, 1, 1, 1, 6}}, -1);
  EXPECT_EQ(report.find("waited"), std::string::npos) << report;
  EXPECT_NE(format_time_report({}, 0.5).find("no epoch was timed"), std::string::npos);
  EXPECT_NE(format_time_report({}, 0.5).find("waited for data 50.0%"), std::string::npos);
}

}  // namespace
}  // namespace sg::train
