#include "grading/model_card.h"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "core/error.h"

namespace sg::grading {

namespace {
const std::string& require(const WeightAttributes& a, const std::string& key, const std::string& path) {
  const auto it = a.user.find(key);
  SG_CHECK(it != a.user.end(), path, ": not a trained slidegrade model (no '", key,
           "' attribute; ImageNet weights start training with --pretrained, they cannot grade)");
  return it->second;
}

int to_int(const WeightAttributes& a, const std::string& key, const std::string& path) {
  const std::string& text = require(a, key, path);
  int value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  SG_CHECK(error == std::errc() && end == text.data() + text.size(), path, ": attribute ", key, "='", text,
           "' is not an integer");
  return value;
}

// "1" / "0" (built from a char: GCC 12's -Wrestrict misfires on assigning a ternary of literals).
std::string flag(bool value) { return std::string(1, value ? '1' : '0'); }

std::string number(double value) {
  char buffer[40];
  std::snprintf(buffer, sizeof buffer, "%.17g", value);
  return buffer;
}
}  // namespace

void write_model_card(const ModelCard& card, WeightAttributes& attributes) {
  auto& u = attributes.user;
  u["head"] = head_kind_name(card.head);
  u["tiles"] = std::to_string(card.tiles.count);
  u["tile_size"] = std::to_string(card.tiles.size);
  u["tile_level"] = std::to_string(card.tiles.level);
  u["half_offset"] = flag(card.tiles.half_offset);
  u["mosaic_rows"] = std::to_string(card.mosaic_rows);
  u["mosaic_cols"] = std::to_string(card.mosaic_cols);
  u["invert"] = flag(card.invert);
  u["thresholds"] = thresholds_text(card.thresholds);
  u["thresholds_tuned"] = flag(card.thresholds_tuned);
  u["fold"] = std::to_string(card.fold);
  u["epoch"] = std::to_string(card.epoch);
  u["validation_qwk"] = std::isnan(card.validation_qwk) ? std::string("nan") : number(card.validation_qwk);
}

ModelCard read_model_card(const WeightAttributes& attributes, const std::string& path) {
  ModelCard card;
  try {
    card.head = parse_head_kind(require(attributes, "head", path));
    card.thresholds = parse_thresholds(require(attributes, "thresholds", path));
  } catch (const Error& e) {
    const std::string message = e.what();
    if (message.rfind(path, 0) == 0) throw;
    throw Error(detail::concat(path, ": ", message));
  }
  card.tiles.count = to_int(attributes, "tiles", path);
  card.tiles.size = to_int(attributes, "tile_size", path);
  card.tiles.level = to_int(attributes, "tile_level", path);
  card.tiles.half_offset = to_int(attributes, "half_offset", path) != 0;
  card.mosaic_rows = to_int(attributes, "mosaic_rows", path);
  card.mosaic_cols = to_int(attributes, "mosaic_cols", path);
  card.invert = to_int(attributes, "invert", path) != 0;
  card.thresholds_tuned = to_int(attributes, "thresholds_tuned", path) != 0;
  card.fold = to_int(attributes, "fold", path);
  card.epoch = to_int(attributes, "epoch", path);
  const std::string& qwk = require(attributes, "validation_qwk", path);
  card.validation_qwk = qwk == "nan" ? std::numeric_limits<double>::quiet_NaN() : std::strtod(qwk.c_str(), nullptr);
  SG_CHECK(card.tiles.count > 0 && card.tiles.size > 0 && card.tiles.level >= 0, path, ": bad tiling attributes (tiles=",
           card.tiles.count, " tile_size=", card.tiles.size, " tile_level=", card.tiles.level, ")");
  return card;
}

}  // namespace sg::grading
