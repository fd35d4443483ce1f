#pragma once
// CLI11 validators over the project's own parsers, so that a flag, a --config key and the library
// read a word with the same grammar (core/option_words.h) and a bad word is a usage error (exit
// status 2) reported before anything runs. Used by the run config (train/run_config_cli.cpp) and
// by the subcommands in cli/.
#include <CLI/CLI.hpp>

#include <functional>
#include <string>

#include "core/error.h"
#include "core/option_words.h"

namespace sg::train {

// Accepts any spelling of `table` and rewrites the value to its canonical word (configs written
// back and compared on --resume hold canonical words). The help shows the canonical words.
template <class Enum>
CLI::Validator word_choice(const OptionWords<Enum>& table) {
  std::string summary;
  for (const std::string& word : allowed_words(table)) summary += (summary.empty() ? "" : "|") + word;
  return CLI::Validator(
      [table](std::string& text) -> std::string {
        const std::optional<Enum> value = find_word(table, text);
        if (!value) return unknown_word_message(table, text);
        text = std::string(word_of(table, *value));
        return {};
      },
      summary, std::string(table.what));
}

// Accepts what `parse` accepts (it throws sg::Error naming the problem, which becomes the
// validator's message); `summary` describes the accepted forms in the help.
inline CLI::Validator parsed_by(std::function<void(const std::string&)> parse, std::string summary,
                                std::string name) {
  return CLI::Validator(
      [parse = std::move(parse)](std::string& text) -> std::string {
        try {
          parse(text);
          return {};
        } catch (const Error& e) {
          return e.what();
        }
      },
      std::move(summary), std::move(name));
}

// The grammars that are not one word, each checked by the parser that reads it:
// Apply arch_choice with transform(): it rewrites the name to the canonical one, as word_choice.
CLI::Validator arch_choice();          // b0..b7, lite0..lite4 (nn::efficientnet_config)
CLI::Validator checkpoint_choice();    // none, every, every:K, blocks:I,J,..., auto (nn::parse_checkpoint_policy)
CLI::Validator device_choice();        // auto, cpu, cuda, cuda:N (sg::parse_device_spelling; no GPU needed)
CLI::Validator memory_limit_choice();  // '' (no cap) or a size such as 4GiB (sg::parse_bytes)

}  // namespace sg::train
