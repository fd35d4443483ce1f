#pragma once
// What `slidegrade grade` reads and writes besides the models: the slides to grade, and the
// details CSV beside Kaggle's submission (data/grades_csv.h).
#include <string>
#include <vector>

#include "data/slide_mosaics.h"
#include "infer/predictor.h"

namespace sg::infer {

struct SlidesToGrade {
  std::vector<data::SlideItem> slides;  // in order (label -1)
  std::vector<std::string> providers;   // per slide; "" when unknown
  std::string source;                   // what was listed, one line for the user
};

// Every row of DIR/test.csv (slides DIR/test_images/<id>.tiff, listed even when the file is
// missing: the grader reports it), or without a test.csv every *.tiff in DIR/test_images/ (or DIR
// itself when it has no test_images/), label masks (*_mask.tiff) left out, in name order, the id
// being the file name without .tiff. Throws naming DIR when it is missing or holds no slides.
SlidesToGrade list_slides_to_grade(const std::string& dir);

// image_id,data_provider,score,<output_names...>,isup_grade,status (ok | failed), one row per
// slide in order; a failed slide has an empty score and outputs and grade 0. Written atomically
// (core/atomic_file.h).
void write_details_csv(const std::string& path, const SlidesToGrade& list, const std::vector<SlidePrediction>& rows,
                       const std::vector<std::string>& output_names);

}  // namespace sg::infer
