#pragma once
// The words an option takes (a precision, a pooling, a TTA mode, ...): one table per enumeration
// lists each value's canonical word and the other spellings accepted for it. The command-line
// flags, the TOML run configs, `plan`, `bench`, the weight-file attributes and the library all read
// a word through parse_word on that table, so each word has exactly one grammar and one list of
// allowed values, and an unknown word's error lists them.
//
// Grammar: a word matches a value's canonical word or one of its aliases, ignoring ASCII case
// ("FP16" = "fp16"). What is written back (configs, file attributes, messages) is the canonical
// word.
#include <algorithm>
#include <array>
#include <cctype>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace sg {

template <class Enum>
struct OptionWord {
  Enum value;
  std::string_view word;                      // canonical: written back and listed in messages
  std::array<std::string_view, 4> aliases{};  // other accepted spellings; unused entries are ""
};

template <class Enum>
struct OptionWords {
  std::string_view what;  // what the words name, for messages: "precision", "TTA mode"
  std::span<const OptionWord<Enum>> words;
};

namespace detail {
inline bool same_word(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}
}  // namespace detail

// The value `text` spells, or nothing when it spells none.
template <class Enum>
std::optional<Enum> find_word(const OptionWords<Enum>& table, std::string_view text) {
  for (const OptionWord<Enum>& entry : table.words) {
    if (detail::same_word(text, entry.word)) return entry.value;
    for (std::string_view alias : entry.aliases)
      if (!alias.empty() && detail::same_word(text, alias)) return entry.value;
  }
  return std::nullopt;
}

// The canonical words, in the table's order.
template <class Enum>
std::vector<std::string> allowed_words(const OptionWords<Enum>& table) {
  std::vector<std::string> words;
  for (const OptionWord<Enum>& entry : table.words) words.emplace_back(entry.word);
  return words;
}

// "a, b or c": the canonical words for a message.
inline std::string alternatives_text(const std::vector<std::string>& words) {
  std::string text;
  for (size_t i = 0; i < words.size(); ++i) {
    if (i > 0) text += i + 1 == words.size() ? " or " : ", ";
    text += words[i];
  }
  return text;
}

// "f32 (fp32, float32, float), f16 (fp16, float16, half), bf16 (bfloat16)": every accepted
// spelling, for help texts.
template <class Enum>
std::string spellings_text(const OptionWords<Enum>& table) {
  std::string text;
  for (const OptionWord<Enum>& entry : table.words) {
    if (!text.empty()) text += ", ";
    text += entry.word;
    std::string aliases;
    for (std::string_view alias : entry.aliases)
      if (!alias.empty()) aliases += (aliases.empty() ? "" : ", ") + std::string(alias);
    if (!aliases.empty()) text += " (" + aliases + ")";
  }
  return text;
}

// "unknown precision 'f8' (expected f32, f16 or bf16)".
template <class Enum>
std::string unknown_word_message(const OptionWords<Enum>& table, std::string_view text) {
  return detail::concat("unknown ", table.what, " '", text, "' (expected ", alternatives_text(allowed_words(table)),
                        ")");
}

// The value `text` spells; throws sg::Error listing the allowed words when it spells none.
template <class Enum>
Enum parse_word(const OptionWords<Enum>& table, std::string_view text) {
  if (const std::optional<Enum> value = find_word(table, text)) return *value;
  throw Error(unknown_word_message(table, text));
}

// The canonical word of `value` ("?" for a value the table lacks, which is a bug).
template <class Enum>
std::string_view word_of(const OptionWords<Enum>& table, Enum value) {
  for (const OptionWord<Enum>& entry : table.words)
    if (entry.value == value) return entry.word;
  return "?";
}

}  // namespace sg
