// The option words (core/option_words.h): for every word table, every accepted spelling (in any
// case) parses to its value through the table and through the library's named parser, the
// canonical word is what gets written back, and an unknown word's error lists the allowed words.
// That the flags and the config keys take the same words: tests/train/test_run_config.cpp and the
// command-line test tests/cli/test_exit_status_cli.sh.
#include <gtest/gtest.h>

#include <cctype>
#include <functional>
#include <set>
#include <string>

#include "core/option_words.h"
#include "data/tta.h"
#include "grading/head.h"
#include "kernels/activation.h"
#include "kernels/loss.h"
#include "nn/efficientnet_config_text.h"
#include "nn/head.h"
#include "train/memory_plan.h"
#include "nn/optimizer_kind.h"
#include "nn/precision.h"
#include "train/augment_preset.h"
#include "train/lr_schedule.h"
#include "train/train_step.h"

namespace sg {
namespace {

std::string upper(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = char(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// `parse` is the library's own parser of the word (nullptr: the table alone is the parser).
template <class Enum>
void expect_table_is_the_grammar(const OptionWords<Enum>& table, std::function<Enum(std::string_view)> parse,
                                 std::string_view unknown) {
  SCOPED_TRACE(std::string(table.what));
  ASSERT_FALSE(table.words.empty());
  std::set<std::string> seen;
  for (const OptionWord<Enum>& entry : table.words) {
    EXPECT_EQ(word_of(table, entry.value), entry.word);
    std::vector<std::string_view> spellings{entry.word};
    for (std::string_view alias : entry.aliases)
      if (!alias.empty()) spellings.push_back(alias);
    for (std::string_view spelling : spellings) {
      SCOPED_TRACE(std::string(spelling));
      EXPECT_TRUE(seen.insert(upper(spelling)).second) << "spelled twice";
      EXPECT_EQ(parse_word(table, spelling), entry.value);
      EXPECT_EQ(parse_word(table, upper(spelling)), entry.value);
      if (parse) {
        EXPECT_EQ(parse(spelling), entry.value);
      }
    }
  }
  std::string expected = "unknown " + std::string(table.what) + " '" + std::string(unknown) + "' (expected ";
  try {
    parse ? (void)parse(unknown) : (void)parse_word(table, unknown);
    ADD_FAILURE() << "'" << unknown << "' parsed";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.rfind(expected, 0), 0u) << message;
    for (const std::string& word : allowed_words(table)) EXPECT_NE(message.find(word), std::string::npos) << message;
  }
}

TEST(OptionWords, EveryTableIsTheOneGrammarOfItsWord) {
  expect_table_is_the_grammar<DType>(nn::kPrecisionWords, nn::parse_precision, "f8");
  expect_table_is_the_grammar<nn::HeadPooling>(nn::kHeadPoolingWords, nn::parse_head_pooling, "median");
  expect_table_is_the_grammar<Activation>(kActivationWords, parse_activation, "gelu");
  expect_table_is_the_grammar<grading::HeadKind>(grading::kHeadKindWords, grading::parse_head_kind, "ordinal");
  expect_table_is_the_grammar<Padding>(nn::kPaddingWords, nn::parse_padding, "reflect");
  expect_table_is_the_grammar<data::TtaMode>(data::kTtaModeWords, data::parse_tta_mode, "d4");
  expect_table_is_the_grammar<train::LossKind>(train::kLossKindWords, train::parse_loss_kind, "hinge");
  expect_table_is_the_grammar<train::LrScheduleKind>(train::kLrScheduleWords, train::parse_lr_schedule_kind, "cosin");
  expect_table_is_the_grammar<Reduction>(kReductionWords, parse_reduction, "avg");
  expect_table_is_the_grammar<nn::OptimizerKind>(nn::kOptimizerWords, nullptr, "adam");
  expect_table_is_the_grammar<train::AugmentPreset>(train::kAugmentPresetWords, nullptr, "heavy");
}

TEST(OptionWords, NamesAreTheCanonicalWords) {
  EXPECT_EQ(dtype_name(nn::parse_precision("half")), "f16");
  EXPECT_EQ(dtype_name(nn::parse_precision("BFloat16")), "bf16");
  EXPECT_EQ(nn::head_pooling_name(nn::parse_head_pooling("concat")), "avgmax");
  EXPECT_EQ(activation_name(parse_activation("silu")), "swish");
  EXPECT_EQ(nn::padding_name(nn::parse_padding("same")), "tf_same");
  EXPECT_EQ(train::loss_kind_name(train::parse_loss_kind("ce")), "cross_entropy");
  EXPECT_EQ(std::string(data::tta_mode_name(data::TtaMode::flips)), "flips");
  EXPECT_EQ(std::string(grading::head_kind_name(grading::HeadKind::binned)), "binned");
  EXPECT_EQ(std::string(train::lr_schedule_name(train::LrScheduleKind::cosine_restarts)), "cosine_restarts");
  EXPECT_EQ(reduction_name(Reduction::sum), "sum");
  EXPECT_EQ(train::optimizer_state_count("AdamW"), 2);
  EXPECT_EQ(train::optimizer_state_count("sgd"), 1);
}

TEST(OptionWords, HelpTexts) {
  EXPECT_EQ(alternatives_text(allowed_words(nn::kPrecisionWords)), "f32, f16 or bf16");
  EXPECT_EQ(spellings_text(nn::kPrecisionWords),
            "f32 (fp32, float32, float), f16 (fp16, float16, half), bf16 (bfloat16)");
  EXPECT_FALSE(find_word(nn::kPrecisionWords, "").has_value());
  EXPECT_FALSE(find_word(nn::kPrecisionWords, "f3").has_value());
}

}  // namespace
}  // namespace sg
