// The grader (infer/): TTA views, trained-model files -> slide scores and grades, ensembles,
// failed slides, the submission and details CSVs, and threshold tuning on out-of-fold predictions.
// Models are tiny random EfficientNets saved with a model card; no trainer involved.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/csv.h"
#include "data/grades_csv.h"
#include "data/synthetic_slides.h"
#include "data/tta.h"
#include "grading/model_card.h"
#include "infer/predictor.h"
#include "infer/slide_list.h"
#include "infer/thresholds.h"
#include "nn/efficientnet.h"
#include "nn/efficientnet_config_text.h"
#include "tests/weights/temp_dir.h"
#include "weights/weight_file.h"

namespace sg::infer {
namespace {

namespace fs = std::filesystem;

std::string file_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}
using grading::HeadKind;

constexpr data::TileSpec kTiles{16, 32, 1, false};  // 4x4 mosaic of 128 px

nn::EfficientNetConfig tiny_config(HeadKind head, uint64_t seed) {
  nn::EfficientNetConfig config = nn::efficientnet_config("b0");
  config.width = 0.25;
  config.depth = 0.34;
  config.outputs = grading::head_outputs(head);
  config.seed = seed;
  return config;
}

// A random tiny network saved with a model card. With `bias`, the classifier's weight is zeroed
// and its bias set, so the logits are `bias` whatever the input.
std::string save_model(const std::string& path, HeadKind head, uint64_t seed, const data::TileSpec& tiles = kTiles,
                       const std::vector<float>& bias = {},
                       const grading::Thresholds& thresholds = grading::kDefaultThresholds, bool tuned = false) {
  const nn::EfficientNetConfig config = tiny_config(head, seed);
  nn::EfficientNet model(config);
  std::vector<NamedTensor> tensors = named_tensors(model.parameters(), model.buffers());
  if (!bias.empty())
    for (NamedTensor& t : tensors) {
      float* v = t.tensor.data_as<float>();
      if (t.name == "classifier.weight") std::fill(v, v + t.tensor.numel(), 0.0f);
      if (t.name == "classifier.bias") std::copy(bias.begin(), bias.end(), v);
    }
  WeightAttributes attributes;
  attributes.arch_config = nn::config_text(config);
  grading::ModelCard card;
  card.head = head;
  card.tiles = tiles;
  card.thresholds = thresholds;
  card.thresholds_tuned = tuned;
  card.fold = 0;
  card.epoch = 1;
  write_model_card(card, attributes);
  attributes.user["note"] = "made by test_grader";  // any other attribute must survive a thresholds rewrite
  save_weights(path, tensors, attributes);
  return path;
}

// A mosaic that is not symmetric: a gradient plus noise.
data::Image asymmetric_mosaic(int width, int height, uint64_t seed) {
  data::Image image(width, height, 3);
  std::mt19937_64 random(seed);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      for (int c = 0; c < 3; ++c) image.at(x, y)[c] = uint8_t((x * 3 + y * 7 * (c + 1) + random() % 40) % 256);
  return image;
}

// A square mosaic invariant under all 8 symmetries: the value depends on the distances to the
// nearest vertical and horizontal edges, sorted.
data::Image symmetric_mosaic(int size) {
  data::Image image(size, size, 3);
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) {
      const int dx = std::min(x, size - 1 - x), dy = std::min(y, size - 1 - y);
      const int a = std::min(dx, dy), b = std::max(dx, dy);
      for (int c = 0; c < 3; ++c) image.at(x, y)[c] = uint8_t((a * 37 + b * 11 + c * 50 + a * b) % 256);
    }
  return image;
}

TEST(Tta, ViewsAreTheDistinctSymmetries) {
  EXPECT_EQ(parse_tta_mode("dihedral"), TtaMode::dihedral);
  EXPECT_THROW(parse_tta_mode("d4"), Error);
  const data::Image m = asymmetric_mosaic(6, 4, 1);
  EXPECT_EQ(tta_views(m, TtaMode::none).size(), 1u);
  for (TtaMode mode : {TtaMode::flips, TtaMode::dihedral}) {
    const std::vector<data::Image> views = tta_views(m, mode);
    ASSERT_EQ(int(views.size()), tta_view_count(mode));
    EXPECT_EQ(views[0].pixels, m.pixels);
    std::vector<uint8_t> sorted_original = m.pixels;
    std::sort(sorted_original.begin(), sorted_original.end());
    for (const data::Image& v : views) {
      // Each view has the same pixels, moved (a symmetry), and the sides possibly swapped.
      std::vector<uint8_t> sorted = v.pixels;
      std::sort(sorted.begin(), sorted.end());
      EXPECT_EQ(sorted, sorted_original);
      EXPECT_TRUE((v.width == 6 && v.height == 4) || (v.width == 4 && v.height == 6));
    }
    for (size_t i = 0; i < views.size(); ++i)
      for (size_t j = i + 1; j < views.size(); ++j)
        EXPECT_FALSE(views[i].width == views[j].width && views[i].pixels == views[j].pixels)
            << tta_mode_name(mode) << ": views " << i << " and " << j << " are the same";
  }
  // Corner (0,0) of the original shows up at all four corners over the dihedral views.
  const std::vector<data::Image> views = tta_views(m, TtaMode::dihedral);
  const uint8_t* corner = m.at(0, 0);
  std::set<std::pair<int, int>> where;
  for (const data::Image& v : views)
    for (const auto& [x, y] : {std::pair{0, 0}, {v.width - 1, 0}, {0, v.height - 1}, {v.width - 1, v.height - 1}})
      if (std::equal(corner, corner + 3, v.at(x, y))) where.insert({x == 0 ? 0 : 1, y == 0 ? 0 : 1});
  EXPECT_EQ(where.size(), 4u);
}

class GraderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    data::SyntheticDatasetOptions options;
    options.train_slides = 0;
    options.test_slides = 4;
    options.width = 1024;
    options.height = 512;
    options.seed = 11;
    options.threads = 2;
    data_ = dir_->path() / "data";
    write_synthetic_dataset(data_.string(), options);
    binned_ = save_model(dir_->file("binned.h5"), HeadKind::binned, 1);
    softmax_ = save_model(dir_->file("softmax.h5"), HeadKind::softmax, 2);
    // Logits (6, 6, 6, -6, -6): score = 3 sigmoid(6) + 2 sigmoid(-6) ~ 2.997, grade 3, any input.
    fixed_ = save_model(dir_->file("fixed.h5"), HeadKind::binned, 3, kTiles, {6, 6, 6, -6, -6});
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static PredictorOptions options(TtaMode tta = TtaMode::none) {
    PredictorOptions o;
    o.tta = tta;
    o.batch = 8;
    o.threads = 2;
    return o;
  }
  static std::vector<SlidePrediction> grade(const std::vector<std::string>& models, TtaMode tta,
                                            const fs::path& data = data_) {
    const Predictor predictor(models, options(tta));
    return predictor.predict(list_slides_to_grade(data.string()).slides);
  }

  static testing::TempDir* dir_;
  static fs::path data_;
  static std::string binned_, softmax_, fixed_;
};
testing::TempDir* GraderTest::dir_ = nullptr;
fs::path GraderTest::data_;
std::string GraderTest::binned_, GraderTest::softmax_, GraderTest::fixed_;

TEST_F(GraderTest, PredictableLogitsGiveTheirScoreAndGrade) {
  const double expected = 3.0 / (1.0 + std::exp(-6.0)) + 2.0 / (1.0 + std::exp(6.0));
  for (TtaMode tta : {TtaMode::none, TtaMode::dihedral}) {
    const std::vector<SlidePrediction> rows = grade({fixed_}, tta);
    ASSERT_EQ(rows.size(), 4u);
    for (const SlidePrediction& p : rows) {
      ASSERT_TRUE(p.ok) << p.error;
      EXPECT_NEAR(p.score, expected, 1e-5) << tta_mode_name(tta);
      EXPECT_EQ(p.grade, 3);
      ASSERT_EQ(p.outputs.size(), 5u);
      EXPECT_NEAR(p.outputs[0], 1.0 / (1.0 + std::exp(-6.0)), 1e-6);
      EXPECT_NEAR(p.outputs[4], 1.0 / (1.0 + std::exp(6.0)), 1e-6);
    }
  }
  // Tuned thresholds in the card move the cut: with t3 = 3.0, a score of 2.997 is grade 2.
  const std::string tuned = save_model(dir_->file("fixed_tuned.h5"), HeadKind::binned, 3, kTiles, {6, 6, 6, -6, -6},
                                       grading::parse_thresholds("0.5,1.5,3.0,3.5,4.5"), true);
  for (const SlidePrediction& p : grade({tuned}, TtaMode::none)) EXPECT_EQ(p.grade, 2);
}

TEST_F(GraderTest, DihedralDiffersFromNoneButBothAreValid) {
  const std::vector<SlidePrediction> none = grade({softmax_}, TtaMode::none);
  const std::vector<SlidePrediction> dihedral = grade({softmax_}, TtaMode::dihedral);
  ASSERT_EQ(none.size(), dihedral.size());
  int differ = 0;
  for (size_t i = 0; i < none.size(); ++i) {
    ASSERT_TRUE(none[i].ok && dihedral[i].ok);
    EXPECT_EQ(none[i].image_id, dihedral[i].image_id);
    differ += std::abs(none[i].score - dihedral[i].score) > 1e-7;
    for (const SlidePrediction* p : {&none[i], &dihedral[i]}) {
      EXPECT_GE(p->grade, 0);
      EXPECT_LE(p->grade, 5);
      ASSERT_EQ(p->outputs.size(), 6u);
      double total = 0, expected_grade = 0;
      for (size_t k = 0; k < 6; ++k) {
        total += p->outputs[k];
        expected_grade += double(k) * p->outputs[k];
      }
      EXPECT_NEAR(total, 1.0, 1e-6);
      EXPECT_NEAR(p->score, expected_grade, 1e-6);  // softmax: the expected grade of the mean probabilities
      // Untuned softmax: the argmax of the mean probabilities.
      EXPECT_EQ(p->grade, int(std::max_element(p->outputs.begin(), p->outputs.end()) - p->outputs.begin()));
    }
  }
  EXPECT_GT(differ, 0) << "dihedral TTA changed no slide's score";
}

TEST_F(GraderTest, DihedralOfASymmetricMosaicEqualsNone) {
  const data::Image symmetric = symmetric_mosaic(128);
  const data::Image asymmetric = asymmetric_mosaic(128, 128, 3);
  const Predictor none({binned_}, options(TtaMode::none));
  const Predictor dihedral({binned_}, options(TtaMode::dihedral));
  const std::vector<SlidePrediction> a = none.predict_mosaics({symmetric, asymmetric});
  const std::vector<SlidePrediction> b = dihedral.predict_mosaics({symmetric, asymmetric});
  EXPECT_NEAR(a[0].score, b[0].score, 1e-6);
  for (size_t k = 0; k < 5; ++k) EXPECT_NEAR(a[0].outputs[k], b[0].outputs[k], 1e-6);
  // The check can fail: the same network sees the asymmetric mosaic differently per view.
  EXPECT_GT(std::abs(a[1].score - b[1].score), 1e-7);
}

// The TTA score is the mean of the views' scores, also for a non-square mosaic whose quarter
// turns have the other shape (and go through the network in a pass of their own).
TEST_F(GraderTest, TtaScoreIsTheMeanOfTheViews) {
  const data::Image mosaic = asymmetric_mosaic(96, 64, 9);
  const Predictor none({binned_}, options(TtaMode::none));
  PredictorOptions small_batches = options(TtaMode::dihedral);
  small_batches.batch = 3;  // passes that split the views of one shape
  const Predictor dihedral({binned_}, small_batches);
  const std::vector<data::Image> views = tta_views(mosaic, TtaMode::dihedral);
  const std::vector<SlidePrediction> each = none.predict_mosaics(views);
  double mean = 0;
  std::vector<double> outputs(5, 0.0);
  for (const SlidePrediction& p : each) {
    mean += p.score / 8;
    for (size_t k = 0; k < 5; ++k) outputs[k] += p.outputs[k] / 8;
  }
  const std::vector<SlidePrediction> averaged = dihedral.predict_mosaics({mosaic});
  for (const SlidePrediction& p : averaged) {
    EXPECT_NEAR(p.score, mean, 1e-5);
    for (size_t k = 0; k < 5; ++k) EXPECT_NEAR(p.outputs[k], outputs[k], 1e-6);
    EXPECT_EQ(p.grade, grading::grade_from_score(p.score));
  }
}

TEST_F(GraderTest, EnsembleOfOneModelTwiceEqualsTheModel) {
  const std::vector<SlidePrediction> one = grade({binned_}, TtaMode::flips);
  const std::vector<SlidePrediction> twice = grade({binned_, binned_}, TtaMode::flips);
  ASSERT_EQ(one.size(), twice.size());
  for (size_t i = 0; i < one.size(); ++i) {
    EXPECT_NEAR(one[i].score, twice[i].score, 1e-9);
    EXPECT_EQ(one[i].grade, twice[i].grade);
    ASSERT_EQ(one[i].outputs.size(), twice[i].outputs.size());
    for (size_t k = 0; k < one[i].outputs.size(); ++k) EXPECT_NEAR(one[i].outputs[k], twice[i].outputs[k], 1e-9);
  }
  // A different model pulls the ensemble's scores to the mean of the two.
  const std::vector<SlidePrediction> alone = grade({binned_}, TtaMode::none);
  const std::vector<SlidePrediction> other = grade({fixed_}, TtaMode::none);
  const std::vector<SlidePrediction> pair = grade({binned_, fixed_}, TtaMode::none);
  for (size_t i = 0; i < one.size(); ++i) EXPECT_NEAR(pair[i].score, (alone[i].score + other[i].score) / 2, 1e-6);
}

TEST_F(GraderTest, MixedHeadsAndThresholds) {
  const std::string shifted = save_model(dir_->file("shifted.h5"), HeadKind::binned, 4, kTiles, {},
                                         grading::parse_thresholds("0.7,1.7,2.7,3.7,4.7"), true);
  const Predictor pair({binned_, shifted}, options());
  EXPECT_FALSE(pair.thresholds_agree());
  EXPECT_NEAR(pair.thresholds()[0], 0.6f, 1e-6f);
  EXPECT_NEAR(pair.thresholds()[4], 4.6f, 1e-6f);
  const Predictor untuned_softmax({softmax_}, options());
  EXPECT_TRUE(untuned_softmax.argmax_grades());
  const std::string tuned_softmax = save_model(dir_->file("softmax_tuned.h5"), HeadKind::softmax, 2, kTiles, {},
                                               grading::parse_thresholds("0.6,1.5,2.5,3.5,4.5"), true);
  const Predictor tuned({tuned_softmax}, options());
  EXPECT_FALSE(tuned.argmax_grades());
  const std::vector<SlidePrediction> tuned_rows = tuned.predict_mosaics({asymmetric_mosaic(128, 128, 6)});
  EXPECT_EQ(tuned_rows[0].grade, grading::grade_from_score(tuned_rows[0].score, tuned.thresholds()));
  const Predictor mixed({binned_, softmax_}, options());
  EXPECT_FALSE(mixed.common_head());
  EXPECT_TRUE(mixed.output_names().empty());
  EXPECT_FALSE(mixed.argmax_grades());
  const std::vector<SlidePrediction> rows = mixed.predict_mosaics({asymmetric_mosaic(128, 128, 5)});
  EXPECT_TRUE(rows[0].outputs.empty());
  EXPECT_EQ(rows[0].grade, grading::grade_from_score(rows[0].score));
}

TEST_F(GraderTest, MismatchedTilingsAndMissingModelsAreErrors) {
  const std::string other =
      save_model(dir_->file("other_tiles.h5"), HeadKind::binned, 1, data::TileSpec{9, 32, 1, false});
  try {
    Predictor({binned_, other}, options());
    FAIL() << "mismatched tilings accepted";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(binned_), std::string::npos) << m;
    EXPECT_NE(m.find(other), std::string::npos) << m;
    EXPECT_NE(m.find("tiling"), std::string::npos) << m;
  }
  const std::string missing = dir_->file("no_such_model.h5");
  try {
    Predictor({binned_, missing}, options());
    FAIL() << "missing model accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(missing + ": no such model file"), std::string::npos) << e.what();
  }
  // Weights without a model card (e.g. ImageNet's) cannot grade.
  const nn::EfficientNetConfig config = tiny_config(HeadKind::binned, 1);
  nn::EfficientNet model(config);
  const std::string plain = dir_->file("plain.h5");
  save_weights(plain, named_tensors(model.parameters(), model.buffers()),
               WeightAttributes{nn::config_text(config), {}});
  EXPECT_THROW(Predictor({plain}, options()), Error);
}

// One row per test.csv row, in order; a listed slide without a file is reported and gets grade 0;
// the submission and the details CSV have the expected columns.
TEST_F(GraderTest, SubmissionHasARowPerTestRowAndFallbackForBadSlides) {
  const fs::path data = dir_->path() / "with_bad";
  fs::create_directories(data / "test_images");
  const data::CsvTable test = data::read_csv((data_ / "test.csv").string());
  std::ofstream csv(data / "test.csv");
  csv << "image_id,data_provider\n";
  std::vector<std::string> ids;
  for (size_t i = 0; i < test.rows.size(); ++i) {
    const std::string& id = test.rows[i].fields[size_t(test.require_column("image_id"))];
    ids.push_back(id);
    fs::copy_file(data_ / "test_images" / (id + ".tiff"), data / "test_images" / (id + ".tiff"));
    csv << id << "," << (i % 2 ? "radboud" : "karolinska") << "\n";
    if (i == 1) {  // a listed slide with no file, and one that is not a slide
      ids.push_back("missing_slide");
      csv << "missing_slide,radboud\n";
      ids.push_back("not_a_slide");
      csv << "not_a_slide,radboud\n";
      std::ofstream(data / "test_images" / "not_a_slide.tiff") << "this is not a TIFF";
    }
  }
  csv.close();

  const SlidesToGrade list = list_slides_to_grade(data.string());
  ASSERT_EQ(list.slides.size(), ids.size());
  const Predictor predictor({softmax_}, options(TtaMode::flips));
  const std::vector<SlidePrediction> rows = predictor.predict(list.slides);
  ASSERT_EQ(rows.size(), ids.size());
  std::vector<data::SlideGrade> grades;
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i].image_id, ids[i]);
    const bool bad = ids[i] == "missing_slide" || ids[i] == "not_a_slide";
    EXPECT_EQ(rows[i].ok, !bad) << ids[i] << ": " << rows[i].error;
    if (bad) {
      EXPECT_EQ(rows[i].grade, 0);
      EXPECT_NE(rows[i].error.find(ids[i]), std::string::npos) << rows[i].error;
    }
    grades.push_back({rows[i].image_id, rows[i].grade, 0});
  }
  const std::string submission = dir_->file("submission.csv");
  data::write_grades_csv(submission, grades);
  std::ifstream in(submission);
  std::string header;
  std::getline(in, header);
  EXPECT_EQ(header, "image_id,isup_grade");
  const std::vector<data::SlideGrade> back = data::read_grades_csv(submission);
  ASSERT_EQ(back.size(), ids.size());
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(back[i].image_id, ids[i]);

  const std::string details = dir_->file("details.csv");
  write_details_csv(details, list, rows, predictor.output_names());
  const data::CsvTable table = data::read_csv(details);
  EXPECT_EQ(table.header, (std::vector<std::string>{"image_id", "data_provider", "score", "p0", "p1", "p2", "p3", "p4",
                                                    "p5", "isup_grade", "status"}));
  ASSERT_EQ(table.rows.size(), ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::vector<std::string>& f = table.rows[i].fields;
    EXPECT_EQ(f[0], ids[i]);
    EXPECT_EQ(f[10], rows[i].ok ? "ok" : "failed");
    EXPECT_EQ(f[9], std::to_string(rows[i].grade));
    if (rows[i].ok) {
      EXPECT_NEAR(std::stod(f[2]), rows[i].score, 1e-6);
    } else {
      EXPECT_EQ(f[2], "");
    }
  }
}

TEST_F(GraderTest, WithoutTestCsvEveryTiffIsGraded) {
  const fs::path folder = dir_->path() / "loose";
  fs::create_directories(folder);
  std::vector<std::string> names;
  for (const fs::directory_entry& e : fs::directory_iterator(data_ / "test_images")) {
    fs::copy_file(e.path(), folder / e.path().filename());
    names.push_back(e.path().stem().string());
  }
  std::ofstream(folder / "x_mask.tiff") << "mask";
  std::sort(names.begin(), names.end());
  const SlidesToGrade list = list_slides_to_grade(folder.string());
  ASSERT_EQ(list.slides.size(), names.size());
  for (size_t i = 0; i < names.size(); ++i) EXPECT_EQ(list.slides[i].id, names[i]);
  EXPECT_NE(list.source.find("no test.csv"), std::string::npos);
  EXPECT_THROW(list_slides_to_grade(dir_->file("nowhere")), Error);
}

// Runs `slidegrade ARGS`, stdout and stderr into one string; returns the exit status.
int run_slidegrade(const std::string& binary, const std::string& args, const testing::TempDir& dir,
                   std::string& output) {
  const std::string log = dir.file("cli.log");
  const int status = std::system((binary + " " + args + " > " + log + " 2>&1").c_str());
  std::ifstream in(log);
  std::stringstream text;
  text << in.rdbuf();
  output = text.str();
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// The commands end to end; ctest's grade_cli runs this with SG_SLIDEGRADE_BINARY set.
TEST_F(GraderTest, CommandLine) {
  const char* binary = std::getenv("SG_SLIDEGRADE_BINARY");
  if (!binary) GTEST_SKIP() << "SG_SLIDEGRADE_BINARY not set (ctest's grade_cli sets it)";
  // test.csv with a row whose slide is missing.
  const fs::path data = dir_->path() / "cli_data";
  fs::create_directories(data);
  fs::copy(data_ / "test_images", data / "test_images");
  std::ifstream original(data_ / "test.csv");
  std::stringstream csv;
  csv << original.rdbuf() << "0123456789abcdef0123456789abcdef,radboud\n";
  std::ofstream(data / "test.csv") << csv.str();

  const std::string out = dir_->file("cli_submission.csv"), details = dir_->file("cli_details.csv");
  std::string output;
  ASSERT_EQ(run_slidegrade(binary,
                           "grade --models " + binned_ + " " + binned_ + " --data " + data.string() +
                               " --tta flips --device cpu --batch 8 --threads 2 --out " + out + " --details " + details,
                           *dir_, output),
            0)
      << output;
  EXPECT_NE(output.find("test.csv"), std::string::npos) << output;
  EXPECT_NE(output.find("slide 0123456789abcdef0123456789abcdef not graded (fallback grade 0)"), std::string::npos)
      << output;
  EXPECT_NE(output.find("graded 4 slides, 1 not graded"), std::string::npos) << output;
  const std::vector<data::SlideGrade> grades = data::read_grades_csv(out);
  ASSERT_EQ(grades.size(), 5u);
  EXPECT_EQ(grades[4].image_id, "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(grades[4].isup_grade, 0);
  const data::CsvTable table = data::read_csv(details);
  EXPECT_EQ(table.header.size(), 3u + 5u + 2u);  // binned: sigmoid1..sigmoid5
  EXPECT_EQ(table.header[3], "sigmoid1");
  ASSERT_EQ(table.rows.size(), 5u);
  EXPECT_EQ(table.rows[4].fields.back(), "failed");

  // Sharded: three tasks of a third each, joined, give the unsharded submission byte for byte.
  std::vector<std::string> parts;
  for (int k = 0; k < 3; ++k) {
    parts.push_back(dir_->file(detail::concat("cli_part", k, ".csv")));
    ASSERT_EQ(run_slidegrade(binary,
                             detail::concat("grade --models ", binned_, " ", binned_, " --data ", data.string(),
                                            " --tta flips --device cpu --batch 8 --threads 2 --shard ", k,
                                            "/3 --out ", parts.back()),
                             *dir_, output),
              0)
        << output;
    EXPECT_NE(output.find(detail::concat("shard ", k, "/3: ", k < 2 ? 2 : 1, " of 5 slides")), std::string::npos)
        << output;
  }
  const std::string merged = dir_->file("cli_merged.csv");
  ASSERT_EQ(run_slidegrade(binary,
                           "merge-grades " + merged + " " + parts[2] + " " + parts[0] + " " + parts[1] + " --data " +
                               data.string(),
                           *dir_, output),
            0)
      << output;
  EXPECT_EQ(file_text(merged), file_text(out));
  EXPECT_FALSE(file_text(out).empty());
  EXPECT_EQ(run_slidegrade(binary, "merge-grades " + merged + " " + parts[0] + " --data " + data.string(), *dir_, output),
            1);
  EXPECT_NE(output.find("are in no part"), std::string::npos) << output;
  EXPECT_EQ(run_slidegrade(binary, "grade --models " + binned_ + " --data " + data.string() + " --shard 3/3", *dir_,
                           output),
            2);  // a usage error, before anything runs
  EXPECT_NE(output.find("--shard '3/3': expected K/N with 0 <= K < N"), std::string::npos) << output;

  // Bad input: a missing model file is named, a bad TTA mode is refused.
  const std::string missing = dir_->file("missing_model.h5");
  EXPECT_EQ(
      run_slidegrade(binary, "grade --models " + missing + " --data " + data.string() + " --out " + out, *dir_, output),
      1);
  EXPECT_NE(output.find(missing + ": no such model file"), std::string::npos) << output;
  EXPECT_EQ(
      run_slidegrade(binary, "grade --models " + binned_ + " --data " + data.string() + " --tta rot", *dir_, output),
      2);  // a usage error
  EXPECT_NE(output.find("unknown TTA mode 'rot' (expected none, flips or dihedral)"), std::string::npos) << output;

  // thresholds: a run folder with out-of-fold predictions and best.h5; one without.
  const fs::path run = dir_->path() / "cli_run";
  fs::create_directories(run);
  {
    std::ofstream oof(run / "oof_predictions.csv");
    oof << "image_id,data_provider,isup_grade,fold,score,prediction\n";
    // Scores 0.7 above the grade: rounding is off by one for grades 0-4, tuned thresholds are not.
    for (int i = 0; i < 60; ++i)
      oof << "s" << i << ",radboud," << i % 6 << ",0," << (i % 6) + 0.7 << "," << std::min(i % 6 + 1, 5) << "\n";
  }
  fs::copy_file(binned_, run / "best.h5");
  ASSERT_EQ(run_slidegrade(binary, "thresholds " + run.string(), *dir_, output), 0) << output;
  EXPECT_NE(output.find("tuned thresholds:      QWK 1.0000"), std::string::npos) << output;
  EXPECT_EQ(output.find("default thresholds:    QWK 1.0000"), std::string::npos) << output;
  EXPECT_NE(output.find("stored in " + (run / "best.h5").string()), std::string::npos) << output;
  const WeightFileInfo info = read_weight_file_info((run / "best.h5").string());
  EXPECT_TRUE(grading::read_model_card(info.attributes, "best.h5").thresholds_tuned);
  const fs::path empty = dir_->path() / "cli_empty_run";
  fs::create_directories(empty);
  EXPECT_EQ(run_slidegrade(binary, "thresholds " + empty.string(), *dir_, output), 1);
  EXPECT_NE(output.find(empty.string() + ": no oof_predictions.csv"), std::string::npos) << output;
}

// ---- thresholds

void write_oof(const fs::path& run, const std::vector<double>& scores, const std::vector<int>& truth, int fold) {
  fs::create_directories(run);
  std::ofstream out(run / "oof_predictions.csv");
  out << "image_id,data_provider,isup_grade,fold,score,prediction\n";
  for (size_t i = 0; i < scores.size(); ++i)
    out << "id" << fold << "_" << i << "," << (i % 2 ? "radboud" : "karolinska") << "," << truth[i] << "," << fold
        << "," << scores[i] << "," << grading::grade_from_score(scores[i]) << "\n";
}

TEST(Thresholds, TunedBeatDefaultsAndLandNearTheShift) {
  // score = grade + 0.3 + noise: the true cut points are k + 0.3 + 0.5.
  std::mt19937_64 random(7);
  std::normal_distribution<double> noise(0.0, 0.15);
  std::vector<double> scores;
  std::vector<int> truth;
  for (int i = 0; i < 1200; ++i) {
    const int g = i % 6;
    truth.push_back(g);
    scores.push_back(g + 0.3 + noise(random));
  }
  const grading::Thresholds tuned = tune_thresholds(scores, truth);
  const double before = *qwk_with_thresholds(scores, truth, grading::kDefaultThresholds);
  const double after = *qwk_with_thresholds(scores, truth, tuned);
  EXPECT_GT(after, before + 0.005) << grading::thresholds_text(tuned);
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_NEAR(tuned[i], double(i) + 0.8, 0.1) << grading::thresholds_text(tuned);
    if (i > 0) {
      EXPECT_LE(tuned[i - 1], tuned[i]);
    }
  }
  // Deterministic.
  EXPECT_EQ(tune_thresholds(scores, truth), tuned);
  // Never worse than the start, even where nothing can be gained (perfect scores).
  std::vector<double> perfect(truth.begin(), truth.end());
  const grading::Thresholds same = tune_thresholds(perfect, truth);
  EXPECT_GE(*qwk_with_thresholds(perfect, truth, same),
            *qwk_with_thresholds(perfect, truth, grading::kDefaultThresholds));
  EXPECT_EQ(same, grading::kDefaultThresholds);
  // Random scores: QWK does not fall.
  std::uniform_real_distribution<double> uniform(-1.0, 6.0);
  std::vector<double> random_scores;
  for (size_t i = 0; i < truth.size(); ++i) random_scores.push_back(uniform(random));
  EXPECT_GE(*qwk_with_thresholds(random_scores, truth, tune_thresholds(random_scores, truth)),
            *qwk_with_thresholds(random_scores, truth, grading::kDefaultThresholds));
}

TEST(Thresholds, StoredInEachRunsBestWeights) {
  const testing::TempDir dir;
  std::mt19937_64 random(9);
  std::normal_distribution<double> noise(0.0, 0.15);
  std::vector<std::string> runs;
  std::vector<std::string> weights;
  for (int fold = 0; fold < 2; ++fold) {
    std::vector<double> scores;
    std::vector<int> truth;
    for (int i = 0; i < 300; ++i) {
      truth.push_back(i % 6);
      scores.push_back((i % 6) - 0.35 + noise(random));
    }
    const fs::path run = dir.path() / "runs" / ("fold" + std::to_string(fold));
    write_oof(run, scores, truth, fold);
    weights.push_back(save_model((run / "best.h5").string(), HeadKind::regression, uint64_t(fold)));
  }
  std::map<std::string, WeightFileInfo> files_before;
  for (const std::string& path : weights) files_before[path] = read_weight_file_info(path);
  // The parent of fold0/ fold1/ stands for both.
  const ThresholdTuning result = tune_run_thresholds({(dir.path() / "runs").string()});
  ASSERT_EQ(result.runs.size(), 2u);
  EXPECT_EQ(result.rows.size(), 600u);
  const double before = *grading::quadratic_weighted_kappa(result.with_default.overall);
  const double after = *grading::quadratic_weighted_kappa(result.with_tuned.overall);
  EXPECT_GT(after, before);
  EXPECT_EQ(result.with_tuned.by_group.size(), 2u);
  ASSERT_EQ(result.updated.size(), 2u);
  for (const std::string& path : weights) {
    const WeightFileInfo info = read_weight_file_info(path);
    const grading::ModelCard card = grading::read_model_card(info.attributes, path);
    EXPECT_TRUE(card.thresholds_tuned);
    EXPECT_EQ(card.thresholds, result.tuned);
    EXPECT_EQ(info.attributes.user.at("note"), "made by test_grader");
    EXPECT_EQ(info.attributes.arch_config, files_before.at(path).attributes.arch_config);
    ASSERT_EQ(info.tensors.size(), files_before.at(path).tensors.size());
    for (size_t i = 0; i < info.tensors.size(); ++i) {
      EXPECT_EQ(info.tensors[i].name, files_before.at(path).tensors[i].name);
      EXPECT_EQ(info.tensors[i].shape, files_before.at(path).tensors[i].shape);
      EXPECT_EQ(info.tensors[i].dtype, files_before.at(path).tensors[i].dtype);
    }
    EXPECT_EQ(card.head, HeadKind::regression);
    EXPECT_EQ(card.tiles, kTiles);
    // Same tensors: the rewritten file still loads strictly and grades.
    nn::EfficientNet reference(tiny_config(HeadKind::regression, 0));
    EXPECT_NO_THROW(load_weights(path, named_tensors(reference.parameters(), reference.buffers())));
    const Predictor predictor({path}, PredictorOptions{});
    EXPECT_EQ(predictor.thresholds(), result.tuned);
  }
  // The tensors are unchanged by the rewrite: the file's values equal a fresh model of the same seed.
  {
    nn::EfficientNet fresh(tiny_config(HeadKind::regression, 0));
    nn::EfficientNet loaded(tiny_config(HeadKind::regression, 5));
    load_weights(weights[0], named_tensors(loaded.parameters(), loaded.buffers()));
    const auto a = fresh.parameters();
    const auto b = loaded.parameters();
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i]->value.to_floats(), b[i]->value.to_floats()) << a[i]->name;
  }
  // A run folder without out-of-fold predictions is named.
  const fs::path empty = dir.path() / "empty_run";
  fs::create_directories(empty);
  try {
    tune_run_thresholds({empty.string()});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(empty.string() + ": no oof_predictions.csv"), std::string::npos) << e.what();
  }
  // The same run twice would pool its predictions twice.
  EXPECT_THROW(tune_run_thresholds({(dir.path() / "runs").string(), (dir.path() / "runs" / "fold1").string()}), Error);
  // A run without best.h5: nothing is written anywhere.
  const fs::path lone = dir.path() / "lone";
  write_oof(lone, {0.1, 1.2, 2.0}, {0, 1, 2}, 0);
  const grading::Thresholds stored = result.tuned;
  std::ofstream(lone / "oof_predictions.csv", std::ios::app) << "id_x,radboud,5,0,0.1,0\n";  // would move the cut
  EXPECT_THROW(tune_run_thresholds({(dir.path() / "runs").string(), lone.string()}), Error);
  for (const std::string& path : weights)
    EXPECT_EQ(grading::read_model_card(read_weight_file_info(path).attributes, path).thresholds, stored);
}

}  // namespace
}  // namespace sg::infer
