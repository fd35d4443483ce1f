// Heads (targets, scores, thresholds), the model card in weight files, the model input.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "grading/head.h"
#include "grading/model_card.h"
#include "grading/model_input.h"

namespace sg::grading {
namespace {

TEST(Head, TargetsScoresAndGrades) {
  std::vector<float> binned(5);
  head_targets(HeadKind::binned, 3, binned);
  EXPECT_EQ(binned, (std::vector<float>{1, 1, 1, 0, 0}));
  std::vector<float> one(1);
  head_targets(HeadKind::softmax, 4, one);
  EXPECT_EQ(one[0], 4.0f);
  EXPECT_THROW(head_targets(HeadKind::binned, 6, binned), Error);
  EXPECT_THROW(head_targets(HeadKind::regression, 2, binned), Error);

  // Binned: the sum of sigmoids; large logits for the first 3 -> about 3.
  const std::vector<float> logits{20, 20, 20, -20, -20};
  EXPECT_NEAR(head_score(HeadKind::binned, logits), 3.0, 1e-6);
  EXPECT_EQ(head_grade(HeadKind::binned, logits), 3);
  // Softmax: argmax, and the expected grade as the score.
  const std::vector<float> soft{0, 0, 10, 10, 0, 0};
  EXPECT_EQ(head_grade(HeadKind::softmax, soft), 2);  // first of the tied maxima
  EXPECT_NEAR(head_score(HeadKind::softmax, soft), 2.5, 1e-3);
  // Regression with tuned thresholds.
  const Thresholds t = parse_thresholds("0.4, 1.6,2.5,3.1,4.9");
  EXPECT_EQ(grade_from_score(3.05, t), 3);
  EXPECT_EQ(grade_from_score(3.1, t), 4);
  EXPECT_EQ(grade_from_score(-7, t), 0);
  EXPECT_EQ(grade_from_score(99, t), 5);
  EXPECT_EQ(parse_thresholds(thresholds_text(t)), t);
  EXPECT_THROW(parse_thresholds("1,2,3"), Error);
  EXPECT_THROW(parse_thresholds("1,2,3,x,5"), Error);
  EXPECT_THROW(parse_thresholds("1,2,3,2,5"), Error);
  EXPECT_THROW(parse_head_kind("ordinal"), Error);
}

TEST(ModelCard, RoundTripsThroughAttributes) {
  ModelCard card;
  card.head = HeadKind::regression;
  card.tiles = data::TileSpec{64, 192, 1, true};
  card.mosaic_rows = 8;
  card.mosaic_cols = 8;
  card.invert = false;
  card.thresholds = parse_thresholds("0.6,1.5,2.4,3.5,4.4");
  card.thresholds_tuned = true;
  card.fold = 3;
  card.epoch = 9;
  card.validation_qwk = 0.8125;
  WeightAttributes attributes;
  write_model_card(card, attributes);
  const ModelCard back = read_model_card(attributes, "m.h5");
  EXPECT_EQ(back.head, card.head);
  EXPECT_EQ(back.tiles, card.tiles);
  EXPECT_EQ(back.mosaic_rows, 8);
  EXPECT_FALSE(back.invert);
  EXPECT_EQ(back.thresholds, card.thresholds);
  EXPECT_TRUE(back.thresholds_tuned);
  EXPECT_EQ(back.fold, 3);
  EXPECT_EQ(back.epoch, 9);
  EXPECT_DOUBLE_EQ(back.validation_qwk, 0.8125);
  try {
    read_model_card(WeightAttributes{}, "imagenet.h5");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("imagenet.h5: not a trained slidegrade model"), std::string::npos) << e.what();
  }
}

TEST(ModelInput, InvertScaleAndNormalise) {
  const std::vector<uint8_t> pixels{255, 0, 128, 0, 255, 51};  // two pixels
  InputNormalization n;
  const Tensor x = mosaics_to_input(pixels, 1, 1, 2, n);
  const std::vector<float> v = x.to_floats();
  ASSERT_EQ(v.size(), 6u);
  for (size_t i = 0; i < 6; ++i) {
    const size_t c = i % 3;
    const float expected = ((255.0f - float(pixels[i])) / 255.0f - n.mean[c]) / n.std[c];
    EXPECT_NEAR(v[i], expected, 1e-5f) << i;
  }
  n.invert = false;
  EXPECT_NEAR(mosaics_to_input(pixels, 1, 1, 2, n).to_floats()[0], (1.0f - n.mean[0]) / n.std[0], 1e-5f);
  EXPECT_THROW(mosaics_to_input(pixels, 2, 1, 2, n), Error);
}

}  // namespace
}  // namespace sg::grading
