// The trainer behind slidegrade.train() (python/slidegrade/__init__.py turns the config dict and the
// keyword arguments into `slidegrade train`'s flags, parsed here by the CLI's own parser).
//
// Ctrl-C: Python's SIGINT handler only sets a flag while the trainer runs without the GIL, so every
// trainer event checks it (PyErr_CheckSignals) and raises KeyboardInterrupt from there: the
// exception unwinds the trainer like any error, its files are written atomically, and the run
// folder holds the last completed epoch's checkpoint, resumable with train(..., resume=True).
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <string>
#include <vector>

#include "python/src/bindings.h"
#include "train/run_config_cli.h"
#include "train/trainer.h"

namespace sg::python {

namespace {

nb::object optional_number(const std::optional<double>& value) { return value ? nb::cast(*value) : nb::none(); }

nb::dict step_dict(const train::StepEvent& e) {
  nb::dict d;
  d["kind"] = "step";
  d["epoch"] = e.epoch;
  d["epochs"] = e.epochs;
  d["batch"] = e.batch;
  d["batches"] = e.batches;
  d["images"] = e.images;
  d["seconds"] = e.seconds;
  d["loss"] = e.loss;
  d["lr"] = e.lr;
  d["device_bytes_in_use"] = e.device_bytes_in_use;
  d["device_bytes_peak"] = e.device_bytes_peak;
  return d;
}

nb::dict epoch_dict(const train::EpochEvent& e) {
  nb::dict d;
  d["kind"] = "epoch";
  d["epoch"] = e.epoch;
  d["epochs"] = e.epochs;
  d["train_loss"] = e.train_loss;
  d["val_loss"] = e.val_loss;
  d["val_qwk"] = optional_number(e.val_qwk);
  nb::dict by_provider;
  for (const auto& [provider, qwk] : e.val_qwk_by_provider) by_provider[provider.c_str()] = optional_number(qwk);
  d["val_qwk_by_provider"] = by_provider;
  d["val_accuracy"] = e.val_accuracy;
  nb::list confusion;
  for (const auto& row : e.confusion.counts) {
    nb::list r;
    for (const int64_t count : row) r.append(count);
    confusion.append(r);
  }
  d["confusion"] = confusion;
  d["best"] = e.best;
  d["seconds"] = e.seconds;
  return d;
}

nb::dict fold_dict(const train::FoldResult& r) {
  nb::dict d;
  d["fold"] = r.fold;
  d["run_dir"] = r.run_dir;
  d["best_qwk"] = optional_number(r.best_qwk);
  d["best_epoch"] = r.best_epoch;
  d["best_weights"] = r.best_weights;
  d["skipped_slides"] = nb::cast(r.skipped_slides);
  d["time_report"] = r.time_report;
  return d;
}

// Called with the GIL held: Ctrl-C first, then the caller's callback (its exception, too, stops
// the run and reaches the caller).
void report(const nb::object& progress, const nb::object& event) {
  if (PyErr_CheckSignals() != 0) throw nb::python_error();
  if (!progress.is_none()) progress(event);
}

}  // namespace

void bind_train(nb::module_& m) {
  m.def(
      "_train",
      [](const std::vector<std::string>& arguments, const std::string& resume_dir, nb::object progress) {
        // As `slidegrade train` reads its flags, or with --resume RUNDIR its saved config under them.
        train::TrainOptions options;
        options.resume = !resume_dir.empty();
        train::RunConfig run = options.resume ? train::resume_run_config(resume_dir, arguments)
                                              : train::parse_run_config_arguments(arguments);
        if (options.resume) run.out = resume_dir;
        train::TrainerEvents events;
        events.message = [&progress](const std::string& text) {
          nb::gil_scoped_acquire acquire;
          nb::dict d;
          d["kind"] = "message";
          d["text"] = text;
          report(progress, d);
        };
        events.step = [&progress](const train::StepEvent& e) {
          nb::gil_scoped_acquire acquire;
          report(progress, step_dict(e));
        };
        events.epoch = [&progress](const train::EpochEvent& e) {
          nb::gil_scoped_acquire acquire;
          report(progress, epoch_dict(e));
        };
        std::vector<train::FoldResult> results;
        {
          nb::gil_scoped_release release;
          results = train::run_training(run, options, events);
        }
        nb::list out;
        for (const train::FoldResult& r : results) out.append(fold_dict(r));
        return out;
      },
      nb::arg("arguments"), nb::arg("resume_dir"), nb::arg("progress").none(),
      "The trainer with `slidegrade train`'s flags (use slidegrade.train()).");
}

}  // namespace sg::python
