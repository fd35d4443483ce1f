// slidegrade merge-grades OUT.csv PART.csv... --data DIR: the submissions of `slidegrade grade
// --shard K/N` joined into the one an unsharded run writes (infer/grade_shards.h). DIR lists the
// slides as `grade --data DIR` did, which gives the order and shows a missing part.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/command.h"
#include "data/grades_csv.h"
#include "infer/grade_shards.h"
#include "infer/slide_list.h"

namespace sg::cli {

namespace {
struct MergeGradesOptions {
  std::string out;
  std::vector<std::string> parts;
  std::string data;
};

int run_merge_grades(const MergeGradesOptions& o) {
  const infer::SlidesToGrade all = infer::list_slides_to_grade(o.data);
  const std::vector<data::SlideGrade> merged = infer::merge_grade_parts(all, o.parts);
  data::write_grades_csv(o.out, merged);
  std::printf("merged %zu part(s): %zu slides of %s -> %s\n", o.parts.size(), merged.size(), all.source.c_str(),
              o.out.c_str());
  return 0;
}
}  // namespace

void add_merge_grades_command(CLI::App& app, Commands& commands) {
  auto o = std::make_shared<MergeGradesOptions>();
  CLI::App* parser = app.add_subcommand(
      "merge-grades", "Join the submissions of `grade --shard K/N` into the one an unsharded run writes");
  parser->add_option("out", o->out, "submission file to write")->required();
  parser->add_option("parts", o->parts, "the shards' submission files")->required();
  parser->add_option("--data", o->data, "the folder graded (as grade --data): the slides, their order")->required();
  commands.push_back({parser, [o] { return run_merge_grades(*o); }});
}

}  // namespace sg::cli
