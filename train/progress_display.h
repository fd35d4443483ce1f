#pragma once
// The training progress display (issue 6, item 2): fed by the trainer's StepEvent / EpochEvent
// (train/trainer.h), it writes to a FILE* given at construction.
//
// On a terminal, one line redrawn in place with '\r' (padded with spaces over a longer previous
// line), e.g.
//   epoch 3/10 [#########.........] 45% 120/266 batches, 18.3 img/s, loss 0.812, lr 2.4e-4, ETA 1:23, device 1.2/3.9 GiB
// the bar filling what the width leaves; the device part ("in use/peak") is left out when the
// event's bytes are 0. ETA = remaining batches x the epoch's mean seconds per batch so far.
// Elsewhere (a log file, a pipe), plain lines without '\r' and without the bar: one each time the epoch passes
// another `plain_percent_step` percent or `plain_interval_seconds` after the previous line,
// whichever comes first, and one for the epoch's last batch. Times come from the events
// (StepEvent::seconds), so the display is deterministic under test.
//
// Events number epochs from 0 (train/trainer.cpp); the display counts them from 1, so the first
// of ten epochs is "epoch 1/10" and the last "epoch 10/10".
//
// After each epoch one summary line from EpochEvent, e.g.
//   epoch 3/10 done in 2:41: train loss 0.812, val loss 0.901, QWK 0.7312 (karolinska 0.7012, radboud 0.7598), accuracy 61.2% * best
#include <cstdio>
#include <mutex>
#include <optional>
#include <string>

#include "train/trainer.h"

namespace sg::train {

struct ProgressDisplayOptions {
  // nullopt: a terminal when isatty(fileno(out)); true / false force either mode (tests).
  std::optional<bool> terminal = std::nullopt;
  // nullopt: the COLUMNS environment variable, else the terminal's width (TIOCGWINSZ), else 100.
  std::optional<int> width = std::nullopt;
  // Plain-line mode: a line at the latest this many seconds after the previous one...
  double plain_interval_seconds = 30;
  // ...and each time the epoch passes another this many percent.
  double plain_percent_step = 10;
  // Terminal mode: redraw at most this often (the epoch's last batch is always drawn).
  double redraw_interval_seconds = 0.1;
};

class ProgressDisplay {
 public:
  explicit ProgressDisplay(FILE* out, ProgressDisplayOptions options = {});
  ~ProgressDisplay();  // ends a half-drawn terminal line
  ProgressDisplay(const ProgressDisplay&) = delete;
  ProgressDisplay& operator=(const ProgressDisplay&) = delete;

  void step(const StepEvent& event);
  void epoch(const EpochEvent& event);
  // One line of information; on a terminal the progress line is cleared first and drawn again
  // at the next step.
  void message(const std::string& text);
  // Ends a progress line left open on a terminal (before other output to the same stream).
  void end_line();
  // The calls above may come from several threads (a loader's skip messages): each is whole.

  // Events that call this display; the display must outlive them.
  TrainerEvents events();

  bool terminal() const { return terminal_; }
  int width() const { return width_; }

 private:
  void write(const std::string& text);
  void end_line_locked();

  std::mutex mutex_;

  FILE* out_;
  ProgressDisplayOptions options_;
  bool terminal_ = false;
  int width_ = 100;
  bool line_open_ = false;        // terminal: a progress line is on screen without its '\n'
  size_t drawn_length_ = 0;       // its length, to blank a longer previous line
  int current_epoch_ = -1;
  double last_draw_seconds_ = 0;  // event time of the last line drawn or printed in this epoch
  double last_percent_ = 0;       // plain mode: the percent of the last line
  bool drawn_in_epoch_ = false;
};

// "0:05", "1:23", "12:00", "1:02:03" (h:mm:ss from an hour on); "?:??" for a negative or
// non-finite time. Seconds are rounded to the nearest whole second.
std::string format_duration(double seconds);
// A learning rate in short scientific notation: 2.4e-4, 1e-3, 0.
std::string format_learning_rate(double lr);
// "1.2/3.9 GiB", "512/900 MiB" (in use/peak; "1.2 GiB" when peak is 0); "" when both are 0.
std::string format_device_memory(int64_t in_use, int64_t peak);
// The progress line for a step, fitted to `width` columns (at most width - 1 characters, so
// the cursor never wraps): the bar shrinks first, then goes, then the line is cut.
std::string format_progress_line(const StepEvent& event, int width);
// The same fields without the bar and without a width limit: a plain (log) line.
std::string format_plain_progress_line(const StepEvent& event);
// The epoch summary line, without a line break.
std::string format_epoch_summary(const EpochEvent& event);
// The width to draw in: COLUMNS when it is a positive number, else the width of the terminal
// behind `out` (TIOCGWINSZ), else 100.
int output_width(FILE* out);

}  // namespace sg::train
