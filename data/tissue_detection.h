#pragma once
// Tissue detection on a low-resolution RGB level (PANDA's level 2, downsample 16), the common
// recipe (docs/panda_and_openslide.md, section 5): HSV saturation -> median blur -> Otsu threshold ->
// morphological close -> open -> pen ink removed -> small components removed. Glass is white or
// grey (saturation near 0); stained tissue is pink and purple (saturated).
//
// Guards:
// - The threshold is max(Otsu, min_saturation): on an all-white or constant image Otsu's split
//   is meaningless (it would call everything above 0 tissue), so a floor keeps glass out.
// - Pen marks are saturated too. With exclude_pen, pixels whose hue is green, cyan or blue
//   (OpenCV hue in [pen_hue_min, pen_hue_max], default 35..120 = 70..240 degrees) and pixels
//   darker than pen_max_value (black ink; tissue at low resolution is never that dark) are not
//   tissue, after a small dilation that takes the ink's blurred edges too; this runs after the
//   morphology so that closing cannot bridge a stroke back into tissue. H&E sits at about
//   260..360 and 0..20 degrees (purple hematoxylin, pink eosin), outside that band. Tissue
//   lying under ink is lost with the ink; red ink is not detected (it looks like eosin).
#include <cstdint>
#include <vector>

#include "data/image.h"

namespace sg::data {

struct TissueOptions {
  int median_kernel = 5;          // odd, >= 1 (1 = no blur): JPEG noise and dust
  int min_saturation = 20;        // floor of the saturation threshold (0..255)
  // Ceiling of the threshold. Otsu splits the histogram in two, but a slide has three populations
  // (glass, pale pink stroma, dark purple epithelium): with much dark tissue Otsu lands between
  // pink and purple (about 100) and calls the stroma background. Pale H&E stroma sits at about
  // 40-80, glass below 15, so the threshold never goes above 45.
  int max_saturation = 45;
  int close_kernel = 7;           // ellipse; 0 = none: joins glands and nuclei into solid tissue
  int open_kernel = 3;            // ellipse; 0 = none: removes specks
  int min_component_pixels = 16;  // connected components (8-connected) smaller than this go; 0 = keep all
  bool exclude_pen = true;
  int pen_hue_min = 35;  // OpenCV hue units (degrees / 2)
  int pen_hue_max = 120;
  int pen_max_value = 45;  // HSV value (brightness) at or below which a pixel is ink
  int pen_dilate = 5;      // ellipse; 0 = none
};

// A binary tissue mask of one level and where it sits relative to level 0.
class TissueMask {
 public:
  TissueMask() = default;
  // mask: one channel, nonzero = tissue; downsample: level-0 pixels per mask pixel (> 0).
  TissueMask(Image mask, double downsample, int saturation_threshold = -1);

  const Image& mask() const { return mask_; }  // 0 or 255
  double downsample() const { return downsample_; }
  int saturation_threshold() const { return saturation_threshold_; }  // what detect_tissue used; -1 if unknown

  // Share of the region [x0, x0 + w) x [y0, y0 + h) (level-0 pixels) covered by tissue, in [0, 1]:
  // the area-weighted count, exact for mask pixels the region covers partly; parts outside the
  // level count as no tissue. O(1) through an integral image. w, h > 0.
  double tissue_fraction(int64_t x0, int64_t y0, int64_t w, int64_t h) const;
  // Share of the whole mask that is tissue.
  double overall_fraction() const;

 private:
  // Tissue area in [0, x) x [0, y) of the mask (mask pixels, fractional x, y clamped to the mask).
  double area_before(double x, double y) const;

  Image mask_;
  double downsample_ = 1.0;
  int saturation_threshold_ = -1;
  std::vector<int64_t> integral_;  // [(height + 1), (width + 1)]: tissue pixels above and left
};

// Detects tissue on an RGB level whose downsample relative to level 0 is `downsample`.
TissueMask detect_tissue(const Image& level, double downsample, const TissueOptions& options = {});

}  // namespace sg::data
