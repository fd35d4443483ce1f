#include "train/progress_display.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace sg::train {
namespace {

std::string printf_string(const char* format, double value) {
  char text[64];
  std::snprintf(text, sizeof text, format, value);
  return text;
}

}  // namespace

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?:??";
  const long long total = std::llround(seconds);
  const long long hours = total / 3600, minutes = (total / 60) % 60, secs = total % 60;
  char text[48];
  if (hours > 0)
    std::snprintf(text, sizeof text, "%lld:%02lld:%02lld", hours, minutes, secs);
  else
    std::snprintf(text, sizeof text, "%lld:%02lld", minutes, secs);
  return text;
}

std::string format_learning_rate(double lr) {
  if (lr == 0) return "0";
  if (!std::isfinite(lr)) return printf_string("%g", lr);
  int exponent = int(std::floor(std::log10(std::fabs(lr))));
  double mantissa = std::round(lr / std::pow(10.0, exponent) * 10) / 10;
  if (std::fabs(mantissa) >= 10) mantissa /= 10, exponent += 1;
  std::string text = printf_string("%.1f", mantissa);
  if (text.size() >= 2 && text.compare(text.size() - 2, 2, ".0") == 0) text.resize(text.size() - 2);
  return text + "e" + std::to_string(exponent);
}

std::string format_device_memory(int64_t in_use, int64_t peak) {
  if (in_use <= 0 && peak <= 0) return "";
  constexpr double kMiB = 1024.0 * 1024.0, kGiB = kMiB * 1024.0;
  const bool gib = std::max(in_use, peak) >= int64_t(kGiB);
  const double unit = gib ? kGiB : kMiB;
  const char* format = gib ? "%.1f" : "%.0f";
  std::string text = printf_string(format, double(in_use) / unit);
  if (peak > 0) text.append("/").append(printf_string(format, double(peak) / unit));
  return text + (gib ? " GiB" : " MiB");
}

namespace {

// Events count epochs from 0; people from 1.
std::string epoch_text(int epoch, int epochs) {
  return "epoch " + std::to_string(epoch + 1) + "/" + std::to_string(epochs);
}

std::string progress_prefix(const StepEvent& event) { return epoch_text(event.epoch, event.epochs); }

double progress_fraction(const StepEvent& event) {
  return event.batches > 0 ? std::clamp(double(event.batch) / double(event.batches), 0.0, 1.0) : 0.0;
}

// " 45% 120/266 batches, 18.3 img/s, loss 0.812, lr 2.4e-4, ETA 1:23, device 1.2/3.9 GiB"
std::string progress_fields(const StepEvent& event) {
  const bool known_length = event.batches > 0;
  const double fraction = progress_fraction(event);
  std::string rest;
  if (known_length) rest.append(" ").append(std::to_string(int(fraction * 100))).append("%");
  rest.append(" ").append(std::to_string(event.batch));
  if (known_length) rest.append("/").append(std::to_string(event.batches));
  rest += " batches";
  if (event.seconds > 0) rest += ", " + printf_string("%.1f", double(event.images) / event.seconds) + " img/s";
  rest += ", loss " + printf_string("%.3f", event.loss);
  rest += ", lr " + format_learning_rate(event.lr);
  if (known_length && event.batch > 0 && event.seconds > 0)
    rest += ", ETA " + format_duration(double(event.batches - event.batch) * event.seconds / double(event.batch));
  const std::string memory = format_device_memory(event.device_bytes_in_use, event.device_bytes_peak);
  if (!memory.empty()) rest += ", device " + memory;
  return rest;
}

}  // namespace

std::string format_plain_progress_line(const StepEvent& event) {
  return progress_prefix(event) + progress_fields(event);
}

std::string format_progress_line(const StepEvent& event, int width) {
  const std::string prefix = progress_prefix(event);
  const std::string rest = progress_fields(event);
  const bool known_length = event.batches > 0;
  const double fraction = progress_fraction(event);

  // At most width - 1 characters: writing the last column wraps the cursor on some terminals.
  const int room = std::max(width - 1, 1);
  const int bar_room = room - int(prefix.size() + rest.size()) - 3;  // " [" and "]"
  constexpr int kMinBar = 10, kMaxBar = 40;
  std::string line = prefix;
  if (known_length && bar_room >= kMinBar) {
    const int bar = std::min(bar_room, kMaxBar);
    const int filled = int(fraction * bar);
    line += " [" + std::string(size_t(filled), '#') + std::string(size_t(bar - filled), '.') + "]";
  }
  line += rest;
  if (int(line.size()) > room) line.resize(size_t(room));
  return line;
}

std::string format_epoch_summary(const EpochEvent& event) {
  std::string line = epoch_text(event.epoch, event.epochs);
  if (event.seconds > 0) line += " done in " + format_duration(event.seconds);
  line += ": train loss " + printf_string("%.4f", event.train_loss);
  line += ", val loss " + printf_string("%.4f", event.val_loss);
  line += ", QWK " + grading::format_kappa(event.val_qwk);
  if (!event.val_qwk_by_provider.empty()) {
    line += " (";
    bool first = true;
    for (const auto& [provider, kappa] : event.val_qwk_by_provider) {
      line += (first ? "" : ", ") + provider + " " + grading::format_kappa(kappa);
      first = false;
    }
    line += ")";
  }
  line += ", accuracy " + printf_string("%.1f", 100.0 * event.val_accuracy) + "%";
  if (event.best) line += " * best";
  return line;
}

int output_width(FILE* out) {
  if (const char* columns = std::getenv("COLUMNS")) {
    char* end = nullptr;
    errno = 0;
    const long value = std::strtol(columns, &end, 10);
    if (errno == 0 && end != columns && *end == '\0' && value > 0 && value < 100000) return int(value);
  }
  if (out) {
    const int fd = ::fileno(out);
    winsize size{};
    if (fd >= 0 && ::isatty(fd) && ::ioctl(fd, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  }
  return 100;
}

ProgressDisplay::ProgressDisplay(FILE* out, ProgressDisplayOptions options)
    : out_(out), options_(options) {
  SG_CHECK(out_ != nullptr, "ProgressDisplay: no output stream");
  SG_CHECK(options_.plain_interval_seconds > 0 && options_.plain_percent_step > 0,
           "ProgressDisplay: plain_interval_seconds (", options_.plain_interval_seconds,
           ") and plain_percent_step (", options_.plain_percent_step, ") must be positive");
  if (options_.terminal) {
    terminal_ = *options_.terminal;
  } else {
    const int fd = ::fileno(out_);
    terminal_ = fd >= 0 && ::isatty(fd);
  }
  width_ = options_.width ? std::max(*options_.width, 1) : output_width(out_);
}

ProgressDisplay::~ProgressDisplay() {
  try {
    end_line();
  } catch (...) {
  }
}

void ProgressDisplay::write(const std::string& text) {
  // A progress display that cannot write (a closed pipe, a full disk) must not stop training.
  if (std::fwrite(text.data(), 1, text.size(), out_) == text.size()) std::fflush(out_);
}

void ProgressDisplay::end_line() {
  std::lock_guard lock(mutex_);
  end_line_locked();
}

void ProgressDisplay::end_line_locked() {
  if (!line_open_) return;
  write("\n");
  line_open_ = false;
  drawn_length_ = 0;
}

void ProgressDisplay::step(const StepEvent& event) {
  std::lock_guard lock(mutex_);
  if (event.epoch != current_epoch_) {
    end_line_locked();
    current_epoch_ = event.epoch;
    last_draw_seconds_ = 0;
    last_percent_ = 0;
    drawn_in_epoch_ = false;
  }
  const bool last_batch = event.batches > 0 && event.batch >= event.batches;
  const double percent = event.batches > 0 ? 100.0 * double(event.batch) / double(event.batches) : 0.0;
  const double since_last = event.seconds - last_draw_seconds_;
  if (terminal_) {
    if (drawn_in_epoch_ && !last_batch && since_last < options_.redraw_interval_seconds) return;
    const std::string line = format_progress_line(event, width_);
    std::string text = "\r" + line;
    if (line.size() < drawn_length_) text += std::string(drawn_length_ - line.size(), ' ');
    write(text);
    line_open_ = true;
    drawn_length_ = line.size();
  } else {
    const double step = options_.plain_percent_step;
    const bool passed_step = std::floor(percent / step) > std::floor(last_percent_ / step);
    if (!(last_batch || passed_step || since_last >= options_.plain_interval_seconds)) return;
    // No bar and no width limit: a log line may be as long as it needs.
    write(format_plain_progress_line(event) + "\n");
    last_percent_ = percent;
  }
  last_draw_seconds_ = event.seconds;
  drawn_in_epoch_ = true;
}

void ProgressDisplay::epoch(const EpochEvent& event) {
  std::lock_guard lock(mutex_);
  end_line_locked();
  write(format_epoch_summary(event) + "\n");
}

void ProgressDisplay::message(const std::string& text) {
  std::lock_guard lock(mutex_);
  if (line_open_) {
    // Blank the progress line and put the message in its place; the next step draws it again.
    write(std::string("\r").append(drawn_length_, ' ').append("\r"));
    line_open_ = false;
    drawn_length_ = 0;
    drawn_in_epoch_ = false;
  }
  write(text + "\n");
}

TrainerEvents ProgressDisplay::events() {
  TrainerEvents events;
  events.message = [this](const std::string& text) { message(text); };
  events.step = [this](const StepEvent& event) { step(event); };
  events.epoch = [this](const EpochEvent& event) { epoch(event); };
  return events;
}

}  // namespace sg::train
