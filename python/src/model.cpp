// Model: a weight file's network (ImageNet imports, trained best.h5 files, last.h5 checkpoints),
// its logits for a batch (what `slidegrade forward` computes, through the same function), and the
// grade of a slide (what `slidegrade grade` computes for one model, through the same Predictor).
#include <nanobind/ndarray.h>
#include <nanobind/stl/filesystem.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/unique_ptr.h>
#include <nanobind/stl/vector.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>

#include "grading/model_card.h"
#include "grading/model_input.h"
#include "infer/network_forward.h"
#include "infer/predictor.h"
#include "nn/efficientnet_config_text.h"
#include "nn/precision.h"
#include "python/src/arguments.h"
#include "python/src/arrays.h"
#include "python/src/bindings.h"
#include "python/src/errors.h"
#include "python/src/onnx_export.h"
#include "python/src/slide_prediction.h"
#include "weights/weight_file.h"

namespace sg::python {

namespace {

constexpr const char* kImagesExpected =
    "expected a numpy.ndarray [N, H, W, 3] of float32 (normalised, as `slidegrade forward` takes) or uint8 (RGB, "
    "normalised here by the model card's rule)";

class PyModel {
 public:
  PyModel(const std::string& path, const std::string& device, const std::string& precision, int batch,
          const std::string& memory_limit)
      : device_(device_argument(device)),
        precision_(as_argument_error([&] { return nn::parse_precision(precision); })),
        batch_(batch),
        memory_limit_(memory_limit_argument(memory_limit)) {
    if (batch < 1) throw UsageError(detail::concat("Model.load: batch must be at least 1, got ", batch));
    nb::gil_scoped_release release;
    const ScopedMemoryLimit cap(device_, memory_limit_);
    file_ = infer::load_network_file(path, device_);
    if (file_.info.attributes.user.count("head")) card_ = grading::read_model_card(file_.info.attributes, path);
    finish();
  }

  // A new network of `arch` with `outputs` logits, initialised from `seed` as training starts one
  // (Model.create; timm.create_model without pretrained weights). No file and no model card.
  struct Fresh {
    std::string arch;
    int64_t outputs = 1000;
    uint64_t seed = 0;
  };
  PyModel(const Fresh& fresh, const std::string& device, const std::string& precision, int batch,
          const std::string& memory_limit)
      : device_(device_argument(device)),
        precision_(as_argument_error([&] { return nn::parse_precision(precision); })),
        batch_(batch),
        memory_limit_(memory_limit_argument(memory_limit)) {
    if (batch < 1) throw UsageError(detail::concat("Model.create: batch must be at least 1, got ", batch));
    if (fresh.outputs < 1)
      throw UsageError(detail::concat("Model.create: outputs must be at least 1, got ", fresh.outputs));
    nn::EfficientNetConfig config = as_argument_error([&] { return nn::efficientnet_config(fresh.arch); });
    config.outputs = fresh.outputs;
    config.seed = fresh.seed;
    nb::gil_scoped_release release;
    const ScopedMemoryLimit cap(device_, memory_limit_);
    file_.config = config;
    file_.info.attributes.arch_config = nn::config_text(config);
    file_.network = std::make_unique<nn::EfficientNet>(config, device_);
    file_.network->set_training(false);
    finish();
  }

  // Writes the network to `path` in our weight format with the file's attributes (arch config, and
  // the model card of a trained model), as `slidegrade forward`, `export` and Model.load read it.
  void save(const std::filesystem::path& path) {
    nb::gil_scoped_release release;
    const std::lock_guard<std::mutex> lock(mutex_);
    save_weights(path.string(), named_tensors(file_.network->parameters(), file_.network->buffers()),
                 file_.info.attributes);
  }

  // The network as an ONNX model (infer/onnx_export.h), with the model card when it has one.
  nb::dict export_onnx(const std::filesystem::path& out, const std::string& layout, const nb::object& batch,
                       int64_t opset, const std::string& precision) {
    const infer::OnnxExportOptions options = onnx_export_options(layout, batch, opset, precision);
    WeightAttributes attributes = file_.info.attributes;
    if (!file_.path.empty()) attributes.user["source"] = std::filesystem::path(file_.path).filename().string();
    infer::OnnxExportReport report;
    {
      nb::gil_scoped_release release;
      const std::lock_guard<std::mutex> lock(mutex_);
      report = infer::export_onnx(*file_.network, attributes, out.string(), options);
    }
    return onnx_export_report(report, out.string());
  }

  const std::string& path() const { return file_.path; }
  const std::string& arch() const { return file_.config.arch; }
  int64_t outputs() const { return file_.config.outputs; }
  std::string device() const { return device_.str(); }
  std::string precision() const { return std::string(dtype_name(precision_)); }
  bool is_checkpoint() const { return file_.info.is_checkpoint; }

  nb::object card() const {
    if (!card_) return nb::none();
    const grading::ModelCard& c = *card_;
    nb::dict d;
    d["head"] = grading::head_kind_name(c.head);
    d["tiles"] = c.tiles.count;
    d["tile_size"] = c.tiles.size;
    d["tile_level"] = c.tiles.level;
    d["half_offset"] = c.tiles.half_offset;
    d["mosaic_rows"] = c.mosaic_rows;
    d["mosaic_cols"] = c.mosaic_cols;
    d["invert"] = c.invert;
    nb::list thresholds;
    for (const float t : c.thresholds) thresholds.append(double(t));
    d["thresholds"] = thresholds;
    d["thresholds_tuned"] = c.thresholds_tuned;
    d["fold"] = c.fold;
    d["epoch"] = c.epoch;
    d["validation_qwk"] = std::isnan(c.validation_qwk) ? nb::none() : nb::cast(c.validation_qwk);
    return d;
  }

  nb::dict input_normalization() const {
    nb::dict d;
    d["invert"] = input_.invert;
    d["mean"] = nb::make_tuple(input_.mean[0], input_.mean[1], input_.mean[2]);
    d["std"] = nb::make_tuple(input_.std[0], input_.std[1], input_.std[2]);
    return d;
  }

  nb::ndarray<nb::numpy, float> predict(nb::handle images) {
    const nb::module_ numpy = nb::module_::import_("numpy");
    if (!nb::isinstance(images, numpy.attr("ndarray")))
      throw UsageError(detail::concat("Model.predict: images is a ", nb::cast<std::string>(nb::inst_name(images)), ", ",
                                      kImagesExpected));
    // A C-contiguous array passes as it is (ascontiguousarray returns it); any other is copied once.
    const nb::object contiguous = numpy.attr("ascontiguousarray")(images);
    const auto array = nb::cast<nb::ndarray<nb::ro, nb::c_contig, nb::device::cpu>>(contiguous);
    std::string shape = "[";
    for (size_t i = 0; i < array.ndim(); ++i) shape += (i ? ", " : "") + std::to_string(array.shape(i));
    shape += "]";
    const bool is_float = array.dtype() == nb::dtype<float>();
    const bool is_u8 = array.dtype() == nb::dtype<uint8_t>();
    if (!is_float && !is_u8)
      throw UsageError(detail::concat("Model.predict: images have dtype ",
                                      nb::cast<std::string>(contiguous.attr("dtype").attr("name")), ", ",
                                      kImagesExpected));
    if (array.ndim() != 4 || array.shape(3) != 3 || array.shape(0) < 1)
      throw UsageError(detail::concat("Model.predict: images have shape ", shape, ", ", kImagesExpected));
    const int64_t n = int64_t(array.shape(0)), h = int64_t(array.shape(1)), w = int64_t(array.shape(2));
    Tensor logits;
    {
      nb::gil_scoped_release release;
      const std::lock_guard<std::mutex> lock(mutex_);  // one forward pass at a time per network
      const ScopedMemoryLimit cap(device_, memory_limit_);
      Tensor x;
      if (is_u8) {
        x = grading::mosaics_to_input(
            std::span<const uint8_t>(static_cast<const uint8_t*>(array.data()), size_t(n * h * w * 3)), n, h, w,
            input_);
      } else {
        x = Tensor::empty({n, h, w, 3}, DType::f32, Device::cpu(), "Model.predict images");
        std::memcpy(x.data(), array.data(), x.nbytes());
      }
      as_argument_error([&] { infer::check_network_input(x, file_.config, "Model.predict: images"); });
      logits = infer::network_logits(*file_.network, x, device_, batch_);
    }
    return float_tensor_array(std::move(logits));
  }

  nb::dict grade_slide(const std::filesystem::path& slide_path, const std::string& tta) {
    const std::string slide = slide_path.string();
    const infer::TtaMode mode = as_argument_error([&] { return infer::parse_tta_mode(tta); });
    SG_CHECK(card_, file_.path,
             ": not a trained slidegrade model (no model card): grade_slide needs a trained "
             "model file (best.h5 of slidegrade.train)");
    infer::SlidePrediction p;
    std::vector<std::string> names;
    {
      nb::gil_scoped_release release;
      const std::lock_guard<std::mutex> lock(mutex_);
      const ScopedMemoryLimit cap(device_, memory_limit_);
      const infer::Predictor& predictor = predictor_for(mode);
      p = predictor.predict({data::SlideItem{std::filesystem::path(slide).stem().string(), slide, -1}}).front();
      names = predictor.output_names();
    }
    SG_CHECK(p.ok, p.error);
    return slide_prediction_dict(p, names);
  }

 private:
  // The grader for one TTA mode, made on first use: it loads the file again with inference fusion
  // on (the network above stays unfused so that predict() equals `slidegrade forward`).
  const infer::Predictor& predictor_for(infer::TtaMode mode) {
    std::unique_ptr<infer::Predictor>& slot = predictors_[int(mode)];
    if (!slot) {
      infer::PredictorOptions options;
      options.device = device_;
      options.tta = mode;
      options.batch = batch_;
      options.threads = 0;  // one slide: read and tiled in this thread
      slot = std::make_unique<infer::Predictor>(std::vector<std::string>{file_.path}, options);
    }
    return *slot;
  }

  // What loading and creating share: the compute type, and how uint8 images are normalised.
  void finish() {
    file_.network->set_precision(precision_);
    input_.invert = card_ ? card_->invert : false;  // ImageNet weights: plain RGB
    input_.mean = file_.config.mean;
    input_.std = file_.config.std;
  }

  Device device_;
  DType precision_;
  int batch_;
  // The device allocator's cap while this model loads and runs (0: none); the cap is the device's,
  // set for the duration of each call, as --memory-limit is for a command.
  size_t memory_limit_;
  infer::NetworkFile file_;
  std::optional<grading::ModelCard> card_;
  grading::InputNormalization input_;
  std::map<int, std::unique_ptr<infer::Predictor>> predictors_;
  std::mutex mutex_;
};

}  // namespace

void bind_model(nb::module_& m) {
  nb::class_<PyModel>(m, "Model",
                      "An EfficientNet from one of our weight files: an ImageNet import, a trained model (best.h5 "
                      "of slidegrade.train, with its model card) or a training checkpoint (last.h5). Eval mode.")
      .def_static(
          "load",
          [](const std::filesystem::path& path, const std::string& device, const std::string& precision, int batch,
             const std::string& memory_limit) {
            return std::make_unique<PyModel>(path.string(), device, precision, batch, memory_limit);
          },
          nb::arg("path"), nb::arg("device") = "cpu", nb::arg("precision") = "f32", nb::arg("batch") = 8,
          nb::arg("memory_limit") = "",
          "Loads the network of a weight file on `device` ('cpu', 'cuda', 'cuda:N', 'auto') computing in "
          "`precision` ('f32', 'f16', 'bf16'); `batch` images per forward pass; `memory_limit` ('4GiB', '512MiB'; '': "
          "none) caps the device's allocator while it loads and runs, as --memory-limit does (over it: "
          "slidegrade.OutOfMemoryError naming what was running). Raises slidegrade.Error naming the "
          "file when it is missing, damaged or not a slidegrade network, slidegrade.ArgumentError for a bad word.")
      .def_static(
          "create",
          [](const std::string& arch, int64_t outputs, uint64_t seed, const std::string& device,
             const std::string& precision, int batch, const std::string& memory_limit) {
            return std::make_unique<PyModel>(PyModel::Fresh{arch, outputs, seed}, device, precision, batch,
                                             memory_limit);
          },
          nb::arg("arch"), nb::arg("outputs") = 1000, nb::arg("seed") = 0, nb::arg("device") = "cpu",
          nb::arg("precision") = "f32", nb::arg("batch") = 8, nb::arg("memory_limit") = "",
          "A new network of `arch` ('b0'..'b7', 'lite0'..'lite4') with `outputs` logits, its weights initialised "
          "from `seed` as training initialises them (no pretrained weights, no model card), in eval mode. The other "
          "arguments are load()'s. Raises slidegrade.ArgumentError naming the known archs for an unknown one.")
      .def("save", &PyModel::save, nb::arg("path"),
           "Writes the network to `path` in slidegrade's weight format (arch config, and the model card of a "
           "trained model), which Model.load, export_onnx and `slidegrade forward` read.")
      .def("export_onnx", &PyModel::export_onnx, nb::arg("out"), nb::arg("layout") = "nhwc",
           nb::arg("batch") = nb::none(), nb::arg("opset") = nn::kOnnxNewestOpset, nb::arg("precision") = "f32",
           "Writes this network as an ONNX model; the arguments and the result are slidegrade.export_onnx's.")
      .def_prop_ro("path", &PyModel::path, "The weight file ('' for a network made by create()).")
      .def_prop_ro("arch", &PyModel::arch, "The architecture: 'b0'..'b7', 'lite0'..'lite4'.")
      .def_prop_ro("outputs", &PyModel::outputs, "Number of logits per image.")
      .def_prop_ro("device", &PyModel::device, "Where the network runs: 'cpu', 'cuda:0', ...")
      .def_prop_ro("precision", &PyModel::precision, "The compute dtype: 'f32', 'f16' or 'bf16'.")
      .def_prop_ro("is_checkpoint", &PyModel::is_checkpoint, "True for a training checkpoint (last.h5).")
      .def_prop_ro("card", &PyModel::card,
                   "The model card as a dict (head, tiles, tile_size, tile_level, half_offset, mosaic_rows, "
                   "mosaic_cols, invert, thresholds, thresholds_tuned, fold, epoch, validation_qwk), or None for a "
                   "file without one (ImageNet weights).")
      .def_prop_ro("input_normalization", &PyModel::input_normalization,
                   "How predict() normalises uint8 images: {'invert', 'mean', 'std'}: x = (invert ? 255 - p : p) / "
                   "255, then (x - mean) / std per channel. invert is the card's (False without a card).")
      .def("predict", &PyModel::predict, nb::arg("images"),
           "The eval-mode logits, float32 [N, outputs], of images [N, H, W, 3] (NHWC): float32 already normalised "
           "(exactly what `slidegrade forward` takes; the result equals its output), or uint8 RGB, normalised by "
           "input_normalization first. Images of at least 32x32. Raises slidegrade.ArgumentError naming the "
           "expected shape and dtype for anything else.")
      .def("__call__", &PyModel::predict, nb::arg("images"), "Same as predict(images).")
      .def("grade_slide", &PyModel::grade_slide, nb::arg("path"), nb::arg("tta") = "flips",
           "The ISUP grade of one slide, as `slidegrade grade` computes it with this model alone: tiled by the "
           "model card's recipe, `tta` 'none' (1 view), 'flips' (4) or 'dihedral' (8). Returns {'image_id', 'path', "
           "'ok', 'error', "
           "'grade', 'score', 'outputs'} (outputs: the mean probabilities p0..p5, sigmoids sigmoid1..sigmoid5 or "
           "the regression output). Raises slidegrade.Error when the slide cannot be read.")
      .def("__repr__", [](const PyModel& model) {
        const std::string from = model.path().empty() ? std::string(" (new)") : " from " + model.path();
        return "<slidegrade.Model efficientnet-" + model.arch() + from + " on " + model.device() + ", " +
               model.precision() + ">";
      });
}

}  // namespace sg::python
