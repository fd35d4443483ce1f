// The CSV reader and the PANDA tables: any column order, CRLF, quotes, BOM; `negative`; the
// Gleason/ISUP cross-check; the known-bad ids; and each bad row named by file, line and value.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <random>

#include "core/error.h"
#include "data/csv.h"
#include "data/panda_dataset.h"

namespace sg::data {
namespace {

namespace fs = std::filesystem;

// A fresh directory under the system temp directory, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() /
            ("sg_panda_" + std::string(info->name()) + "_" + std::to_string(std::random_device{}()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  fs::path write(const std::string& name, const std::string& text) const {
    const fs::path p = path_ / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << text;
    return p;
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Csv, QuotesCrlfBomAndBlankLines) {
  const std::string text =
      "\xEF\xBB\xBF"
      "a,b,c\r\n"
      "1,\"x,y\",3\r\n"
      "\r\n"
      "\"he said \"\"hi\"\"\",,\"two\nlines\"\n"
      "\"\",last,\n";
  const auto records = parse_csv(text, "mem.csv");
  ASSERT_EQ(records.size(), 4u);
  EXPECT_EQ(records[0].fields, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(records[1].fields, (std::vector<std::string>{"1", "x,y", "3"}));
  EXPECT_EQ(records[1].line, 2);
  EXPECT_EQ(records[2].fields, (std::vector<std::string>{"he said \"hi\"", "", "two\nlines"}));
  EXPECT_EQ(records[2].line, 4);
  EXPECT_EQ(records[3].fields, (std::vector<std::string>{"", "last", ""}));
  EXPECT_EQ(records[3].line, 6);  // the quoted line break counted
  for (const std::string value : {"plain", "a,b", "say \"x\"", "multi\nline"}) {
    const auto back = parse_csv(csv_field(value) + ",z\n", "mem");
    ASSERT_EQ(back.size(), 1u);
    EXPECT_EQ(back[0].fields[0], value);
  }
}

TEST(Csv, MalformedQuotesNameTheLine) {
  EXPECT_NE(error_of([] { parse_csv("a,b\n1,\"open\n2,3\n", "f.csv"); }).find("f.csv: line 2: quoted field is never closed"),
            std::string::npos);
  const std::string junk = error_of([] { parse_csv("a,b\n1,2\n\"x\"y,2\n", "f.csv"); });
  EXPECT_NE(junk.find("f.csv: line 3: unexpected character 'y'"), std::string::npos) << junk;
}

TEST(PandaDataset, ReadsTrainInAnyColumnOrder) {
  TempDir dir;
  const fs::path csv = dir.write("train.csv",
                                 "gleason_score,extra,image_id,isup_grade,data_provider\r\n"
                                 "negative,q,\"aaa\",0,karolinska\r\n"
                                 "0+0,q,bbb,0,radboud\r\n"
                                 "3+4,\"x, y\",ccc,2,radboud\r\n"
                                 "5+5,q,ddd,5,karolinska\r\n");
  const PandaDataset d = read_panda_train_csv(csv.string());
  ASSERT_EQ(d.rows.size(), 4u);
  EXPECT_TRUE(d.has_labels());
  EXPECT_EQ(d.rows[0].image_id, "aaa");
  EXPECT_EQ(d.rows[0].provider, Provider::karolinska);
  EXPECT_EQ(d.rows[0].gleason, (Gleason{0, 0}));  // negative = 0+0
  EXPECT_EQ(d.rows[0].isup_grade, 0);
  EXPECT_EQ(d.rows[1].provider, Provider::radboud);
  EXPECT_EQ(d.rows[2].gleason, (Gleason{3, 4}));
  EXPECT_EQ(d.rows[2].isup_grade, 2);
  EXPECT_EQ(d.rows[2].line, 4);
  EXPECT_EQ(d.rows[3].isup_grade, 5);
  EXPECT_TRUE(d.warnings.empty());
  EXPECT_EQ(panda_slide_path("/data", "ccc"), fs::path("/data/train_images/ccc.tiff"));
  EXPECT_EQ(panda_mask_path("/data", "ccc"), fs::path("/data/train_label_masks/ccc_mask.tiff"));
}

TEST(PandaDataset, GleasonToIsupTable) {
  EXPECT_EQ(isup_from_gleason({0, 0}), 0);
  EXPECT_EQ(isup_from_gleason({3, 3}), 1);
  EXPECT_EQ(isup_from_gleason({3, 4}), 2);
  EXPECT_EQ(isup_from_gleason({4, 3}), 3);
  EXPECT_EQ(isup_from_gleason({4, 4}), 4);
  EXPECT_EQ(isup_from_gleason({3, 5}), 4);
  EXPECT_EQ(isup_from_gleason({5, 3}), 4);
  EXPECT_EQ(isup_from_gleason({4, 5}), 5);
  EXPECT_EQ(isup_from_gleason({5, 4}), 5);
  EXPECT_EQ(isup_from_gleason({5, 5}), 5);
  EXPECT_EQ(isup_from_gleason({2, 3}), -1);
  EXPECT_EQ(isup_from_gleason({0, 3}), -1);
}

TEST(PandaDataset, MismatchWarnsAndKnownBadIdsCanBeExcluded) {
  TempDir dir;
  const fs::path csv = dir.write("train.csv",
                                 "image_id,data_provider,isup_grade,gleason_score\n"
                                 "ok1,radboud,1,3+3\n"
                                 "b0a92a74cb53899311acc30b7405e101,karolinska,2,4+3\n"
                                 "3790f55cad63053e956fb73027179707,karolinska,0,negative\n");
  const PandaDataset all = read_panda_train_csv(csv.string());
  ASSERT_EQ(all.rows.size(), 3u);
  ASSERT_EQ(all.warnings.size(), 1u);
  const std::string& w = all.warnings[0];
  EXPECT_NE(w.find("line 3"), std::string::npos) << w;
  EXPECT_NE(w.find("b0a92a74cb53899311acc30b7405e101"), std::string::npos) << w;
  EXPECT_NE(w.find("4+3 means ISUP 3 but isup_grade is 2"), std::string::npos) << w;
  EXPECT_TRUE(all.excluded.empty());

  const PandaDataset clean = read_panda_train_csv(csv.string(), {.exclude_known_bad = true});
  ASSERT_EQ(clean.rows.size(), 1u);
  EXPECT_EQ(clean.rows[0].image_id, "ok1");
  EXPECT_EQ(clean.excluded, (std::vector<std::string>{"b0a92a74cb53899311acc30b7405e101",
                                                      "3790f55cad63053e956fb73027179707"}));
  EXPECT_TRUE(is_known_bad_panda_id("3790f55cad63053e956fb73027179707"));
  EXPECT_FALSE(is_known_bad_panda_id("ok1"));
}

TEST(PandaDataset, BadRowsNameFileLineAndValue) {
  TempDir dir;
  const std::string header = "image_id,data_provider,isup_grade,gleason_score\n";
  const std::string good = "a1,radboud,1,3+3\n";
  struct Case {
    std::string body;
    std::string expected;  // after "<path>: "
  };
  const std::vector<Case> cases = {
      {good + "a2,radboud,6,3+3\n", "line 3: unknown isup_grade '6' (expected an integer 0-5)"},
      {good + "a2,radboud,1.5,3+3\n", "line 3: unknown isup_grade '1.5'"},
      {good + "a2,radboud,,3+3\n", "line 3: unknown isup_grade ''"},
      {good + good + "a3,radboud,1,3+3\n", "line 3: duplicated image_id 'a1' (first on line 2)"},
      {good + "a2,utrecht,1,3+3\n", "line 3: unknown data_provider 'utrecht' (expected karolinska or radboud)"},
      {good + "a2,radboud,1,2+3\n", "line 3: unknown gleason_score '2+3'"},
      {good + "a2,radboud\n", "line 3: 2 fields, expected 4 (no value for column 'isup_grade')"},
  };
  for (const Case& c : cases) {
    const fs::path csv = dir.write("train.csv", header + c.body);
    const std::string message = error_of([&] { read_panda_train_csv(csv.string()); });
    EXPECT_NE(message.find(csv.string() + ": " + c.expected), std::string::npos) << message;
  }
  const fs::path no_grade = dir.write("nograde.csv", "image_id,data_provider,gleason_score\na,radboud,3+3\n");
  const std::string missing_column = error_of([&] { read_panda_train_csv(no_grade.string()); });
  EXPECT_NE(missing_column.find(no_grade.string() + ": line 1: no column 'isup_grade'"), std::string::npos)
      << missing_column;
  const fs::path twice = dir.write("twice.csv", "image_id,data_provider,isup_grade,gleason_score,isup_grade\n");
  const std::string twice_message = error_of([&] { read_panda_train_csv(twice.string()); });
  EXPECT_NE(twice_message.find(twice.string() + ": line 1: column 'isup_grade' appears twice in the header (3 and 5)"),
            std::string::npos)
      << twice_message;
  const std::string missing_file = error_of([&] { read_panda_train_csv((dir.path() / "absent.csv").string()); });
  EXPECT_NE(missing_file.find("cannot open CSV file '" + (dir.path() / "absent.csv").string() + "'"),
            std::string::npos)
      << missing_file;
  const fs::path empty = dir.write("empty.csv", "");
  EXPECT_NE(error_of([&] { read_panda_train_csv(empty.string()); }).find("empty CSV file"), std::string::npos);
}

TEST(PandaDataset, TestTableAndMissingSlides) {
  TempDir dir;
  const fs::path csv = dir.write("test.csv", "data_provider,image_id\nradboud,s1\nkarolinska,s2\nradboud,s3\n");
  const PandaDataset d = read_panda_test_csv(csv.string());
  ASSERT_EQ(d.rows.size(), 3u);
  EXPECT_FALSE(d.has_labels());
  EXPECT_EQ(d.rows[1].provider, Provider::karolinska);
  EXPECT_EQ(d.rows[1].isup_grade, -1);
  dir.write("test_images/s1.tiff", "not really a slide");
  dir.write("test_images/s3.tiff", "not really a slide");
  EXPECT_EQ(missing_panda_slides(d, dir.path()), (std::vector<std::string>{"s2"}));
  // A train table with no train_images directory at all: every slide is missing.
  const fs::path train = dir.write("train.csv", "image_id,data_provider,isup_grade,gleason_score\nt1,radboud,0,0+0\n");
  EXPECT_EQ(missing_panda_slides(read_panda_train_csv(train.string()), dir.path()), (std::vector<std::string>{"t1"}));
}

}  // namespace
}  // namespace sg::data
