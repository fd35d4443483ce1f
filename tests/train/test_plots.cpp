// The run's pictures (curves.svg, confusion.svg) and the tables they come from (metrics.csv,
// confusion.csv): well-formed XML holding the numbers, CSV round trips, errors naming the line.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/atomic_file.h"
#include "core/error.h"
#include "data/image_io.h"
#include "tests/weights/temp_dir.h"
#include "train/plots.h"

namespace sg::train {
namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  ASSERT_TRUE(out.good()) << path;
}

// A small XML well-formedness check (enough for what we write): one root element, tags
// balanced and properly nested, attribute values quoted, no '<' in text or attributes, every
// '&' starting a known or numeric entity. Returns "" or what is wrong and where.
std::string xml_problem(const std::string& xml) {
  std::vector<std::string> open;
  int roots = 0;
  auto entity_ok = [&](size_t at) {
    const size_t end = xml.find(';', at);
    if (end == std::string::npos || end - at > 10) return false;
    const std::string name = xml.substr(at + 1, end - at - 1);
    return name == "amp" || name == "lt" || name == "gt" || name == "quot" || name == "apos" ||
           (name.size() > 1 && name[0] == '#');
  };
  size_t i = 0;
  if (xml.rfind("<?xml", 0) == 0) i = xml.find("?>") + 2;
  while (i < xml.size()) {
    if (xml[i] != '<') {
      if (xml[i] == '&' && !entity_ok(i)) return "bad entity at " + std::to_string(i);
      if (xml[i] == '>') return "stray '>' at " + std::to_string(i);
      if (open.empty() && !std::isspace(static_cast<unsigned char>(xml[i]))) return "text outside the root at " + std::to_string(i);
      ++i;
      continue;
    }
    if (xml.compare(i, 4, "<!--") == 0) {
      const size_t end = xml.find("-->", i);
      if (end == std::string::npos) return "unclosed comment";
      i = end + 3;
      continue;
    }
    const bool closing = i + 1 < xml.size() && xml[i + 1] == '/';
    size_t j = i + (closing ? 2 : 1);
    const size_t name_start = j;
    while (j < xml.size() && (std::isalnum(static_cast<unsigned char>(xml[j])) || xml[j] == '-' || xml[j] == ':' || xml[j] == '_')) ++j;
    const std::string name = xml.substr(name_start, j - name_start);
    if (name.empty()) return "a tag without a name at " + std::to_string(i);
    // Attributes: name="value" pairs.
    while (j < xml.size() && xml[j] != '>' && xml[j] != '/') {
      if (std::isspace(static_cast<unsigned char>(xml[j]))) {
        ++j;
        continue;
      }
      if (closing) return "attributes in a closing tag at " + std::to_string(i);
      const size_t equals = xml.find('=', j);
      if (equals == std::string::npos || equals + 1 >= xml.size()) return "attribute without a value at " + std::to_string(j);
      for (size_t k = j; k < equals; ++k)
        if (!(std::isalnum(static_cast<unsigned char>(xml[k])) || xml[k] == '-' || xml[k] == ':'))
          return "bad attribute name at " + std::to_string(j);
      const char quote = xml[equals + 1];
      if (quote != '"' && quote != '\'') return "unquoted attribute at " + std::to_string(j);
      const size_t end = xml.find(quote, equals + 2);
      if (end == std::string::npos) return "unterminated attribute at " + std::to_string(j);
      for (size_t k = equals + 2; k < end; ++k) {
        if (xml[k] == '<') return "'<' in an attribute at " + std::to_string(k);
        if (xml[k] == '&' && !entity_ok(k)) return "bad entity in an attribute at " + std::to_string(k);
      }
      j = end + 1;
    }
    if (j >= xml.size()) return "unterminated tag <" + name;
    const bool self_closing = xml[j] == '/';
    if (self_closing && (j + 1 >= xml.size() || xml[j + 1] != '>')) return "bad '/' in <" + name;
    i = j + (self_closing ? 2 : 1);
    if (closing) {
      if (open.empty() || open.back() != name) return "</" + name + "> closes " + (open.empty() ? "nothing" : "<" + open.back() + ">");
      open.pop_back();
    } else if (!self_closing) {
      if (open.empty()) ++roots;
      open.push_back(name);
    } else if (open.empty()) {
      ++roots;
    }
  }
  if (!open.empty()) return "<" + open.back() + "> never closed";
  if (roots != 1) return std::to_string(roots) + " root elements";
  return "";
}

TEST(Plots, XmlCheckerCatchesBrokenDocuments) {
  EXPECT_EQ(xml_problem("<svg a=\"1\"><g><text>x &amp; y</text></g><rect/></svg>"), "");
  EXPECT_NE(xml_problem("<svg><g></svg>"), "");
  EXPECT_NE(xml_problem("<svg><g></g>"), "");
  EXPECT_NE(xml_problem("<svg a=1></svg>"), "");
  EXPECT_NE(xml_problem("<svg><text>a < b</text></svg>"), "");
  EXPECT_NE(xml_problem("<svg><text>a & b</text></svg>"), "");
  EXPECT_NE(xml_problem("<svg></svg><svg></svg>"), "");
}

std::vector<MetricsRow> example_rows() {
  std::vector<MetricsRow> rows(4);
  const double train[] = {1.61, 1.12, 0.874, 0.731}, val[] = {1.55, 1.21, 0.9876, 1.02};
  const double qwk[] = {0.1234, 0.5678, 0.8123, 0.7901};
  const double karolinska[] = {0.101, 0.55, 0.7712, 0.7702}, radboud[] = {0.145, 0.58, 0.8456, 0.80};
  for (int e = 0; e < 4; ++e) {
    rows[size_t(e)].epoch = e;  // from 0, as the trainer writes them: shown as e + 1
    rows[size_t(e)].train_loss = train[e];
    rows[size_t(e)].val_loss = val[e];
    rows[size_t(e)].val_qwk = qwk[e];
    rows[size_t(e)].val_qwk_by_provider = {{"karolinska", karolinska[e]}, {"radboud", radboud[e]}};
  }
  return rows;
}

TEST(Plots, TrainingCurvesAreWellFormedAndHoldTheValues) {
  testing::TempDir dir;
  const std::string path = dir.file("curves.svg");
  std::vector<MetricsRow> rows = example_rows();
  rows[1].val_qwk_by_provider["radboud"].reset();  // undefined: a gap, no point
  write_training_curves_svg(path, rows, "fold 0 <b0 & tiles>");
  const std::string svg = read_text(path);
  EXPECT_EQ(xml_problem(svg), "");
  EXPECT_NE(svg.find("fold 0 &lt;b0 &amp; tiles&gt;"), std::string::npos);
  for (const char* value : {"epoch 3: validation QWK 0.8123", "epoch 1: validation QWK 0.1234",
                            "epoch 4: train loss 0.7310", "epoch 3: validation loss 0.9876",
                            "epoch 3: QWK radboud 0.8456", "best: epoch 3, QWK 0.8123", ">QWK karolinska<",
                            ">train loss<", ">validation loss<", ">best epoch<", ">epoch<", ">loss<"})
    EXPECT_NE(svg.find(value), std::string::npos) << value;
  EXPECT_EQ(svg.find("epoch 2: QWK radboud"), std::string::npos);
  EXPECT_NE(svg.find("epoch 2: QWK karolinska 0.5500"), std::string::npos);
  EXPECT_TRUE(temporaries_of(path).empty());
  EXPECT_THROW(write_training_curves_svg(dir.file("empty.svg"), {}), Error);
}

TEST(Plots, ConfusionHeatMapIsRowNormalisedWithCounts) {
  testing::TempDir dir;
  const std::string path = dir.file("confusion.svg");
  grading::ConfusionMatrix matrix;
  matrix.counts[0] = {17, 3, 0, 0, 0, 0};
  matrix.counts[1] = {4, 123, 9, 0, 0, 0};
  matrix.counts[2] = {0, 0, 0, 0, 0, 0};  // an empty row: all cells the empty colour
  matrix.counts[3] = {0, 0, 0, 0, 0, 0};
  matrix.counts[4] = {0, 0, 0, 0, 0, 0};
  matrix.counts[5] = {0, 0, 0, 0, 1, 0};  // one slide, all of its row: the full colour
  write_confusion_svg(path, matrix, "validation, best epoch 3");
  const std::string svg = read_text(path);
  EXPECT_EQ(xml_problem(svg), "");
  for (const char* text : {">17<", ">123<", ">9<", ">4<", "true ISUP grade", "predicted ISUP grade", "n = 136",
                           "n = 20", "validation, best epoch 3", "true 1, predicted 1: 123 (90.4% of the row)",
                           "true 5, predicted 4: 1 (100.0% of the row)", "157 slides, accuracy 89.2%"})
    EXPECT_NE(svg.find(text), std::string::npos) << text;
  // Row-normalised: the lone slide of grade 5 gets the darkest colour, 123/136 nearly so.
  const size_t cell_5_4 = svg.find("<title>true 5, predicted 4");
  ASSERT_NE(cell_5_4, std::string::npos);
  EXPECT_NE(svg.rfind("fill=\"#08306b\"", cell_5_4), std::string::npos);
  EXPECT_GT(svg.rfind("fill=\"#08306b\"", cell_5_4), svg.rfind("<rect", cell_5_4));
  const size_t cell_2_2 = svg.find("<title>true 2, predicted 2");
  EXPECT_GT(svg.rfind("fill=\"#f7fbff\"", cell_2_2), svg.rfind("<rect", cell_2_2));
}

TEST(Plots, PngPicturesAreDrawn) {
  testing::TempDir dir;
  grading::ConfusionMatrix matrix;
  matrix.counts[1] = {4, 123, 9, 0, 0, 0};
  matrix.counts[5] = {0, 0, 0, 0, 1, 0};
  write_confusion_png(dir.file("confusion.png"), matrix, "validation");
  const data::Image confusion = data::read_png(dir.file("confusion.png"));
  ASSERT_EQ(confusion.channels, 3);
  EXPECT_EQ(confusion.width, 2 * 690);
  EXPECT_EQ(confusion.height, 2 * 580);
  auto rgb = [](const data::Image& image, int x, int y) {
    const uint8_t* p = image.at(x, y);
    return std::array<int, 3>{p[0], p[1], p[2]};
  };
  // Cells are 66 units from (120, 80), drawn at twice the size; sampled near a corner, clear of
  // the text and of the diagonal's outline. True 5 -> predicted 4 is its whole row: darkest.
  EXPECT_EQ(rgb(confusion, 2 * (120 + 4 * 66 + 10), 2 * (80 + 5 * 66 + 10)), (std::array<int, 3>{0x08, 0x30, 0x6b}));
  EXPECT_EQ(rgb(confusion, 2 * (120 + 2 * 66 + 10), 2 * (80 + 2 * 66 + 10)), (std::array<int, 3>{0xf7, 0xfb, 0xff}));
  EXPECT_EQ(rgb(confusion, 2, 2), (std::array<int, 3>{255, 255, 255}));

  write_training_curves_png(dir.file("curves.png"), example_rows(), "curves");
  const data::Image curves = data::read_png(dir.file("curves.png"));
  EXPECT_EQ(curves.width, 2 * 900);
  EXPECT_EQ(curves.height, 2 * 680);
  // Something of the train-loss colour (#1f77b4) is drawn, e.g. its legend line.
  int64_t blue = 0;
  for (int y = 0; y < curves.height; ++y)
    for (int x = 0; x < curves.width; ++x) blue += rgb(curves, x, y) == std::array<int, 3>{0x1f, 0x77, 0xb4};
  EXPECT_GT(blue, 100);
  // The two pictures and nothing else: no temporary file is left behind.
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) names.push_back(entry.path().filename());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"confusion.png", "curves.png"}));
}

TEST(Plots, ConfusionCsvRoundTrip) {
  testing::TempDir dir;
  const std::string path = dir.file("confusion.csv");
  grading::ConfusionMatrix matrix;
  for (int t = 0; t < grading::kIsupGrades; ++t)
    for (int p = 0; p < grading::kIsupGrades; ++p) matrix.counts[size_t(t)][size_t(p)] = (t * 7 + p * 3) % 11 + (t == p ? 40 : 0);
  write_confusion_csv(path, matrix);
  const std::string text = read_text(path);
  EXPECT_EQ(text.substr(0, text.find('\n')), "truth,0,1,2,3,4,5");
  EXPECT_NE(text.find("\n1,7,50,2,5,8,0\n"), std::string::npos) << text;  // (7 + 3p) % 11, +40 on the diagonal
  EXPECT_EQ(read_confusion_csv(path).counts, matrix.counts);
  EXPECT_TRUE(temporaries_of(path).empty());
  // Prediction columns named pred_0..pred_5 read the same.
  write_text(path, "truth,pred_0,pred_1,pred_2,pred_3,pred_4,pred_5\n" + text.substr(text.find('\n') + 1));
  EXPECT_EQ(read_confusion_csv(path).counts, matrix.counts);
}

void expect_error(const std::string& path, const std::vector<std::string>& parts) {
  try {
    read_confusion_csv(path);
    ADD_FAILURE() << "no error for " << path;
  } catch (const Error& error) {
    for (const std::string& part : parts) EXPECT_NE(std::string(error.what()).find(part), std::string::npos) << error.what();
  }
}

TEST(Plots, ConfusionCsvRejectsBadFiles) {
  testing::TempDir dir;
  const std::string good_rows = "0,1,0,0,0,0,0\n1,0,1,0,0,0,0\n2,0,0,1,0,0,0\n3,0,0,0,1,0,0\n4,0,0,0,0,1,0\n5,0,0,0,0,0,1\n";
  write_text(dir.file("header.csv"), "truth,a,1,2,3,4,5\n" + good_rows);
  expect_error(dir.file("header.csv"), {"header.csv", "line 1", "truth,0,1,2,3,4,5"});
  write_text(dir.file("order.csv"), "truth,0,1,2,3,4,5\n0,1,0,0,0,0,0\n2,0,1,0,0,0,0\n" + good_rows.substr(28));
  expect_error(dir.file("order.csv"), {"order.csv", "line 3", "expected grade 1"});
  write_text(dir.file("negative.csv"), "truth,0,1,2,3,4,5\n" + good_rows.substr(0, 42) + "3,0,0,-2,1,0,0\n" + good_rows.substr(56));
  expect_error(dir.file("negative.csv"), {"line 5", "predicted 2", "'-2'"});
  write_text(dir.file("short.csv"), "truth,0,1,2,3,4,5\n" + good_rows.substr(0, 28));
  expect_error(dir.file("short.csv"), {"2 rows", "expected 6"});
  expect_error(dir.file("missing.csv"), {"missing.csv"});
}

const char* const kMetricsHeader =
    "epoch,step,lr,train_loss,val_loss,val_qwk,val_qwk_karolinska,val_qwk_radboud,val_accuracy,epoch_seconds,"
    "images_per_second,load_seconds,copy_seconds,forward_seconds,backward_seconds,optimizer_seconds,"
    "validation_seconds,device_wait_fraction";

TEST(Plots, MetricsCsvReadsTheTrainersColumnsAndIgnoresOthers) {
  testing::TempDir dir;
  const std::string path = dir.file("metrics.csv");
  write_text(path, std::string(kMetricsHeader) + ",note\n" +
                       "1,50,0.0003,1.5,1.4,undefined,,0.25,0.41,120.5,33.2,40,2,30,35,5,8.5,0.33,first\n" +
                       "2,100,2.4e-4,1.1,1.2,0.6512,0.6,0.7,0.55,118,34,39,2,30,35,5,7,0.3,\"a, b\"\n");
  const std::vector<MetricsRow> rows = read_metrics_csv(path);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].epoch, 1);
  EXPECT_EQ(rows[0].step, 50);
  EXPECT_DOUBLE_EQ(rows[0].lr, 0.0003);
  EXPECT_DOUBLE_EQ(rows[0].train_loss, 1.5);
  EXPECT_FALSE(rows[0].val_qwk.has_value());
  ASSERT_EQ(rows[0].val_qwk_by_provider.size(), 2u);
  EXPECT_FALSE(rows[0].val_qwk_by_provider.at("karolinska").has_value());
  EXPECT_DOUBLE_EQ(rows[0].val_qwk_by_provider.at("radboud").value(), 0.25);
  EXPECT_DOUBLE_EQ(rows[0].times.total, 120.5);
  EXPECT_DOUBLE_EQ(rows[0].times.load, 40);
  EXPECT_DOUBLE_EQ(rows[0].times.validation, 8.5);
  EXPECT_DOUBLE_EQ(rows[0].device_wait_fraction, 0.33);
  EXPECT_EQ(rows[0].line, 2);
  EXPECT_DOUBLE_EQ(rows[1].val_qwk.value(), 0.6512);
  EXPECT_DOUBLE_EQ(rows[1].val_qwk_by_provider.at("karolinska").value(), 0.6);
  EXPECT_DOUBLE_EQ(rows[1].val_accuracy, 0.55);
  EXPECT_DOUBLE_EQ(rows[1].images_per_second, 34);
  EXPECT_DOUBLE_EQ(rows[1].lr, 2.4e-4);

  // Only the four columns the pictures need are required.
  write_text(dir.file("minimal.csv"), "val_qwk,epoch,val_loss,train_loss\n0.5,1,2,3\n");
  const std::vector<MetricsRow> minimal = read_metrics_csv(dir.file("minimal.csv"));
  ASSERT_EQ(minimal.size(), 1u);
  EXPECT_DOUBLE_EQ(minimal[0].train_loss, 3);
  EXPECT_TRUE(minimal[0].val_qwk_by_provider.empty());
}

TEST(Plots, MetricsCsvBadRowNamesTheLine) {
  testing::TempDir dir;
  const std::string path = dir.file("metrics.csv");
  write_text(path, std::string(kMetricsHeader) + "\n1,50,0.0003,1.5,1.4,0.5,0.4,0.6,0.41,120,33,40,2,30,35,5,8,0.33\n" +
                       "2,100,0.0002,1.1,abc,0.6,0.6,0.7,0.55,118,34,39,2,30,35,5,7,0.3\n");
  try {
    read_metrics_csv(path);
    ADD_FAILURE() << "no error";
  } catch (const Error& error) {
    const std::string message = error.what();
    for (const char* part : {"metrics.csv", "line 3", "val_loss", "'abc'"})
      EXPECT_NE(message.find(part), std::string::npos) << message;
  }
  write_text(path, std::string(kMetricsHeader) + "\n1,50,0.0003,1.5,1.4,1.7,0.4,0.6,0.41,120,33,40,2,30,35,5,8,0.33\n");
  EXPECT_THROW(read_metrics_csv(path), Error);  // a kappa above 1
  write_text(path, "epoch,train_loss,val_qwk\n1,2,0.5\n");
  try {
    read_metrics_csv(path);
    ADD_FAILURE() << "no error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("val_loss"), std::string::npos) << error.what();
  }
}

TEST(Plots, RunPlotsFromTheRunFolder) {
  testing::TempDir dir;
  const std::filesystem::path run = dir.path() / "fold0";
  std::filesystem::create_directories(run);
  write_text((run / "metrics.csv").string(), std::string(kMetricsHeader) +
                                                 "\n0,50,0.0003,1.5,1.4,0.5,0.4,0.6,0.41,120,33,40,2,30,35,5,8,0.33\n"
                                                 "1,100,0.0002,1.1,1.0,0.8,0.75,0.85,0.55,118,34,39,2,30,35,5,7,0.3\n"
                                                 "2,150,0.0001,0.9,1.1,0.7,0.65,0.75,0.5,118,34,39,2,30,35,5,7,0.3\n");
  grading::ConfusionMatrix matrix;
  matrix.add(0, 0), matrix.add(3, 2), matrix.add(5, 5), matrix.add(5, 5);
  write_confusion_csv((run / "confusion.csv").string(), matrix);
  const std::vector<std::string> written = write_run_plots(run.string());
  ASSERT_EQ(written.size(), 4u);
  EXPECT_EQ(written[0], (run / "curves.svg").string());
  EXPECT_EQ(written[1], (run / "curves.png").string());
  EXPECT_EQ(written[2], (run / "confusion.svg").string());
  EXPECT_EQ(written[3], (run / "confusion.png").string());
  for (const std::string& path : written) EXPECT_TRUE(std::filesystem::exists(path)) << path;
  const std::string curves = read_text(written[0]), confusion = read_text(written[2]);
  EXPECT_EQ(xml_problem(curves), "");
  EXPECT_EQ(xml_problem(confusion), "");
  EXPECT_NE(curves.find("training curves: fold0"), std::string::npos);
  EXPECT_NE(curves.find("best: epoch 2, QWK 0.8000"), std::string::npos);
  EXPECT_NE(confusion.find("validation, best epoch 2 (QWK 0.8000)"), std::string::npos);
  EXPECT_NE(confusion.find("true 5, predicted 5: 2 (100.0% of the row)"), std::string::npos);

  // Without confusion.csv: only the curves.
  std::filesystem::remove(run / "confusion.csv");
  std::filesystem::remove(run / "confusion.svg");
  EXPECT_EQ(write_run_plots(run.string(), /*png=*/false), std::vector<std::string>{(run / "curves.svg").string()});
  EXPECT_FALSE(std::filesystem::exists(run / "confusion.svg"));
}

}  // namespace
}  // namespace sg::train
