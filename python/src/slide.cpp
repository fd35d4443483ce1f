// Slide (OpenSlide-like access to one slide file), tile() (the "N tiles of S px at level L" mosaic
// the model sees, as `slidegrade tile` makes it), synth() (`slidegrade synth`), and PNG files
// (write_png, read_png: the pictures the command writes, without an imaging package).
#include <nanobind/stl/filesystem.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>

#include "data/image_io.h"
#include "data/mosaic.h"
#include "data/slide_mosaics.h"
#include "data/slide_reader.h"
#include "data/synthetic_slides.h"
#include "data/tiler.h"
#include "python/src/arrays.h"
#include "python/src/bindings.h"
#include "python/src/errors.h"

namespace sg::python {

namespace {

// One open slide; close() drops the OpenSlide handle (the with-statement calls it), and every later
// call raises slidegrade.Error instead of reading a closed handle. A read in progress in another
// thread (the reads release the GIL) holds its own reference, so the handle outlives it.
class PySlide {
 public:
  explicit PySlide(const std::filesystem::path& path) : path_(path.string()) {
    nb::gil_scoped_release release;
    slide_ = std::make_shared<data::Slide>(path_);
  }
  std::shared_ptr<const data::Slide> open_slide() const {
    SG_CHECK(slide_, path_, ": the slide is closed");
    return slide_;
  }
  const data::Slide& slide() const { return *open_slide(); }
  void close() { slide_.reset(); }
  bool closed() const { return !slide_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::shared_ptr<const data::Slide> slide_;
};

std::pair<int64_t, int64_t> size_pair(const data::LevelSize& size) { return {size.width, size.height}; }

nb::dict placement_dict(const data::TilePlacement& p) {
  nb::dict d;
  d["grid_row"] = p.grid_row;
  d["grid_col"] = p.grid_col;
  d["x"] = p.x;
  d["y"] = p.y;
  d["pixel_sum"] = p.pixel_sum;
  d["white_filler"] = p.grid_row < 0;
  return d;
}

nb::list slide_specs(const std::vector<data::SyntheticSlideSpec>& specs) {
  nb::list out;
  for (const data::SyntheticSlideSpec& s : specs) {
    nb::dict d;
    d["image_id"] = s.image_id;
    d["data_provider"] = s.data_provider;
    d["isup_grade"] = s.isup_grade;
    d["gleason_score"] = s.gleason_score;
    out.append(d);
  }
  return out;
}

}  // namespace

void bind_slide(nb::module_& m) {
  nb::class_<PySlide>(m, "Slide",
                      "A whole-slide image (anything OpenSlide reads), with OpenSlide Python's names. Use it as a "
                      "context manager (`with slidegrade.Slide(path) as s:`) or call close().")
      .def(nb::init<const std::filesystem::path&>(), nb::arg("path"),
           "Opens the slide. Raises slidegrade.Error naming the path when it is missing or not a slide.")
      .def_prop_ro("path", &PySlide::path, "The slide's file.")
      .def_prop_ro("closed", &PySlide::closed, "True after close().")
      .def_prop_ro(
          "level_count", [](const PySlide& s) { return s.slide().level_count(); }, "Number of pyramid levels.")
      .def_prop_ro(
          "dimensions", [](const PySlide& s) { return size_pair(s.slide().level_dimensions(0)); },
          "(width, height) of level 0, in pixels.")
      .def_prop_ro(
          "level_dimensions",
          [](const PySlide& s) {
            nb::list out;
            for (int l = 0; l < s.slide().level_count(); ++l)
              out.append(nb::cast(size_pair(s.slide().level_dimensions(l))));
            return nb::tuple(out);
          },
          "(width, height) of every level, level 0 first.")
      .def_prop_ro(
          "level_downsamples",
          [](const PySlide& s) {
            nb::list out;
            for (int l = 0; l < s.slide().level_count(); ++l) out.append(s.slide().level_downsample(l));
            return nb::tuple(out);
          },
          "Each level's downsample factor from level 0 (PANDA: 1, 4, 16).")
      .def_prop_ro(
          "mpp",
          [](const PySlide& s) -> std::optional<std::pair<double, double>> {
            const auto mpp = s.slide().microns_per_pixel();
            if (!mpp) return std::nullopt;
            return std::make_pair(mpp->x, mpp->y);
          },
          "(x, y) microns per level-0 pixel, or None when the file does not say.")
      .def_prop_ro(
          "vendor", [](const PySlide& s) { return s.slide().vendor(); },
          "OpenSlide's vendor ('generic-tiff', 'aperio', ...); '' when absent.")
      .def_prop_ro(
          "properties", [](const PySlide& s) { return s.slide().properties(); },
          "Every OpenSlide property, as a dict of strings.")
      .def(
          "read_region",
          [](const PySlide& s, std::pair<int64_t, int64_t> location, int level, std::pair<int, int> size) {
            const std::shared_ptr<const data::Slide> slide = s.open_slide();
            SG_CHECK(size.first >= 0 && size.second >= 0, s.path(), ": read_region size (", size.first, ", ",
                     size.second, ") must not be negative");
            data::Image image;
            {
              nb::gil_scoped_release release;
              image = slide->read_region(location.first, location.second, level, size.first, size.second);
            }
            return image_array(std::move(image));
          },
          nb::arg("location"), nb::arg("level"), nb::arg("size"),
          "RGB uint8 [height, width, 3] of `level`, top-left at location = (x, y) in level-0 pixels (as OpenSlide "
          "takes it), size = (width, height) in level pixels. Pixels outside the slide come back white.")
      .def(
          "read_level",
          [](const PySlide& s, int level) {
            const std::shared_ptr<const data::Slide> slide = s.open_slide();
            data::Image image;
            {
              nb::gil_scoped_release release;
              image = slide->read_level(level);
            }
            return image_array(std::move(image));
          },
          nb::arg("level"), "The whole level as RGB uint8 [height, width, 3] (the last level is a thumbnail).")
      .def("close", &PySlide::close, "Closes the OpenSlide handle; later calls raise slidegrade.Error.")
      .def("__enter__", [](nb::handle self) { return nb::borrow(self); })
      .def("__exit__", [](PySlide& s, nb::args) { s.close(); })
      .def("__repr__", [](const PySlide& s) {
        if (s.closed()) return "<slidegrade.Slide " + s.path() + " (closed)>";
        const data::LevelSize size = s.slide().level_dimensions(0);
        return "<slidegrade.Slide " + s.path() + " " + std::to_string(size.width) + "x" + std::to_string(size.height) +
               ", " + std::to_string(s.slide().level_count()) + " levels>";
      });

  m.def(
      "tile",
      [](const std::filesystem::path& path, int level, int tiles, int size, bool half_offset, int rows, int cols) {
        if (tiles < 1 || tiles > data::kMaxTileCount)
          throw UsageError(detail::concat("tile: tiles ", tiles, " is not in 1..", data::kMaxTileCount));
        if (size < 1 || size > data::kMaxTileSize)
          throw UsageError(detail::concat("tile: size ", size, " is not in 1..", data::kMaxTileSize));
        if (level < 0 || rows < 0 || cols < 0)
          throw UsageError(
              detail::concat("tile: level, rows and cols must not be negative (", level, ", ", rows, ", ", cols, ")"));
        data::TileSpec spec;
        spec.level = level;
        spec.count = tiles;
        spec.size = size;
        spec.half_offset = half_offset;
        data::TileSet chosen;
        data::Image mosaic;
        {
          nb::gil_scoped_release release;
          const data::Slide slide(path.string());
          chosen = data::select_slide_tiles(slide, spec);
          mosaic = data::make_mosaic(chosen, rows, cols);
        }
        nb::list placements;
        for (const data::TilePlacement& p : chosen.placements) placements.append(placement_dict(p));
        return nb::make_tuple(image_array(std::move(mosaic)), placements);
      },
      nb::arg("path"), nb::arg("level") = 1, nb::arg("tiles") = 36, nb::arg("size") = 256,
      nb::arg("half_offset") = false, nb::arg("rows") = 0, nb::arg("cols") = 0,
      "What the model sees of a slide, as `slidegrade tile` makes it: the `tiles` tiles of `size` px at `level` "
      "with the most tissue, laid out as a mosaic (rows x cols; 0: square). Returns (mosaic uint8 "
      "[rows*size, cols*size, 3], placements): one dict per tile, most tissue first, with grid_row, grid_col, x, y "
      "(level pixels), pixel_sum and white_filler (a white tile added when the slide has fewer grid cells).");

  m.def(
      "write_png",
      [](const std::filesystem::path& path, nb::ndarray<const uint8_t, nb::c_contig, nb::device::cpu> image) {
        const bool grey = image.ndim() == 2;
        if (!grey && !(image.ndim() == 3 && (image.shape(2) == 1 || image.shape(2) == 3 || image.shape(2) == 4)))
          throw UsageError("write_png: expected a uint8 array [height, width] or [height, width, 1, 3 or 4]");
        data::Image copy(int(image.shape(1)), int(image.shape(0)), grey ? 1 : int(image.shape(2)));
        std::copy(image.data(), image.data() + copy.pixels.size(), copy.pixels.begin());
        nb::gil_scoped_release release;
        data::write_png(path.string(), copy);
      },
      nb::arg("path"), nb::arg("image"),
      "Writes a uint8 image [height, width] (grey) or [height, width, 3] (RGB; 1 or 4 channels too) as a PNG, "
      "atomically. Raises slidegrade.Error naming the file when it cannot be written.");
  m.def(
      "read_png",
      [](const std::filesystem::path& path) {
        data::Image image;
        {
          nb::gil_scoped_release release;
          image = data::read_png(path.string());
        }
        return image_array(std::move(image));
      },
      nb::arg("path"), "A PNG file as uint8 [height, width, channels] (1, 3 or 4 channels).");

  m.def(
      "synth",
      [](const std::filesystem::path& out, int slides, int test_slides, uint64_t seed, int width, int height,
         int jpeg_quality, double pen_marks, int threads) {
        if (slides < 0 || test_slides < -1)
          throw UsageError(detail::concat("synth: slide counts must not be negative (slides ", slides, ", test_slides ",
                                          test_slides, ")"));
        if (jpeg_quality < 1 || jpeg_quality > 100)
          throw UsageError(detail::concat("synth: jpeg_quality ", jpeg_quality, " is not in 1..100"));
        if (!(pen_marks >= 0 && pen_marks <= 1))
          throw UsageError(detail::concat("synth: pen_marks ", pen_marks, " is not in [0, 1]"));
        if (threads < 0) throw UsageError(detail::concat("synth: threads ", threads, " must not be negative"));
        data::SyntheticDatasetOptions options;
        options.train_slides = slides;
        options.test_slides = test_slides;
        options.seed = seed;
        options.width = width;
        options.height = height;
        options.jpeg_quality = jpeg_quality;
        options.pen_mark_share = pen_marks;
        options.threads = threads;
        data::SyntheticDataset dataset;
        {
          nb::gil_scoped_release release;
          dataset = data::write_synthetic_dataset(out.string(), options);
        }
        nb::dict result;
        result["path"] = out.string();
        result["train"] = slide_specs(dataset.train);
        result["test"] = slide_specs(dataset.test);
        return result;
      },
      nb::arg("out"), nb::arg("slides") = 40, nb::arg("test_slides") = -1, nb::arg("seed") = 1, nb::arg("width") = 4096,
      nb::arg("height") = 2048, nb::arg("jpeg_quality") = 90, nb::arg("pen_marks") = 0.3, nb::arg("threads") = 0,
      "A synthetic PANDA-like dataset, as `slidegrade synth` writes it: out/train_images/, train_label_masks/, "
      "train.csv, test_images/, test.csv and test_truth.csv. The same seed writes the same bytes. Returns "
      "{'path', 'train': [slide dicts], 'test': [...]}, each with image_id, data_provider, isup_grade, "
      "gleason_score. test_slides=-1: max(1, slides / 5); threads=0: one per CPU.");
}

}  // namespace sg::python
