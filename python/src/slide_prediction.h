#pragma once
// One slide's prediction as the dict that grade() lists and Model.grade_slide returns.
#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>

#include <string>
#include <vector>

#include "infer/predictor.h"

namespace sg::python {

namespace nb = nanobind;

// {'image_id', 'path', 'ok', 'error', 'grade', 'score', 'outputs'}; outputs maps the predictor's
// output names (p0..p5, sigmoid1..sigmoid5 or output) to their values.
inline nb::dict slide_prediction_dict(const infer::SlidePrediction& p, const std::vector<std::string>& names) {
  nb::dict d;
  d["image_id"] = p.image_id;
  d["path"] = p.path;
  d["ok"] = p.ok;
  d["error"] = p.error;
  d["grade"] = p.grade;
  d["score"] = p.score;
  nb::dict outputs;
  for (size_t k = 0; k < p.outputs.size() && k < names.size(); ++k) outputs[names[k].c_str()] = p.outputs[k];
  d["outputs"] = outputs;
  return d;
}

}  // namespace sg::python
