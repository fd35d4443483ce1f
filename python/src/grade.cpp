// grade() (`slidegrade grade`), evaluate() (`slidegrade evaluate`) and qwk(), PANDA's metric.
#include <nanobind/ndarray.h>
#include <nanobind/stl/filesystem.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "data/grades_csv.h"
#include "grading/grade_evaluation.h"
#include "grading/quadratic_weighted_kappa.h"
#include "infer/grade_shards.h"
#include "infer/predictor.h"
#include "infer/slide_list.h"
#include "python/src/arguments.h"
#include "python/src/bindings.h"
#include "python/src/errors.h"
#include "python/src/slide_prediction.h"

namespace sg::python {

namespace {

nb::object kappa_value(const std::optional<double>& kappa) { return kappa ? nb::cast(*kappa) : nb::cast(NAN); }

nb::list matrix_list(const grading::ConfusionMatrix& m) {
  nb::list rows;
  for (const auto& row : m.counts) {
    nb::list r;
    for (const int64_t count : row) r.append(count);
    rows.append(r);
  }
  return rows;
}

// Grades as ints 0..5, from any sequence of integers (a list, a NumPy array of any integer dtype).
std::vector<int> grade_list(nb::handle values, const char* name) {
  std::vector<int> out;
  try {
    for (nb::handle v : nb::iter(values)) {
      if (PyFloat_Check(v.ptr()) && std::floor(nb::cast<double>(v)) != nb::cast<double>(v))
        throw UsageError(detail::concat("qwk: ", name, " holds ", nb::cast<double>(v), ", expected ISUP grades 0..5"));
      out.push_back(nb::cast<int>(nb::int_(v)));
    }
  } catch (const nb::python_error& e) {
    throw UsageError(detail::concat("qwk: ", name, " must be a sequence of ISUP grades 0..5 (", e.what(), ")"));
  } catch (const nb::cast_error&) {
    throw UsageError(detail::concat("qwk: ", name, " must be a sequence of ISUP grades 0..5"));
  }
  return out;
}

}  // namespace

void bind_grade(nb::module_& m) {
  m.def(
      "_grade",
      [](const std::vector<std::string>& models, const std::string& data_dir, const std::string& tta,
         const std::string& out, const std::string& details, const std::string& device, const std::string& memory_limit,
         int batch, int threads, const std::string& shard_text, nb::object progress) {
        const std::optional<infer::GradeShard> shard =
            shard_text.empty() ? std::nullopt : std::optional(infer::parse_grade_shard(shard_text));
        infer::PredictorOptions options;
        options.tta = as_argument_error([&] { return infer::parse_tta_mode(tta); });
        options.device = device_argument(device);
        const size_t limit = memory_limit_argument(memory_limit);
        if (batch < 1) throw UsageError(detail::concat("grade: batch must be at least 1, got ", batch));
        if (threads < 0) throw UsageError(detail::concat("grade: threads must not be negative, got ", threads));
        options.batch = batch;
        options.threads = threads;
        std::vector<infer::SlidePrediction> rows;
        std::vector<std::string> names;
        std::vector<std::string> providers;
        {
          nb::gil_scoped_release release;
          const infer::SlidesToGrade all = infer::list_slides_to_grade(data_dir);  // a bad folder fails fast
          const infer::SlidesToGrade list = shard ? infer::grade_shard(all, *shard) : all;
          // The cap covers the models' weights too, so it is set before they are loaded (as the command does).
          const ScopedMemoryLimit cap(options.device, limit);
          const infer::Predictor predictor(models, options);
          rows = predictor.predict(list.slides, [&progress](int64_t done, int64_t total) {
            nb::gil_scoped_acquire acquire;
            if (PyErr_CheckSignals() != 0) throw nb::python_error();
            if (!progress.is_none()) progress(done, total);
          });
          names = predictor.output_names();
          providers = list.providers;
          if (!out.empty()) {
            std::vector<data::SlideGrade> grades;
            for (const infer::SlidePrediction& p : rows) grades.push_back({p.image_id, p.grade, 0});
            data::write_grades_csv(out, grades);
          }
          if (!details.empty()) infer::write_details_csv(details, list, rows, names);
        }
        nb::list result;
        for (size_t i = 0; i < rows.size(); ++i) {
          const infer::SlidePrediction& p = rows[i];
          nb::dict d = slide_prediction_dict(p, names);
          d["data_provider"] = i < providers.size() ? providers[i] : std::string();
          result.append(d);
        }
        return result;
      },
      nb::arg("models"), nb::arg("data"), nb::arg("tta"), nb::arg("out"), nb::arg("details"), nb::arg("device"),
      nb::arg("memory_limit"), nb::arg("batch"), nb::arg("threads"), nb::arg("shard"), nb::arg("progress").none(),
      "The grader behind slidegrade.grade().");

  m.def(
      "merge_grades",
      [](const std::filesystem::path& out, const std::vector<std::filesystem::path>& parts,
         const std::filesystem::path& data_dir) {
        std::vector<std::string> part_names;
        for (const std::filesystem::path& part : parts) part_names.push_back(part.string());
        size_t slides = 0;
        {
          nb::gil_scoped_release release;
          const infer::SlidesToGrade all = infer::list_slides_to_grade(data_dir.string());
          const std::vector<data::SlideGrade> merged = infer::merge_grade_parts(all, part_names);
          data::write_grades_csv(out.string(), merged);
          slides = merged.size();
        }
        return slides;
      },
      nb::arg("out"), nb::arg("parts"), nb::arg("data"),
      "Joins the submissions of grade(..., shard='K/N') into `out`, exactly the submission one unsharded run "
      "writes (`data`: the folder graded, for the slides and their order), as `slidegrade merge-grades` does. "
      "Returns the number of slides. Raises slidegrade.Error naming the slides of parts that overlap, slides in no "
      "part, and slides not in `data`.");

  m.def(
      "evaluate",
      [](const std::filesystem::path& truth, const std::filesystem::path& pred, bool partial) {
        grading::GradeEvaluation evaluation;
        {
          nb::gil_scoped_release release;
          evaluation = grading::evaluate_grades(truth.string(), pred.string(), partial);
        }
        const grading::KappaReport& report = evaluation.report;
        nb::dict d;
        d["slides"] = report.overall.total();
        d["missing"] = evaluation.missing;
        d["qwk"] = kappa_value(grading::quadratic_weighted_kappa(report.overall));
        d["accuracy"] = report.overall.accuracy();
        nb::dict by_provider;
        for (const auto& [provider, matrix] : report.by_group) {
          nb::dict p;
          p["qwk"] = kappa_value(grading::quadratic_weighted_kappa(matrix));
          p["slides"] = matrix.total();
          p["accuracy"] = matrix.accuracy();
          by_provider[provider.c_str()] = p;
        }
        d["by_provider"] = by_provider;
        d["confusion"] = matrix_list(report.overall);
        d["warnings"] = nb::cast(evaluation.warnings);
        return d;
      },
      nb::arg("truth"), nb::arg("pred"), nb::arg("partial") = false,
      "`slidegrade evaluate`: predicted grades (a submission CSV, image_id,isup_grade) against the truth (a PANDA "
      "train.csv-style file). Returns {'slides', 'missing', 'qwk', 'accuracy', 'by_provider': {provider: {'qwk', "
      "'slides', 'accuracy'}}, 'confusion' (6x6, rows truth, columns prediction), 'warnings'}. A QWK that is "
      "undefined (one same grade throughout) is nan. partial=True scores only the predicted slides.");

  m.def(
      "qwk",
      [](nb::handle y_true, nb::handle y_pred) {
        const std::vector<int> truth = grade_list(y_true, "y_true");
        const std::vector<int> prediction = grade_list(y_pred, "y_pred");
        if (truth.size() != prediction.size())
          throw UsageError(
              detail::concat("qwk: y_true has ", truth.size(), " grades but y_pred has ", prediction.size()));
        return kappa_value(as_argument_error([&] { return grading::quadratic_weighted_kappa(truth, prediction); }));
      },
      nb::arg("y_true"), nb::arg("y_pred"),
      "Quadratic weighted kappa over ISUP grades 0..5 (PANDA's metric), equal to scikit-learn's "
      "cohen_kappa_score(y_true, y_pred, labels=range(6), weights='quadratic'); nan where it is undefined "
      "(one same grade throughout).");
}

}  // namespace sg::python
