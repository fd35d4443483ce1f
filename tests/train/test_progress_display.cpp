// The training progress display: a bar redrawn with '\r' on a terminal, rate-limited plain lines
// elsewhere, and the epoch summary. Output goes to a tmpfile and is read back.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <pty.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "train/progress_display.h"

namespace sg::train {
namespace {

using File = std::unique_ptr<FILE, int (*)(FILE*)>;

File temporary_file() {
  File file(std::tmpfile(), std::fclose);
  EXPECT_TRUE(file != nullptr);
  return file;
}

std::string contents(FILE* file) {
  std::fflush(file);
  std::rewind(file);
  std::string text;
  char buffer[4096];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, file)) > 0) text.append(buffer, n);
  return text;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t end; (end = text.find('\n', start)) != std::string::npos; start = end + 1)
    lines.push_back(text.substr(start, end - start));
  if (start < text.size()) lines.push_back(text.substr(start));
  return lines;
}

constexpr int64_t kGiB = int64_t(1) << 30;

StepEvent event_at(int64_t batch, int64_t batches, double seconds_per_batch) {
  StepEvent event;
  event.epoch = 2, event.epochs = 10;  // from 0: shown as 3/10
  event.batch = batch, event.batches = batches;
  event.images = batch * 4;
  event.seconds = double(batch) * seconds_per_batch;
  event.loss = 0.812f, event.lr = 2.4e-4f;
  return event;
}

TEST(ProgressDisplay, FormatsDurations) {
  EXPECT_EQ(format_duration(0), "0:00");
  EXPECT_EQ(format_duration(5.4), "0:05");
  EXPECT_EQ(format_duration(83), "1:23");
  EXPECT_EQ(format_duration(599.6), "10:00");
  EXPECT_EQ(format_duration(3599), "59:59");
  EXPECT_EQ(format_duration(3723), "1:02:03");
  EXPECT_EQ(format_duration(36000), "10:00:00");
  EXPECT_EQ(format_duration(-1), "?:??");
  EXPECT_EQ(format_duration(std::numeric_limits<double>::infinity()), "?:??");
}

TEST(ProgressDisplay, FormatsLearningRatesAndMemory) {
  EXPECT_EQ(format_learning_rate(2.4e-4), "2.4e-4");
  EXPECT_EQ(format_learning_rate(1e-3), "1e-3");
  EXPECT_EQ(format_learning_rate(9.96e-5), "1e-4");
  EXPECT_EQ(format_learning_rate(0.3), "3e-1");
  EXPECT_EQ(format_learning_rate(0), "0");
  EXPECT_EQ(format_device_memory(0, 0), "");
  EXPECT_EQ(format_device_memory(kGiB * 12 / 10, kGiB * 39 / 10), "1.2/3.9 GiB");
  EXPECT_EQ(format_device_memory(512 << 20, 900 << 20), "512/900 MiB");
  EXPECT_EQ(format_device_memory(2 * kGiB, 0), "2.0 GiB");
}

TEST(ProgressDisplay, ProgressLineHasEveryField) {
  StepEvent event = event_at(120, 266, 0.25);  // 30 s for 120 batches of 4 images
  event.device_bytes_in_use = kGiB * 12 / 10, event.device_bytes_peak = kGiB * 39 / 10;
  const std::string line = format_progress_line(event, 130);
  // 480 images / 30 s = 16.0 img/s; 146 batches left at 0.25 s = 36.5 s -> 0:37 (rounded).
  const std::string rest = " 45% 120/266 batches, 16.0 img/s, loss 0.812, lr 2.4e-4, ETA 0:37, device 1.2/3.9 GiB";
  ASSERT_EQ(line.rfind("epoch 3/10 [", 0), 0u) << line;
  ASSERT_GE(line.size(), rest.size());
  EXPECT_EQ(line.substr(line.size() - rest.size()), rest) << line;
  EXPECT_EQ(int(line.size()), 129) << line;  // the bar fills the width but the last column
  const size_t open = line.find('['), close = line.find(']');
  const std::string bar = line.substr(open + 1, close - open - 1);
  const auto filled = std::count(bar.begin(), bar.end(), '#');
  EXPECT_EQ(filled, int64_t(bar.size() * 120 / 266)) << bar;
  EXPECT_EQ(std::count(bar.begin(), bar.end(), '.'), int64_t(bar.size()) - filled) << bar;

  // No device bytes: no device field. A narrow terminal: no bar, and never past the width.
  event.device_bytes_in_use = event.device_bytes_peak = 0;
  EXPECT_EQ(format_progress_line(event, 130).find("device"), std::string::npos);
  const std::string narrow = format_progress_line(event, 80);
  EXPECT_EQ(narrow.find('['), std::string::npos) << narrow;
  EXPECT_EQ(narrow.rfind("epoch 3/10 45% 120/266 batches", 0), 0u) << narrow;
  EXPECT_LE(narrow.size(), 79u);
  EXPECT_EQ(format_progress_line(event, 40).size(), 39u);
  // A wide terminal: the bar stops growing.
  const std::string wide = format_progress_line(event, 300);
  EXPECT_EQ(wide.find(']') - wide.find('[') - 1, 40u) << wide;
}

TEST(ProgressDisplay, TerminalModeRedrawsOneLineInPlace) {
  File file = temporary_file();
  {
    ProgressDisplay display(file.get(), {.terminal = true, .width = 150, .redraw_interval_seconds = 1.0});
    EXPECT_TRUE(display.terminal());
    for (int64_t batch = 1; batch <= 266; ++batch) {
      StepEvent event = event_at(batch, 266, 0.25);
      event.device_bytes_in_use = kGiB * 12 / 10, event.device_bytes_peak = kGiB * 39 / 10;
      display.step(event);
    }
  }
  const std::string text = contents(file.get());
  // One line: redrawn with '\r', ended once when the display goes.
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
  EXPECT_EQ(text.back(), '\n');
  EXPECT_EQ(text.front(), '\r');
  // Drawn on the first batch, then at most once a second (every 4th batch), and on the last.
  const auto redraws = std::count(text.begin(), text.end(), '\r');
  EXPECT_EQ(redraws, 1 + 265 / 4 + 1) << text;
  EXPECT_NE(text.find("\repoch 3/10 ["), std::string::npos);
  EXPECT_NE(text.find("] 45% 121/266 batches, 16.0 img/s, loss 0.812, lr 2.4e-4, ETA 0:36, device 1.2/3.9 GiB"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("100% 266/266 batches"), std::string::npos);
  EXPECT_NE(text.find("ETA 0:00"), std::string::npos);
}

TEST(ProgressDisplay, TerminalRedrawBlanksALongerPreviousLineAndMessagesClearTheBar) {
  File file = temporary_file();
  ProgressDisplay display(file.get(), {.terminal = true, .width = 150, .redraw_interval_seconds = 0});
  StepEvent event = event_at(10, 100, 0.5);
  event.device_bytes_in_use = kGiB, event.device_bytes_peak = 2 * kGiB;
  display.step(event);
  const size_t long_length = format_progress_line(event, 150).size();
  event = event_at(11, 100, 0.5);  // no device field: shorter
  display.step(event);
  const size_t short_length = format_progress_line(event, 150).size();
  ASSERT_LT(short_length, long_length);
  display.message("checkpoint written");
  display.step(event_at(12, 100, 0.5));
  display.end_line();
  const std::string text = contents(file.get());
  const std::string second =
      std::string("\r").append(format_progress_line(event, 150)).append(long_length - short_length, ' ');
  EXPECT_NE(text.find(second), std::string::npos) << text;
  const std::string cleared = std::string("\r").append(short_length, ' ').append("\rcheckpoint written\n\repoch 3/10");
  EXPECT_NE(text.find(cleared), std::string::npos) << text;
}

TEST(ProgressDisplay, PlainLinesEveryTenPercentWithoutCarriageReturns) {
  File file = temporary_file();
  ProgressDisplay display(file.get(), {.terminal = false, .plain_interval_seconds = 1000, .plain_percent_step = 10});
  EXPECT_FALSE(display.terminal());
  for (int64_t batch = 1; batch <= 200; ++batch) display.step(event_at(batch, 200, 0.01));
  const std::string text = contents(file.get());
  EXPECT_EQ(text.find('\r'), std::string::npos);
  const std::vector<std::string> lines = split_lines(text);
  ASSERT_EQ(lines.size(), 10u) << text;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string expected = std::to_string(20 * (i + 1)) + "/200 batches";
    EXPECT_NE(lines[i].find(expected), std::string::npos) << lines[i];
    EXPECT_EQ(lines[i].find('['), std::string::npos) << "no bar in a log: " << lines[i];
  }
}

TEST(ProgressDisplay, PlainLinesAtTheTimeLimitWhenPercentStepsAreRare) {
  File file = temporary_file();
  ProgressDisplay display(file.get(), {.terminal = false, .plain_interval_seconds = 5, .plain_percent_step = 100});
  for (int64_t batch = 1; batch <= 23; ++batch) display.step(event_at(batch, 23, 1.0));
  const std::string text = contents(file.get());
  EXPECT_EQ(text.find('\r'), std::string::npos);
  const std::vector<std::string> lines = split_lines(text);
  // Batches 5, 10, 15, 20 (5 s apart) and 23 (the last).
  ASSERT_EQ(lines.size(), 5u) << text;
  const char* expected[] = {" 5/23 ", " 10/23 ", " 15/23 ", " 20/23 ", " 23/23 "};
  for (size_t i = 0; i < lines.size(); ++i) EXPECT_NE(lines[i].find(expected[i]), std::string::npos) << lines[i];
}

EpochEvent epoch_event() {
  EpochEvent event;
  event.epoch = 2, event.epochs = 10;  // from 0: shown as 3/10
  event.train_loss = 0.812, event.val_loss = 0.9013;
  event.val_qwk = 0.73124;
  event.val_qwk_by_provider = {{"karolinska", 0.70118}, {"radboud", 0.75977}};
  event.val_accuracy = 0.6123;
  event.best = true;
  event.seconds = 161;
  return event;
}

TEST(ProgressDisplay, EpochSummaryLine) {
  EXPECT_EQ(format_epoch_summary(epoch_event()),
            "epoch 3/10 done in 2:41: train loss 0.8120, val loss 0.9013, QWK 0.7312 (karolinska 0.7012, "
            "radboud 0.7598), accuracy 61.2% * best");
  EpochEvent undefined = epoch_event();
  undefined.val_qwk.reset();
  undefined.val_qwk_by_provider["radboud"].reset();
  undefined.best = false;
  const std::string line = format_epoch_summary(undefined);
  EXPECT_NE(line.find("QWK undefined (karolinska 0.7012, radboud undefined)"), std::string::npos) << line;
  EXPECT_EQ(line.find("best"), std::string::npos) << line;
}

TEST(ProgressDisplay, EpochSummaryEndsTheBarLineFirst) {
  File file = temporary_file();
  ProgressDisplay display(file.get(), {.terminal = true, .width = 120});
  TrainerEvents events = display.events();
  events.step(event_at(5, 10, 0.5));
  events.epoch(epoch_event());
  events.message("done");
  const std::string text = contents(file.get());
  const std::string expected = std::string("\r")
                                   .append(format_progress_line(event_at(5, 10, 0.5), 120))
                                   .append("\n")
                                   .append(format_epoch_summary(epoch_event()))
                                   .append("\ndone\n");
  EXPECT_EQ(text, expected);
}

TEST(ProgressDisplay, WidthFromColumns) {
  const char* saved = std::getenv("COLUMNS");
  const std::optional<std::string> previous = saved ? std::optional<std::string>(saved) : std::nullopt;
  File file = temporary_file();
  ::setenv("COLUMNS", "123", 1);
  EXPECT_EQ(output_width(file.get()), 123);
  EXPECT_EQ(ProgressDisplay(file.get(), {.terminal = true}).width(), 123);
  ::setenv("COLUMNS", "wide", 1);
  EXPECT_EQ(output_width(file.get()), 100);  // not a terminal either: the default
  ::unsetenv("COLUMNS");
  EXPECT_EQ(output_width(file.get()), 100);
  EXPECT_FALSE(ProgressDisplay(file.get()).terminal());  // a file is not a terminal
  if (previous) ::setenv("COLUMNS", previous->c_str(), 1);
}

TEST(ProgressDisplay, FindsARealTerminalAndItsWidth) {
  // A pseudo-terminal 77 columns wide: the display must see a terminal without being told.
  int master = -1, slave = -1;
  winsize size{};
  size.ws_col = 77, size.ws_row = 24;
  ASSERT_EQ(::openpty(&master, &slave, nullptr, nullptr, &size), 0) << std::strerror(errno);
  File terminal(::fdopen(slave, "w"), std::fclose);
  ASSERT_TRUE(terminal != nullptr);
  const char* saved = std::getenv("COLUMNS");
  const std::optional<std::string> previous = saved ? std::optional<std::string>(saved) : std::nullopt;
  ::unsetenv("COLUMNS");
  {
    ProgressDisplay display(terminal.get());
    EXPECT_TRUE(display.terminal());
    EXPECT_EQ(display.width(), 77);
    display.step(event_at(1, 10, 0.5));
  }
  if (previous) ::setenv("COLUMNS", previous->c_str(), 1);
  // What reached the terminal: the line drawn with '\r', cut to 76 columns, ended by the display.
  ::fcntl(master, F_SETFL, ::fcntl(master, F_GETFL) | O_NONBLOCK);
  std::string seen;
  char buffer[512];
  for (ssize_t n; (n = ::read(master, buffer, sizeof buffer)) > 0;) seen.append(buffer, size_t(n));
  ::close(master);
  EXPECT_EQ(seen.rfind("\repoch 3/10", 0), 0u) << seen;
  const std::string line = seen.substr(1, seen.find_first_of("\r\n", 1) - 1);
  EXPECT_EQ(line, format_progress_line(event_at(1, 10, 0.5), 77));
  EXPECT_LE(line.size(), 76u);
}

}  // namespace
}  // namespace sg::train
