#include "infer/grade_shards.h"

#include <charconv>
#include <map>
#include <set>

#include "core/error.h"
#include "core/usage_error.h"

namespace sg::infer {

namespace {
// At most this many ids in a message; the count says how many there are.
constexpr size_t kNamedInMessage = 10;

std::string id_list(const std::vector<std::string>& ids) {
  std::string text;
  for (size_t i = 0; i < ids.size() && i < kNamedInMessage; ++i) text += (i ? ", " : "") + ids[i];
  if (ids.size() > kNamedInMessage) text += detail::concat(", ... (", ids.size(), " in all)");
  return text;
}

bool parse_int(std::string_view text, int& value) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return error == std::errc() && end == text.data() + text.size();
}
}  // namespace

GradeShard parse_grade_shard(std::string_view text) {
  GradeShard shard;
  const size_t slash = text.find('/');
  const bool parsed = slash != std::string_view::npos && parse_int(text.substr(0, slash), shard.index) &&
                      parse_int(text.substr(slash + 1), shard.count);
  if (!parsed || shard.count < 1 || shard.index < 0 || shard.index >= shard.count)
    throw UsageError(detail::concat("--shard '", text, "': expected K/N with 0 <= K < N, e.g. 0/8 for the first of 8 ",
                                    "shards (Slurm: $SLURM_ARRAY_TASK_ID/8 with --array=0-7)"));
  return shard;
}

SlidesToGrade grade_shard(const SlidesToGrade& all, const GradeShard& shard) {
  SG_CHECK(shard.count >= 1 && shard.index >= 0 && shard.index < shard.count, "grade shard ", shard.index, "/",
           shard.count, " is out of range");
  SlidesToGrade part;
  part.source = detail::concat(all.source, ", shard ", shard.index, "/", shard.count);
  for (size_t i = size_t(shard.index); i < all.slides.size(); i += size_t(shard.count)) {
    part.slides.push_back(all.slides[i]);
    part.providers.push_back(i < all.providers.size() ? all.providers[i] : std::string());
  }
  return part;
}

std::vector<data::SlideGrade> merge_grade_parts(const SlidesToGrade& all, const std::vector<std::string>& parts) {
  SG_CHECK(!parts.empty(), "merge-grades: no part files given");
  struct Found {
    int grade = 0;
    std::string part;
  };
  std::map<std::string, Found> found;
  std::set<std::string> listed;
  for (const data::SlideItem& slide : all.slides) listed.insert(slide.id);
  std::vector<std::string> twice, unknown;
  for (const std::string& part : parts) {
    for (const data::SlideGrade& row : data::read_grades_csv(part)) {
      if (!listed.count(row.image_id)) {
        unknown.push_back(row.image_id + " (" + part + ")");
        continue;
      }
      const auto [it, inserted] = found.emplace(row.image_id, Found{row.isup_grade, part});
      if (!inserted) twice.push_back(row.image_id + " (" + it->second.part + " and " + part + ")");
    }
  }
  SG_CHECK(twice.empty(), "merge-grades: the parts overlap: ", twice.size(), " slide(s) graded twice: ",
           id_list(twice));
  SG_CHECK(unknown.empty(), "merge-grades: ", unknown.size(), " slide(s) in the parts are not in ", all.source, ": ",
           id_list(unknown));
  std::vector<std::string> missing;
  std::vector<data::SlideGrade> merged;
  for (const data::SlideItem& slide : all.slides) {
    const auto it = found.find(slide.id);
    if (it == found.end()) {
      missing.push_back(slide.id);
    } else {
      merged.push_back({slide.id, it->second.grade, 0});
    }
  }
  SG_CHECK(missing.empty(), "merge-grades: ", missing.size(), " slide(s) of ", all.source,
           " are in no part (a shard missing or failed?): ", id_list(missing));
  return merged;
}

}  // namespace sg::infer
