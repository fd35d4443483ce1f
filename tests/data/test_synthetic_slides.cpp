// Synthetic PANDA-like slides: a balanced, consistent plan (Gleason -> ISUP as docs/panda_and_openslide.md section 6
// gives it, written out independently here); pyramids OpenSlide reads as generic-tiff with
// 3 levels; lossless masks with labels in the provider's range that follow the paint; the same
// seed writes the same bytes; bands join exactly; and the grade shows in the pixels.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <opencv2/imgproc.hpp>
#include <set>
#include <sstream>

#include "data/opencv_view.h"
#include "data/slide_reader.h"
#include "data/synthetic_slides.h"
#include "tests/support/testing.h"

namespace sg::data {
namespace {

namespace fs = std::filesystem;

// docs/panda_and_openslide.md section 6: 3+3 -> 1; 3+4 -> 2; 4+3 -> 3; 4+4, 3+5, 5+3 -> 4; 4+5, 5+4, 5+5 -> 5.
const std::map<std::string, int> kIsupOfGleason{{"negative", 0}, {"0+0", 0}, {"3+3", 1}, {"3+4", 2},
                                                {"4+3", 3},      {"4+4", 4}, {"3+5", 4}, {"5+3", 4},
                                                {"4+5", 5},      {"5+4", 5}, {"5+5", 5}};

std::vector<std::vector<std::string>> read_csv(const fs::path& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  std::vector<std::vector<std::string>> rows;
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> cells;
    std::stringstream stream(line);
    for (std::string cell; std::getline(stream, cell, ',');) cells.push_back(cell);
    rows.push_back(cells);
  }
  return rows;
}

std::string file_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

SyntheticSlideSpec spec_for(int grade, const std::string& provider, uint64_t seed, int width = 1024, int height = 768) {
  SyntheticSlideSpec spec;
  spec.image_id = "g" + std::to_string(grade) + "_" + provider + "_" + std::to_string(seed);
  spec.data_provider = provider;
  spec.isup_grade = grade;
  spec.gleason_score = synthetic_gleason_score(grade, provider, seed);
  spec.seed = seed;
  spec.width = width;
  spec.height = height;
  return spec;
}

Image render_all(const SyntheticSlide& slide, bool mask) {
  Image image(slide.spec().width, slide.spec().height, 3);
  if (mask)
    slide.render_mask(0, image);
  else
    slide.render_rgb(0, image);
  return image;
}

class SyntheticSlidesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("sg_synth_" + std::to_string(rng_.seed()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  testing::Rng rng_;
  fs::path dir_;
};

TEST(SyntheticSlidesPlan, BalancedAndConsistent) {
  SyntheticDatasetOptions options;
  options.train_slides = 40;
  options.seed = 7;
  const SyntheticDataset plan = plan_synthetic_dataset(options);
  ASSERT_EQ(plan.train.size(), 40u);
  EXPECT_EQ(plan.test.size(), 8u);  // default: slides / 5
  std::map<std::pair<int, std::string>, int> per_grade_provider;
  std::set<std::string> ids;
  int negative = 0, pens = 0;
  for (const auto* split : {&plan.train, &plan.test})
    for (const SyntheticSlideSpec& s : *split) {
      EXPECT_TRUE(ids.insert(s.image_id).second) << "duplicate id " << s.image_id;
      EXPECT_EQ(s.image_id.size(), 32u);
      EXPECT_EQ(s.image_id.find_first_not_of("0123456789abcdef"), std::string::npos) << s.image_id;
      ASSERT_TRUE(kIsupOfGleason.count(s.gleason_score)) << s.gleason_score;
      EXPECT_EQ(kIsupOfGleason.at(s.gleason_score), s.isup_grade) << s.image_id << " " << s.gleason_score;
      EXPECT_TRUE(s.data_provider == "radboud" || s.data_provider == "karolinska") << s.data_provider;
      negative += s.gleason_score == "negative";
      pens += s.pen_marks;
      if (split == &plan.train) ++per_grade_provider[{s.isup_grade, s.data_provider}];
    }
  EXPECT_GT(negative, 0);
  EXPECT_GT(pens, 0);
  EXPECT_LT(pens, 48);
  // Every grade from both providers, grades within one slide of each other.
  for (int grade = 0; grade < 6; ++grade) {
    const int radboud = per_grade_provider[std::make_pair(grade, std::string("radboud"))];
    const int karolinska = per_grade_provider[std::make_pair(grade, std::string("karolinska"))];
    EXPECT_GE(radboud, 1) << grade;
    EXPECT_GE(karolinska, 1) << grade;
    const int count = radboud + karolinska;
    EXPECT_TRUE(count == 6 || count == 7) << "grade " << grade << ": " << count;
  }
  // A different seed gives different ids; the same seed the same plan.
  options.seed = 8;
  EXPECT_NE(plan_synthetic_dataset(options).train[0].image_id, plan.train[0].image_id);
  options.seed = 7;
  EXPECT_EQ(plan_synthetic_dataset(options).train[5].image_id, plan.train[5].image_id);
}

TEST_F(SyntheticSlidesTest, DatasetOnDiskIsReadableAndDeterministic) {
  SyntheticDatasetOptions options;
  options.train_slides = 3;
  options.test_slides = 2;
  options.width = 768;
  options.height = 512;
  options.seed = static_cast<uint64_t>(rng_.integer(0, 1 << 30));
  SG_TRACE_SEED(rng_);
  const SyntheticDataset dataset = write_synthetic_dataset((dir_ / "a").string(), options);

  const auto train = read_csv(dir_ / "a" / "train.csv");
  ASSERT_EQ(train.size(), 4u);
  EXPECT_EQ(train[0], (std::vector<std::string>{"image_id", "data_provider", "isup_grade", "gleason_score"}));
  for (size_t i = 0; i < dataset.train.size(); ++i) {
    const SyntheticSlideSpec& s = dataset.train[i];
    EXPECT_EQ(train[i + 1],
              (std::vector<std::string>{s.image_id, s.data_provider, std::to_string(s.isup_grade), s.gleason_score}));
    EXPECT_EQ(kIsupOfGleason.at(train[i + 1][3]), std::stoi(train[i + 1][2]));
    for (const fs::path& file : {dir_ / "a" / "train_images" / (s.image_id + ".tiff"),
                                 dir_ / "a" / "train_label_masks" / (s.image_id + "_mask.tiff")}) {
      const Slide slide(file.string());
      EXPECT_EQ(slide.vendor(), "generic-tiff") << file;
      ASSERT_EQ(slide.level_count(), 3) << file;
      EXPECT_EQ(slide.level_dimensions(0), (LevelSize{768, 512}));
      EXPECT_NEAR(slide.level_downsample(1), 4.0, 1e-9);
      EXPECT_NEAR(slide.level_downsample(2), 16.0, 1e-9);
    }
  }
  const auto test = read_csv(dir_ / "a" / "test.csv");
  const auto truth = read_csv(dir_ / "a" / "test_truth.csv");
  ASSERT_EQ(test.size(), 3u);
  ASSERT_EQ(truth.size(), 3u);
  EXPECT_EQ(test[0], (std::vector<std::string>{"image_id", "data_provider"}));
  for (size_t i = 1; i < test.size(); ++i) {
    EXPECT_EQ(test[i][0], truth[i][0]);
    EXPECT_EQ(test[i][1], truth[i][1]);
    EXPECT_TRUE(fs::exists(dir_ / "a" / "test_images" / (test[i][0] + ".tiff")));
    EXPECT_FALSE(fs::exists(dir_ / "a" / "train_label_masks" / (test[i][0] + "_mask.tiff")));
  }

  // Same seed: the same bytes, file for file (with a different thread count). Another seed: not.
  options.threads = 1;
  write_synthetic_dataset((dir_ / "b").string(), options);
  options.seed += 1;
  write_synthetic_dataset((dir_ / "c").string(), options);
  size_t files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir_ / "a")) {
    if (!entry.is_regular_file()) continue;
    ++files;
    const fs::path relative = fs::relative(entry.path(), dir_ / "a");
    EXPECT_EQ(file_bytes(entry.path()), file_bytes(dir_ / "b" / relative)) << relative;
  }
  EXPECT_EQ(files, 3u + 3u + 2u + 3u);
  EXPECT_NE(file_bytes(dir_ / "a" / "train.csv"), file_bytes(dir_ / "c" / "train.csv"));
}

// The primary Gleason pattern is by definition the most extensive: on every mixed Radboud slide the
// mask holds more of the primary's label than of the secondary's, with the margin the painter gives
// it (at least 1.25 times the area, less what glands of other segments cover). Fresh seeds for every
// mixed score, and the slide that once failed MasksAreLosslessAndFollowThePaint (SG_TEST_SEED
// 5314733430572358696: its second slide, a 4+3 painted with 37,928 pixels of pattern 3 and 37,828
// of pattern 4).
TEST_F(SyntheticSlidesTest, PrimaryPatternIsTheMostExtensive) {
  SG_TRACE_SEED(rng_);
  struct Case {
    std::string score;
    uint64_t seed;
  };
  testing::Rng replay(5314733430572358696ULL);
  (void)replay.integer(0, 1 << 30);
  std::vector<Case> cases{{"4+3", static_cast<uint64_t>(replay.integer(0, 1 << 30))}};
  for (int i = 0; i < 4; ++i)
    for (const char* score : {"3+4", "4+3", "3+5", "5+3", "4+5", "5+4"})
      cases.push_back({score, static_cast<uint64_t>(rng_.integer(0, 1 << 30))});
  for (const Case& c : cases) {
    SyntheticSlideSpec spec = spec_for(kIsupOfGleason.at(c.score), "radboud", c.seed);
    spec.gleason_score = c.score;
    const SyntheticSlide slide(spec);
    const Image mask = render_all(slide, true);
    std::array<int64_t, 256> count{};
    for (size_t i = 0; i < mask.pixels.size(); i += 3) ++count[mask.pixels[i]];
    const int primary = c.score[0] - '0', secondary = c.score[2] - '0';
    EXPECT_GT(count[secondary], 0) << c.score << " seed " << c.seed;
    EXPECT_GT(double(count[primary]), 1.1 * double(count[secondary]))
        << c.score << " seed " << c.seed << ": pattern " << primary << " " << count[primary] << " pixels, pattern "
        << secondary << " " << count[secondary];
  }
}

TEST_F(SyntheticSlidesTest, MasksAreLosslessAndFollowThePaint) {
  SG_TRACE_SEED(rng_);
  for (const std::string provider : {"radboud", "karolinska"})
    for (const int grade : {0, 3, 5}) {
      const SyntheticSlide slide(spec_for(grade, provider, static_cast<uint64_t>(rng_.integer(0, 1 << 30))));
      const std::string path = (dir_ / (provider + std::to_string(grade) + "_mask.tiff")).string();
      slide.write_mask(path);
      const Image painted = render_all(slide, true);
      const Slide mask(path);
      ASSERT_EQ(mask.level_count(), 3);
      EXPECT_EQ(mask.read_level(0).pixels, painted.pixels) << provider << " grade " << grade;
      // Reduced levels: nearest-neighbour, so labels stay labels.
      cv::Mat reduced;
      cv::resize(as_mat(painted), reduced, cv::Size(1024 / 16, 768 / 16), 0, 0, cv::INTER_NEAREST);
      EXPECT_EQ(mask.read_level(2).pixels, to_image(reduced).pixels);

      std::array<int64_t, 256> count{};
      for (size_t i = 0; i < painted.pixels.size(); i += 3) {
        ++count[painted.pixels[i]];
        ASSERT_EQ(painted.pixels[i + 1], 0);
        ASSERT_EQ(painted.pixels[i + 2], 0);
      }
      const int max_label = provider == "radboud" ? 5 : 2;
      for (int label = max_label + 1; label < 256; ++label)
        EXPECT_EQ(count[label], 0) << provider << " label " << label;
      int64_t cancer = 0;
      for (int label = provider == "radboud" ? 3 : 2; label <= max_label; ++label) cancer += count[label];
      EXPECT_GT(count[0], 0);  // background
      EXPECT_GT(count[1], 0);  // stroma / benign tissue
      if (grade == 0) {
        EXPECT_EQ(cancer, 0) << provider;
      } else {
        EXPECT_GT(cancer, 0) << provider << " grade " << grade;
      }
      if (provider == "radboud" && grade == 5) {
        EXPECT_GT(count[5], 0);  // 4+5, 5+4 or 5+5 all paint pattern 5
      }
      if (provider == "radboud" && grade == 3) {  // 4+3: more pattern 4 than 3
        EXPECT_GT(count[4], count[3]);
        EXPECT_GT(count[3], 0);
      }
      // The mask follows the paint: background labels sit on white, tissue labels on colour.
      const Image rgb = render_all(slide, false);
      int64_t white_on_tissue = 0, tissue = 0;
      for (size_t i = 0; i < rgb.pixels.size(); i += 3)
        if (painted.pixels[i] > 0) {
          ++tissue;
          white_on_tissue += rgb.pixels[i] + rgb.pixels[i + 1] + rgb.pixels[i + 2] >= 750;
        }
      EXPECT_LT(static_cast<double>(white_on_tissue), 0.02 * static_cast<double>(tissue));
    }
}

TEST(SyntheticSlides, BandsJoinExactly) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  SyntheticSlideSpec spec = spec_for(4, "radboud", rng.seed(), 900, 700);
  spec.pen_marks = true;
  const SyntheticSlide slide(spec);
  const Image whole = render_all(slide, false), whole_mask = render_all(slide, true);
  for (int y0 = 0; y0 < 700;) {
    const int rows = std::min(static_cast<int>(rng.integer(1, 200)), 700 - y0);
    Image band(900, rows, 3), mask(900, rows, 3);
    slide.render_rgb(y0, band);
    slide.render_mask(y0, mask);
    ASSERT_TRUE(std::equal(band.pixels.begin(), band.pixels.end(), whole.row(y0))) << "rows " << y0 << "+" << rows;
    ASSERT_TRUE(std::equal(mask.pixels.begin(), mask.pixels.end(), whole_mask.row(y0))) << "rows " << y0 << "+" << rows;
    y0 += rows;
  }
}

TEST(SyntheticSlides, PenMarksAreInkNotLabels) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  SyntheticSlideSpec spec = spec_for(2, "karolinska", rng.seed());
  const SyntheticSlide clean(spec);
  spec.pen_marks = true;
  const SyntheticSlide marked(spec);
  EXPECT_EQ(render_all(marked, true).pixels, render_all(clean, true).pixels);
  const Image a = render_all(clean, false), b = render_all(marked, false);
  // Ink pixels: changed and strongly unlike H&E (green, blue or near-black).
  int64_t ink = 0;
  for (size_t i = 0; i < a.pixels.size(); i += 3) {
    const int r = b.pixels[i], g = b.pixels[i + 1], bl = b.pixels[i + 2];
    const bool changed = a.pixels[i] != r || a.pixels[i + 1] != g || a.pixels[i + 2] != bl;
    ink += changed && (g > r + 40 || bl > r + 60 || r + g + bl < 200);
  }
  EXPECT_GT(ink, 500);
}

TEST(SyntheticSlides, GradeShowsInThePixels) {
  // Over several slides per grade: the painted cancer share grows with the grade, and the tissue
  // gets darker (crowded dark glands, solid sheets). Twelve slides per grade: grades 2 and 3 differ
  // in darkness by less than one slide's stain varies, so a mean of four could order them either way.
  std::array<double, 6> share{}, darkness{};
  constexpr int kPerGrade = 12;
  for (int grade = 0; grade < 6; ++grade)
    for (int k = 0; k < kPerGrade; ++k) {
      const SyntheticSlide slide(spec_for(grade, k % 2 ? "radboud" : "karolinska", 1000 + 17 * k + grade, 1024, 512));
      share[static_cast<size_t>(grade)] += slide.cancer_share() / kPerGrade;
      const Image rgb = render_all(slide, false), mask = render_all(slide, true);
      double sum = 0;
      int64_t n = 0;
      for (size_t i = 0; i < rgb.pixels.size(); i += 3)
        if (mask.pixels[i] > 0) {
          sum += 765 - (rgb.pixels[i] + rgb.pixels[i + 1] + rgb.pixels[i + 2]);
          ++n;
        }
      darkness[static_cast<size_t>(grade)] += sum / static_cast<double>(n) / kPerGrade;
    }
  EXPECT_EQ(share[0], 0.0);
  for (int grade = 1; grade < 6; ++grade) {
    EXPECT_GT(share[static_cast<size_t>(grade)], share[static_cast<size_t>(grade - 1)]) << "grade " << grade;
    EXPECT_GT(darkness[static_cast<size_t>(grade)], darkness[static_cast<size_t>(grade - 1)]) << "grade " << grade;
  }
}

TEST(SyntheticSlides, BadSpecsNameTheSlide) {
  auto error_of = [](SyntheticSlideSpec spec) {
    try {
      SyntheticSlide slide(spec);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  SyntheticSlideSpec spec = spec_for(2, "radboud", 1);
  spec.image_id = "bad1";
  spec.data_provider = "utrecht";
  EXPECT_EQ(error_of(spec), "synthetic slide bad1: data provider 'utrecht' is not radboud or karolinska");
  spec = spec_for(2, "radboud", 1);
  spec.image_id = "bad2";
  spec.gleason_score = "4+3";
  EXPECT_EQ(error_of(spec), "synthetic slide bad2: Gleason 4+3 is ISUP 3, not 2");
  spec.gleason_score = "2+3";
  EXPECT_NE(error_of(spec).find("Gleason score '2+3'"), std::string::npos);
  spec = spec_for(2, "radboud", 1, 100, 100);
  EXPECT_NE(error_of(spec).find("size 100x100 is outside"), std::string::npos);
}

}  // namespace
}  // namespace sg::data
