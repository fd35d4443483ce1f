#include "grading/head.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <vector>

#include "core/error.h"

namespace sg::grading {

HeadKind parse_head_kind(std::string_view name) { return parse_word(kHeadKindWords, name); }

const char* head_kind_name(HeadKind kind) { return word_of(kHeadKindWords, kind).data(); }

int head_outputs(HeadKind kind) {
  switch (kind) {
    case HeadKind::softmax: return 6;
    case HeadKind::binned: return 5;
    case HeadKind::regression: return 1;
  }
  return 0;
}

Thresholds parse_thresholds(std::string_view text) {
  std::vector<float> values;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    std::string_view part = text.substr(start, comma - start);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
    float value = 0;
    const auto [end, error] = std::from_chars(part.data(), part.data() + part.size(), value);
    SG_CHECK(error == std::errc() && end == part.data() + part.size() && std::isfinite(value), "thresholds '", text,
             "': '", part, "' is not a number (expected 5 comma-separated numbers, e.g. 0.5,1.5,2.5,3.5,4.5)");
    values.push_back(value);
    start = comma + 1;
  }
  SG_CHECK(values.size() == 5, "thresholds '", text, "': ", values.size(), " numbers, expected 5");
  Thresholds t{};
  for (size_t i = 0; i < 5; ++i) {
    t[i] = values[i];
    SG_CHECK(i == 0 || t[i] >= t[i - 1], "thresholds '", text, "': must not decrease");
  }
  return t;
}

std::string thresholds_text(const Thresholds& thresholds) {
  std::string text;
  char buffer[32];
  for (size_t i = 0; i < thresholds.size(); ++i) {
    std::snprintf(buffer, sizeof buffer, "%.6g", double(thresholds[i]));
    if (i) text.push_back(',');
    text.append(buffer);
  }
  return text;
}

void head_targets(HeadKind kind, int grade, std::span<float> targets) {
  SG_CHECK(grade >= 0 && grade <= 5, "head targets: grade ", grade, " is not 0-5");
  const size_t expected = kind == HeadKind::softmax ? 1 : size_t(head_outputs(kind));
  SG_CHECK(targets.size() == expected, "head targets: ", head_kind_name(kind), " needs ", expected, " target values, got ",
           targets.size());
  switch (kind) {
    case HeadKind::softmax: targets[0] = float(grade); break;
    case HeadKind::binned:
      for (int k = 0; k < 5; ++k) targets[size_t(k)] = k < grade ? 1.0f : 0.0f;
      break;
    case HeadKind::regression: targets[0] = float(grade); break;
  }
}

double head_score(HeadKind kind, std::span<const float> logits) {
  SG_CHECK(logits.size() == size_t(head_outputs(kind)), "head score: ", head_kind_name(kind), " has ", head_outputs(kind),
           " outputs, got ", logits.size());
  switch (kind) {
    case HeadKind::softmax: {
      const float top = *std::max_element(logits.begin(), logits.end());
      double total = 0, weighted = 0;
      for (size_t k = 0; k < logits.size(); ++k) {
        const double p = std::exp(double(logits[k]) - top);
        total += p;
        weighted += double(k) * p;
      }
      return weighted / total;
    }
    case HeadKind::binned: {
      double sum = 0;
      for (float z : logits) sum += 1.0 / (1.0 + std::exp(-double(z)));
      return sum;
    }
    case HeadKind::regression: return double(logits[0]);
  }
  return 0.0;
}

int grade_from_score(double score, const Thresholds& thresholds) {
  int grade = 0;
  for (float t : thresholds) grade += score >= double(t) ? 1 : 0;
  return grade;
}

int head_grade(HeadKind kind, std::span<const float> logits, const Thresholds& thresholds, bool use_thresholds) {
  if (kind == HeadKind::softmax && !use_thresholds) {
    SG_CHECK(logits.size() == 6, "head grade: softmax has 6 outputs, got ", logits.size());
    return int(std::max_element(logits.begin(), logits.end()) - logits.begin());
  }
  return grade_from_score(head_score(kind, logits), thresholds);
}

}  // namespace sg::grading
