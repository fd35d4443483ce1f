#include "train/plots.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "data/csv.h"
#include "data/image_io.h"
#include "train/chart_canvas.h"

namespace sg::train {
namespace {

// metrics.csv numbers epochs from 0, as the trainer does; people count them from 1 (the progress
// display's "epoch 1/10"), and so do the pictures.
int shown_epoch(int epoch) { return epoch + 1; }

// PNGs are drawn at twice the SVG's size: sharper lines and text.
constexpr double kPngScale = 2;

// ---- numbers -----------------------------------------------------------------------------------

std::string number(double value, const char* format = "%.4g") {
  char text[48];
  std::snprintf(text, sizeof text, format, value);
  return text;
}

bool parse_double(const std::string& text, double& value) {
  if (text.empty()) return false;
  char* end = nullptr;
  errno = 0;
  value = std::strtod(text.c_str(), &end);
  return end == text.c_str() + text.size() && errno != ERANGE;
}

bool parse_int64(const std::string& text, int64_t& value) {
  if (text.empty()) return false;
  char* end = nullptr;
  errno = 0;
  const long long parsed = std::strtoll(text.c_str(), &end, 10);
  value = parsed;
  return end == text.c_str() + text.size() && errno != ERANGE;
}

// Tick positions: a step of 1, 2 or 5 x 10^k giving about `target` intervals over [lo, hi],
// the range widened to whole steps.
struct Ticks {
  double lo, hi, step;
};
Ticks nice_ticks(double lo, double hi, int target, bool integer_steps = false) {
  if (!(hi > lo)) {
    const double pad = lo == 0 ? 1 : std::fabs(lo) * 0.1;
    lo -= pad, hi += pad;
  }
  const double raw = (hi - lo) / target;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = magnitude;
  for (double factor : {1.0, 2.0, 5.0, 10.0})
    if (factor * magnitude >= raw) {
      step = factor * magnitude;
      break;
    }
  if (integer_steps) step = std::max(1.0, std::round(step));
  return {std::floor(lo / step + 1e-9) * step, std::ceil(hi / step - 1e-9) * step, step};
}

std::string tick_label(double value, double step) {
  if (std::fabs(value) < step * 1e-6) value = 0;  // no "-0"
  const int decimals = step >= 1 ? 0 : int(std::ceil(-std::log10(step) - 1e-9));
  char format[16];
  std::snprintf(format, sizeof format, "%%.%df", decimals);
  return number(value, format);
}

// ---- drawing -----------------------------------------------------------------------------------

// The tick values of `ticks` inside [ticks.lo, ticks.hi]: whole multiples of the step.
std::vector<double> tick_values(const Ticks& ticks) {
  std::vector<double> values;
  const double first = std::ceil(ticks.lo / ticks.step - 1e-9);
  for (double k = first; k * ticks.step <= ticks.hi + ticks.step * 1e-6; k += 1) values.push_back(k * ticks.step);
  return values;
}

const Stroke kGridLine{"#e3e3e3", 1};
const Stroke kFrame{"#555555", 1};
const Stroke kNoStroke{"", 0};
const std::string kInk = "#222222", kMutedInk = "#444444", kBestColour = "#d62728";

TextStyle style(double size, const std::string& colour, TextAnchor anchor = TextAnchor::start, bool bold = false) {
  TextStyle s;
  s.size = size, s.colour = colour, s.anchor = anchor, s.bold = bold;
  return s;
}

void draw_title(ChartCanvas& canvas, double centre_x, const std::string& title) {
  canvas.text(centre_x, 30, title, style(18, kInk, TextAnchor::middle, true));
}

struct Series {
  std::string name;
  Stroke stroke;
  std::vector<std::pair<double, std::optional<double>>> points;  // (shown epoch, value); nullopt = gap
};

// A panel of line series against epochs: frame, grid, ticks, axis labels, legend on the right.
struct Panel {
  double left, top, width, height;
  Ticks x, y;
  double sx(double v) const { return left + (v - x.lo) / (x.hi - x.lo) * width; }
  double sy(double v) const { return top + height - (v - y.lo) / (y.hi - y.lo) * height; }
  double legend_x() const { return left + width + 18; }
  double legend_y(size_t entry) const { return top + 14 + 20.0 * double(entry); }
};

void draw_legend_entry(ChartCanvas& canvas, const Panel& panel, size_t entry, const std::string& name,
                       const Stroke& stroke) {
  const double x = panel.legend_x(), y = panel.legend_y(entry);
  canvas.line(x, y - 4, x + 26, y - 4, stroke);
  canvas.text(x + 32, y, name, style(12, kInk));
}

void draw_panel(ChartCanvas& canvas, const Panel& panel, const std::vector<Series>& series, const std::string& y_label,
                const std::string& x_label) {
  for (double v : tick_values(panel.y)) {
    canvas.line(panel.left, panel.sy(v), panel.left + panel.width, panel.sy(v), kGridLine);
    canvas.text(panel.left - 8, panel.sy(v) + 4, tick_label(v, panel.y.step), style(12, kMutedInk, TextAnchor::end));
  }
  for (double v : tick_values(panel.x)) {
    canvas.line(panel.sx(v), panel.top, panel.sx(v), panel.top + panel.height, kGridLine);
    canvas.text(panel.sx(v), panel.top + panel.height + 18, tick_label(v, panel.x.step),
                style(12, kMutedInk, TextAnchor::middle));
  }
  canvas.rect(panel.left, panel.top, panel.width, panel.height, "", kFrame);
  canvas.text(panel.left + panel.width / 2, panel.top + panel.height + 38, x_label, style(13, kInk, TextAnchor::middle));
  TextStyle vertical = style(13, kInk, TextAnchor::middle);
  vertical.vertical = true;
  canvas.text(panel.left - 52, panel.top + panel.height / 2, y_label, vertical);
  // Series: lines broken at gaps, a dot per point with its value as a tooltip.
  for (size_t i = 0; i < series.size(); ++i) {
    const Series& s = series[i];
    std::vector<std::pair<double, double>> run;
    auto flush = [&] {
      if (run.size() > 1) canvas.polyline(run, s.stroke);
      run.clear();
    };
    for (const auto& [epoch, value] : s.points) {
      if (!value || !std::isfinite(*value)) {
        flush();
        continue;
      }
      run.emplace_back(panel.sx(epoch), panel.sy(*value));
    }
    flush();
    for (const auto& [epoch, value] : s.points)
      if (value && std::isfinite(*value))
        canvas.circle(panel.sx(epoch), panel.sy(*value), 3, s.stroke.colour, kNoStroke,
                      "epoch " + number(epoch, "%.0f") + ": " + s.name + " " + number(*value, "%.4f"));
    draw_legend_entry(canvas, panel, i, s.name, s.stroke);
  }
}

const char* const kProviderColours[] = {"#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"};

// The curves picture (900 x 680 units).
constexpr int kCurvesWidth = 900, kCurvesHeight = 680;
void draw_training_curves(ChartCanvas& canvas, const std::vector<MetricsRow>& rows, const std::string& title) {
  Series train_loss{"train loss", {"#1f77b4", 2}, {}};
  Series val_loss{"validation loss", {"#ff7f0e", 2}, {}};
  Series qwk{"validation QWK", {"#2ca02c", 2.5}, {}};
  std::map<std::string, Series> providers;
  double epoch_lo = shown_epoch(rows.front().epoch), epoch_hi = epoch_lo;
  double loss_lo = 0, loss_hi = 0, qwk_lo = 0;
  const MetricsRow* best = nullptr;
  for (const MetricsRow& row : rows) {
    const double x = shown_epoch(row.epoch);
    epoch_lo = std::min(epoch_lo, x);
    epoch_hi = std::max(epoch_hi, x);
    for (double loss : {row.train_loss, row.val_loss})
      if (std::isfinite(loss)) loss_lo = std::min(loss_lo, loss), loss_hi = std::max(loss_hi, loss);
    train_loss.points.emplace_back(x, row.train_loss);
    val_loss.points.emplace_back(x, row.val_loss);
    qwk.points.emplace_back(x, row.val_qwk);
    if (row.val_qwk) {
      qwk_lo = std::min(qwk_lo, *row.val_qwk);
      if (!best || *row.val_qwk > *best->val_qwk) best = &row;
    }
    for (const auto& [provider, kappa] : row.val_qwk_by_provider) {
      auto [it, added] = providers.try_emplace(provider);
      if (added) {
        const char* colour = kProviderColours[(providers.size() - 1) % std::size(kProviderColours)];
        it->second = Series{"QWK " + provider, {colour, 1.5, 6, 4}, {}};
      }
      it->second.points.emplace_back(x, kappa);
      if (kappa) qwk_lo = std::min(qwk_lo, *kappa);
    }
  }
  std::vector<Series> qwk_series = {qwk};
  for (auto& [provider, series] : providers) qwk_series.push_back(std::move(series));

  // Epochs: whole-number ticks, the domain padded so the first and last points clear the frame.
  const double epoch_step = nice_ticks(epoch_lo, epoch_hi, 8, /*integer_steps=*/true).step;
  const double epoch_pad = std::max(0.5, (epoch_hi - epoch_lo) * 0.03);
  const Ticks epochs{epoch_lo - epoch_pad, epoch_hi + epoch_pad, epoch_step};
  const Panel loss_panel{90, 60, 600, 250, epochs, nice_ticks(loss_lo, loss_hi, 5)};
  const Panel qwk_panel{90, 380, 600, 230, epochs, nice_ticks(qwk_lo, 1.0, 5)};

  draw_title(canvas, kCurvesWidth / 2.0, title);
  draw_panel(canvas, loss_panel, {train_loss, val_loss}, "loss", "epoch");
  draw_panel(canvas, qwk_panel, qwk_series, "quadratic weighted kappa", "epoch");
  if (best) {
    // The best epoch: a dashed line through both panels, its point ringed, its QWK written low in
    // the panel (where a rising QWK curve seldom is).
    const Stroke best_line{kBestColour, 1, 3, 3};
    const double x = qwk_panel.sx(shown_epoch(best->epoch));
    for (const Panel* panel : {&loss_panel, &qwk_panel}) canvas.line(x, panel->top, x, panel->top + panel->height, best_line);
    canvas.circle(x, qwk_panel.sy(*best->val_qwk), 5, "", Stroke{kBestColour, 2});
    const bool right_half = x > qwk_panel.left + qwk_panel.width * 0.6;
    canvas.text(x + (right_half ? -8 : 8), qwk_panel.top + qwk_panel.height - 10,
                "best: epoch " + std::to_string(shown_epoch(best->epoch)) + ", QWK " + grading::format_kappa(best->val_qwk),
                style(12, kBestColour, right_half ? TextAnchor::end : TextAnchor::start, true));
    draw_legend_entry(canvas, qwk_panel, qwk_series.size(), "best epoch", best_line);
  }
}

// The confusion picture (690 x 580 units).
constexpr int kConfusionWidth = 690, kConfusionHeight = 580;
void draw_confusion(ChartCanvas& canvas, const grading::ConfusionMatrix& matrix, const std::string& title) {
  constexpr double kLeft = 120, kTop = 80, kCell = 66;
  constexpr double kSide = kCell * grading::kIsupGrades;
  const std::string empty_colour = "#f7fbff", full_colour = "#08306b";
  auto cell_colour = [](double share) {
    // White to dark blue, linear in RGB: #f7fbff at 0, #08306b at 1.
    const int from[3] = {0xf7, 0xfb, 0xff}, to[3] = {0x08, 0x30, 0x6b};
    int rgb[3];
    for (int c = 0; c < 3; ++c) rgb[c] = int(std::lround(from[c] + (to[c] - from[c]) * std::clamp(share, 0.0, 1.0)));
    char colour[16];
    std::snprintf(colour, sizeof colour, "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
    return std::string(colour);
  };
  draw_title(canvas, kConfusionWidth / 2.0, title);
  canvas.text(kLeft + kSide / 2, kTop - 14,
              std::to_string(matrix.total()) + " slides, accuracy " + number(100 * matrix.accuracy(), "%.1f") + "%, QWK " +
                  grading::format_kappa(grading::quadratic_weighted_kappa(matrix)),
              style(13, kMutedInk, TextAnchor::middle));
  for (int t = 0; t < grading::kIsupGrades; ++t) {
    int64_t row_total = 0;
    for (int p = 0; p < grading::kIsupGrades; ++p) row_total += matrix.counts[size_t(t)][size_t(p)];
    for (int p = 0; p < grading::kIsupGrades; ++p) {
      const int64_t count = matrix.counts[size_t(t)][size_t(p)];
      const double share = row_total > 0 ? double(count) / double(row_total) : 0.0;
      const double x = kLeft + p * kCell, y = kTop + t * kCell;
      canvas.rect(x, y, kCell, kCell, cell_colour(share), Stroke{"#ffffff", 1},
                  "true " + std::to_string(t) + ", predicted " + std::to_string(p) + ": " + std::to_string(count) + " (" +
                      number(100 * share, "%.1f") + "% of the row)");
      const std::string ink = share > 0.5 ? "#ffffff" : kInk;
      canvas.text(x + kCell / 2, y + kCell / 2 + 2, std::to_string(count), style(17, ink, TextAnchor::middle, true));
      if (row_total > 0)
        canvas.text(x + kCell / 2, y + kCell / 2 + 19, number(100 * share, "%.0f") + "%", style(11, ink, TextAnchor::middle));
    }
    canvas.text(kLeft - 10, kTop + t * kCell + kCell / 2 + 5, std::to_string(t), style(14, kInk, TextAnchor::end));
    canvas.text(kLeft + kSide + 10, kTop + t * kCell + kCell / 2 + 5, "n = " + std::to_string(row_total),
                style(12, "#555555"));
  }
  // The diagonal (correct grades) outlined, then the frame and the axis labels.
  for (int g = 0; g < grading::kIsupGrades; ++g)
    canvas.rect(kLeft + g * kCell + 1.5, kTop + g * kCell + 1.5, kCell - 3, kCell - 3, "", Stroke{kBestColour, 1.5});
  canvas.rect(kLeft, kTop, kSide, kSide, "", kFrame);
  for (int p = 0; p < grading::kIsupGrades; ++p)
    canvas.text(kLeft + p * kCell + kCell / 2, kTop + kSide + 20, std::to_string(p), style(14, kInk, TextAnchor::middle));
  canvas.text(kLeft + kSide / 2, kTop + kSide + 44, "predicted ISUP grade", style(14, kInk, TextAnchor::middle));
  TextStyle vertical = style(14, kInk, TextAnchor::middle);
  vertical.vertical = true;
  canvas.text(kLeft - 42, kTop + kSide / 2, "true ISUP grade", vertical);
  // Colour scale.
  const double bar_x = kLeft + kSide + 70, bar_width = 16;
  canvas.vertical_gradient(bar_x, kTop, bar_width, kSide, empty_colour, full_colour, kFrame);
  for (int percent = 0; percent <= 100; percent += 25)
    canvas.text(bar_x + bar_width + 6, kTop + kSide * (1 - percent / 100.0) + 4, std::to_string(percent) + "%",
                style(11, kMutedInk));
  canvas.text(bar_x + bar_width / 2, kTop - 10, "share of row", style(11, kMutedInk, TextAnchor::middle));
}

// data::write_png writes atomically itself (core/atomic_file.h).
void write_canvas_png(const std::string& path, const RasterCanvas& canvas) { data::write_png(path, canvas.image()); }

}  // namespace

// ---- metrics.csv -------------------------------------------------------------------------------

std::vector<MetricsRow> read_metrics_csv(const std::string& path) {
  const data::CsvTable table = data::read_csv(path);
  const int epoch_column = table.require_column("epoch");
  const int train_loss_column = table.require_column("train_loss");
  const int val_loss_column = table.require_column("val_loss");
  const int qwk_column = table.require_column("val_qwk");
  const std::string provider_prefix = "val_qwk_";
  std::vector<std::pair<std::string, int>> provider_columns;
  for (size_t i = 0; i < table.header.size(); ++i)
    if (table.header[i].size() > provider_prefix.size() && table.header[i].rfind(provider_prefix, 0) == 0)
      provider_columns.emplace_back(table.header[i].substr(provider_prefix.size()), int(i));

  std::vector<MetricsRow> rows;
  for (const data::CsvRecord& record : table.rows) {
    MetricsRow row;
    row.line = record.line;
    auto fail = [&](int column, const std::string& value, const char* expected) {
      throw Error(detail::concat(path, ": line ", record.line, ", column ", table.header[size_t(column)], ": '",
                                 value, "' is not ", expected));
    };
    auto real = [&](int column) {
      const std::string& text = table.field(record, column);
      double value = 0;
      if (!parse_double(text, value)) fail(column, text, "a number");
      return value;
    };
    auto optional_real = [&](const char* name, double fallback) {
      const int column = table.find_column(name);
      return column < 0 ? fallback : real(column);
    };
    auto kappa = [&](int column) -> std::optional<double> {
      const std::string& text = table.field(record, column);
      if (text.empty() || text == "undefined" || text == "nan" || text == "NaN") return std::nullopt;
      double value = 0;
      if (!parse_double(text, value) || value < -1 - 1e-9 || value > 1 + 1e-9)
        fail(column, text, "a kappa in [-1, 1] (or empty / undefined)");
      return value;
    };
    int64_t epoch = 0;
    const std::string& epoch_text = table.field(record, epoch_column);
    if (!parse_int64(epoch_text, epoch) || epoch < 0 || epoch > 1000000) fail(epoch_column, epoch_text, "an epoch number");
    row.epoch = int(epoch);
    if (const int step_column = table.find_column("step"); step_column >= 0) {
      const std::string& text = table.field(record, step_column);
      if (!parse_int64(text, row.step)) fail(step_column, text, "a step number");
    }
    row.lr = optional_real("lr", 0);
    row.train_loss = real(train_loss_column);
    row.val_loss = real(val_loss_column);
    row.val_qwk = kappa(qwk_column);
    for (const auto& [provider, column] : provider_columns) row.val_qwk_by_provider[provider] = kappa(column);
    row.val_accuracy = optional_real("val_accuracy", 0);
    row.images_per_second = optional_real("images_per_second", 0);
    row.times.total = optional_real("epoch_seconds", 0);
    row.times.load = optional_real("load_seconds", 0);
    row.times.copy = optional_real("copy_seconds", 0);
    row.times.forward = optional_real("forward_seconds", 0);
    row.times.backward = optional_real("backward_seconds", 0);
    row.times.optimizer = optional_real("optimizer_seconds", 0);
    row.times.validation = optional_real("validation_seconds", 0);
    row.device_wait_fraction = optional_real("device_wait_fraction", 0);
    rows.push_back(std::move(row));
  }
  return rows;
}

// ---- confusion.csv -----------------------------------------------------------------------------

void write_confusion_csv(const std::string& path, const grading::ConfusionMatrix& matrix) {
  std::string text = "truth";
  for (int p = 0; p < grading::kIsupGrades; ++p) text.append(",").append(std::to_string(p));
  text += "\n";
  for (int t = 0; t < grading::kIsupGrades; ++t) {
    text += std::to_string(t);
    for (int p = 0; p < grading::kIsupGrades; ++p) text.append(",").append(std::to_string(matrix.counts[size_t(t)][size_t(p)]));
    text += "\n";
  }
  write_file_atomically(path, text);
}

grading::ConfusionMatrix read_confusion_csv(const std::string& path) {
  const data::CsvTable table = data::read_csv(path);
  const std::vector<std::string> expected_header = {"truth", "0", "1", "2", "3", "4", "5"};
  const std::vector<std::string> prefixed_header = {"truth", "pred_0", "pred_1", "pred_2", "pred_3", "pred_4", "pred_5"};
  SG_CHECK(table.header == expected_header || table.header == prefixed_header, path, ": line ", table.header_line,
           ": the header must be 'truth,0,1,2,3,4,5' (rows: true grade; columns: predicted grade)");
  SG_CHECK(table.rows.size() == size_t(grading::kIsupGrades), path, ": ", table.rows.size(),
           " rows after the header; expected 6, one per true grade 0-5");
  grading::ConfusionMatrix matrix;
  for (int t = 0; t < grading::kIsupGrades; ++t) {
    const data::CsvRecord& record = table.rows[size_t(t)];
    SG_CHECK(record.fields.size() == size_t(grading::kIsupGrades + 1), path, ": line ", record.line, ": ",
             record.fields.size(), " fields; expected 7 (the true grade and 6 counts)");
    SG_CHECK(record.fields[0] == std::to_string(t), path, ": line ", record.line, ": row for true grade '",
             record.fields[0], "'; expected grade ", t, " (rows 0-5 in order)");
    for (int p = 0; p < grading::kIsupGrades; ++p) {
      const std::string& text = record.fields[size_t(p + 1)];
      int64_t count = 0;
      SG_CHECK(parse_int64(text, count) && count >= 0, path, ": line ", record.line, ", predicted ", p, ": '", text,
               "' is not a non-negative integer count");
      matrix.counts[size_t(t)][size_t(p)] = count;
    }
  }
  return matrix;
}

// ---- pictures ----------------------------------------------------------------------------------

void write_training_curves_svg(const std::string& path, const std::vector<MetricsRow>& rows, const std::string& title) {
  SG_CHECK(!rows.empty(), path, ": no epochs to draw (metrics has no rows)");
  SvgCanvas canvas(kCurvesWidth, kCurvesHeight, title);
  draw_training_curves(canvas, rows, title);
  write_file_atomically(path, canvas.document());
}

void write_training_curves_png(const std::string& path, const std::vector<MetricsRow>& rows, const std::string& title) {
  SG_CHECK(!rows.empty(), path, ": no epochs to draw (metrics has no rows)");
  RasterCanvas canvas(kCurvesWidth, kCurvesHeight, kPngScale);
  draw_training_curves(canvas, rows, title);
  write_canvas_png(path, canvas);
}

void write_confusion_svg(const std::string& path, const grading::ConfusionMatrix& matrix, const std::string& title) {
  SvgCanvas canvas(kConfusionWidth, kConfusionHeight, title);
  draw_confusion(canvas, matrix, title);
  write_file_atomically(path, canvas.document());
}

void write_confusion_png(const std::string& path, const grading::ConfusionMatrix& matrix, const std::string& title) {
  RasterCanvas canvas(kConfusionWidth, kConfusionHeight, kPngScale);
  draw_confusion(canvas, matrix, title);
  write_canvas_png(path, canvas);
}

std::vector<std::string> write_run_plots(const std::string& run_dir, bool png) {
  const std::filesystem::path dir(run_dir);
  const std::vector<MetricsRow> rows = read_metrics_csv((dir / "metrics.csv").string());
  std::string name = dir.filename().string();
  if (name.empty() || name == ".") name = dir.parent_path().filename().string();
  if (name.empty() || name == ".") name = std::filesystem::absolute(dir).lexically_normal().parent_path().filename().string();
  const std::string curves_title = name.empty() ? "training curves" : "training curves: " + name;
  std::vector<std::string> written;
  written.push_back((dir / "curves.svg").string());
  write_training_curves_svg(written.back(), rows, curves_title);
  if (png) {
    written.push_back((dir / "curves.png").string());
    write_training_curves_png(written.back(), rows, curves_title);
  }

  const std::filesystem::path confusion_csv = dir / "confusion.csv";
  if (std::filesystem::exists(confusion_csv)) {
    const grading::ConfusionMatrix matrix = read_confusion_csv(confusion_csv.string());
    const MetricsRow* best = nullptr;
    for (const MetricsRow& row : rows)
      if (row.val_qwk && (!best || *row.val_qwk > *best->val_qwk)) best = &row;
    const std::string title = best ? "validation, best epoch " + std::to_string(shown_epoch(best->epoch)) + " (QWK " +
                                         grading::format_kappa(best->val_qwk) + ")"
                                   : std::string("validation confusion matrix");
    written.push_back((dir / "confusion.svg").string());
    write_confusion_svg(written.back(), matrix, title);
    if (png) {
      written.push_back((dir / "confusion.png").string());
      write_confusion_png(written.back(), matrix, title);
    }
  }
  return written;
}

}  // namespace sg::train
