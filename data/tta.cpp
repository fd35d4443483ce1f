#include "data/tta.h"

#include <string>

#include "core/error.h"
#include "data/augment.h"

namespace sg::data {

TtaMode parse_tta_mode(std::string_view name) { return parse_word(kTtaModeWords, name); }

const char* tta_mode_name(TtaMode mode) { return word_of(kTtaModeWords, mode).data(); }

int tta_view_count(TtaMode mode) {
  switch (mode) {
    case TtaMode::none:
      return 1;
    case TtaMode::flips:
      return 4;
    case TtaMode::dihedral:
      return 8;
  }
  return 1;
}

std::vector<Image> tta_views(const Image& mosaic, TtaMode mode) {
  std::vector<Image> views;
  views.reserve(size_t(tta_view_count(mode)));
  views.push_back(mosaic);
  if (mode == TtaMode::flips) {
    views.push_back(mosaic);
    data::flip_horizontal(views.back());
    views.push_back(mosaic);
    data::flip_vertical(views.back());
    views.push_back(mosaic);
    data::flip_horizontal(views.back());
    data::flip_vertical(views.back());
  } else if (mode == TtaMode::dihedral) {
    for (int turns = 0; turns < 4; ++turns) {
      if (turns > 0) {
        views.push_back(mosaic);
        data::rotate90(views.back(), turns);
      }
      views.push_back(views.back());
      data::flip_horizontal(views.back());
    }
  }
  return views;
}

}  // namespace sg::data
