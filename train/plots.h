#pragma once
// A run's pictures and the small tables they are drawn from (issue 6, item 2): the loss and QWK
// curves from metrics.csv and the validation confusion matrix from confusion.csv, as SVG (text
// written by hand: axes, ticks, grid, legend, title, a tooltip on every point and cell; any
// browser or rsvg-convert shows them) and as PNG.
//
// confusion.csv, exactly (written by write_confusion_csv, read by read_confusion_csv):
//   truth,0,1,2,3,4,5
//   0,c00,c01,c02,c03,c04,c05
//   ...
//   5,c50,c51,c52,c53,c54,c55
// a header row, then one row per true ISUP grade 0..5 in order: the grade, then the count of
// slides of that grade predicted as grade 0..5 (non-negative integers). LF line ends. The reader
// also takes the header "truth,pred_0,...,pred_5".
//
// metrics.csv: the columns train/trainer.h lists. read_metrics_csv needs epoch, train_loss,
// val_loss and val_qwk; every other listed column is optional (0 when absent), any column
// "val_qwk_<provider>" is a provider's QWK, and columns it does not know are ignored. An empty
// QWK field, "undefined" or "nan" reads as undefined (nullopt).
//
// Epochs: metrics.csv numbers them from 0 (train/trainer.cpp); the pictures show them counted
// from 1 (the first epoch is "epoch 1"), like the progress display.
//
// Every file is written atomically (core/atomic_file.h): a kill or a power cut leaves the previous
// version or the new one.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "grading/quadratic_weighted_kappa.h"
#include "train/time_report.h"

namespace sg::train {

// One row of metrics.csv: one epoch.
struct MetricsRow {
  int epoch = 0;  // as in the file: from 0
  int64_t step = 0;
  double lr = 0;
  double train_loss = 0, val_loss = 0;
  std::optional<double> val_qwk;
  std::map<std::string, std::optional<double>> val_qwk_by_provider;  // "karolinska" -> QWK
  double val_accuracy = 0;
  double images_per_second = 0;
  EpochTimes times;  // load_seconds ... validation_seconds; total = epoch_seconds
  double device_wait_fraction = 0;
  int line = 0;  // the line of metrics.csv it was read from
};

// Throws sg::Error naming the file (and the line, column and value) for a missing file, a
// missing required column, or a field that is not a number.
std::vector<MetricsRow> read_metrics_csv(const std::string& path);

// The format above; throws sg::Error naming the path when it cannot be written.
void write_confusion_csv(const std::string& path, const grading::ConfusionMatrix& matrix);
// Throws sg::Error naming the file and line for another header, a missing or repeated grade
// row, a row of another length or a count that is not a non-negative integer.
grading::ConfusionMatrix read_confusion_csv(const std::string& path);

// Loss curves (train, validation) in the upper panel, QWK (overall and per provider) in the
// lower one, epochs along x; the best epoch by validation QWK is marked. Undefined QWKs leave
// gaps. `title` heads the picture. Throws sg::Error when there are no rows or the file cannot
// be written.
void write_training_curves_svg(const std::string& path, const std::vector<MetricsRow>& rows,
                               const std::string& title = "training curves");

// A 6 x 6 heat map: rows "true ISUP grade", columns "predicted", each cell's colour its share
// of its row (row-normalised), its count written in it; row totals on the right.
void write_confusion_svg(const std::string& path, const grading::ConfusionMatrix& matrix,
                         const std::string& title = "confusion matrix");

// The same pictures as PNG (twice the SVG's size, drawn with OpenCV: train/chart_canvas.h), for
// viewers without SVG. Errors as above.
void write_training_curves_png(const std::string& path, const std::vector<MetricsRow>& rows,
                               const std::string& title = "training curves");
void write_confusion_png(const std::string& path, const grading::ConfusionMatrix& matrix,
                         const std::string& title = "confusion matrix");

// Reads RUNDIR/metrics.csv and writes RUNDIR/curves.svg (and curves.png when `png`); when
// RUNDIR/confusion.csv exists, also RUNDIR/confusion.svg (and .png), titled with the best epoch
// and its QWK. Returns the paths written.
std::vector<std::string> write_run_plots(const std::string& run_dir, bool png = true);

}  // namespace sg::train
