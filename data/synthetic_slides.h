#pragma once
// Synthetic PANDA-like slides: the demo's and the tests' data (issue 5, item 9).
//
// A slide is 1-3 tissue strips (H&E pink stroma) on white at random angles, cut along their length
// into segments; each segment is benign (large round glands with pale lumina) or one Gleason
// pattern: 3 = small, darker, crowded round glands; 4 = fused, cribriform purple nests with small
// lumina; 5 = solid sheets of dark nuclei. The share of cancer segments grows with the ISUP grade
// (primary pattern about twice the secondary's segments, and always at least 1.25 times its area:
// the primary is the most extensive pattern), so the grade is learnable from level-1 tiles. Some
// slides carry pen strokes (green, blue, black; at least 4 px wide, heading inwards) on top. The label mask (R channel) follows the
// painted regions: Radboud 1 stroma, 2 benign epithelium, 3/4/5 Gleason; Karolinska 1 benign
// tissue, 2 cancer (docs/panda_and_openslide.md, section 1).
//
// Everything is drawn from a scene of shapes in level-0 coordinates, so any band of rows can be
// rendered on its own: the pyramid writer streams a 20,000 x 10,000 slide band by band. The same
// spec gives the same pixels and the same file bytes.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/image.h"

namespace sg::data {

struct SyntheticSlideSpec {
  std::string image_id;
  std::string data_provider = "radboud";  // "radboud" or "karolinska"
  int isup_grade = 0;
  std::string gleason_score = "negative";  // "negative", "0+0", "3+4", ...
  int width = 4096;                        // level 0
  int height = 2048;
  uint64_t seed = 0;
  bool pen_marks = false;
};

// The Gleason score synth paints for a grade and provider (deterministic in `choice` for grades
// 4 and 5, which have several): 0 -> "negative" (Radboud) / "0+0" (Karolinska), 1 -> "3+3",
// 2 -> "3+4", 3 -> "4+3", 4 -> 4+4 / 3+5 / 5+3, 5 -> 4+5 / 5+4 / 5+5.
std::string synthetic_gleason_score(int isup_grade, const std::string& data_provider, uint64_t choice);

class SyntheticSlide {
 public:
  explicit SyntheticSlide(SyntheticSlideSpec spec);  // builds the scene; throws on a bad spec
  ~SyntheticSlide();
  SyntheticSlide(SyntheticSlide&&) noexcept;
  SyntheticSlide& operator=(SyntheticSlide&&) noexcept;

  const SyntheticSlideSpec& spec() const { return spec_; }
  // Level-0 rows y0 .. y0 + band.height - 1 into band ([rows, width, 3]): RGB, or the label mask
  // (label in R, G = B = 0).
  void render_rgb(int y0, Image& band) const;
  void render_mask(int y0, Image& band) const;
  // The share of tissue pixels labelled cancer, as painted (0 for grade 0).
  double cancer_share() const;

  // PANDA-like pyramids (downsample 1, 4, 16, 256 px tiles, 0.5 um/px): the slide as JPEG, the
  // mask losslessly (deflate, nearest-neighbour reduced levels).
  void write_slide(const std::string& path, int jpeg_quality = 90) const;
  void write_mask(const std::string& path) const;

  struct Scene;  // the shapes to paint, in level-0 coordinates (defined in the .cpp)

 private:
  SyntheticSlideSpec spec_;
  std::unique_ptr<Scene> scene_;
};

struct SyntheticDatasetOptions {
  int train_slides = 40;
  int test_slides = -1;  // -1: max(1, train_slides / 5)
  uint64_t seed = 1;
  int width = 4096;
  int height = 2048;
  int jpeg_quality = 90;
  double pen_mark_share = 0.3;  // share of slides with pen strokes
  int threads = 0;              // 0: one per hardware thread
};

struct SyntheticDataset {
  std::vector<SyntheticSlideSpec> train;
  std::vector<SyntheticSlideSpec> test;
};

// The slides a dataset will hold, without painting anything: grades cycle 0..5, providers
// alternate every six slides, ids are 32 hex digits derived from the seed.
SyntheticDataset plan_synthetic_dataset(const SyntheticDatasetOptions& options);

// Writes under `dir`: train_images/<id>.tiff, train_label_masks/<id>_mask.tiff, train.csv
// (image_id,data_provider,isup_grade,gleason_score), test_images/<id>.tiff, test.csv
// (image_id,data_provider) and test_truth.csv (train.csv's columns, the test slides' true labels).
SyntheticDataset write_synthetic_dataset(const std::string& dir, const SyntheticDatasetOptions& options);

}  // namespace sg::data
