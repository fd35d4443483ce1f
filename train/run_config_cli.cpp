// RunConfig <-> flags and TOML files. One table (visit_fields) lists every key once: its help,
// its allowed values, and whether it changes what a run computes; the flags, the TOML writer,
// the reader and run_config_differences all walk it.
//
// Files are read by a small flat-TOML reader here rather than CLI11 2.1's config reader: that one
// cuts a value at '#' even inside quotes, has no string escapes, and its errors name neither the
// file nor the line. The values it reads go through the same CLI11 options (conversion and
// validators) as the flags, so a key behaves the same in a file and on the command line.
#include "train/run_config_cli.h"

#include <algorithm>
#include <cctype>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <type_traits>

#include "core/allocator.h"
#include "core/error.h"
#include "core/usage_error.h"
#include "data/tta.h"
#include "grading/head.h"
#include "kernels/activation.h"
#include "nn/checkpointing.h"
#include "nn/efficientnet.h"
#include "nn/head.h"
#include "nn/optimizer_kind.h"
#include "nn/precision.h"
#include "train/augment_preset.h"
#include "train/lr_schedule.h"
#include "train/option_validators.h"

#ifndef SLIDEGRADE_VERSION
#define SLIDEGRADE_VERSION "unknown"
#endif

namespace sg::train {
namespace {

// One config key. `allowed` checks a string key's value with the parser that reads it (an option
// word's table, core/option_words.h; the device, checkpoint and size grammars), may rewrite it to
// its canonical spelling, and gives the help's summary of the allowed values; none when any value
// of the type goes (ranges are checked by validate_run_config).
struct Field {
  std::string_view key;
  std::string_view help;
  std::optional<CLI::Validator> allowed = {};
  bool computes = true;  // false: run_config_differences ignores it (where/how fast, not what)
};

// '' (the architecture's choice) or a word of `words`.
template <class Enum>
CLI::Validator empty_or_word(const OptionWords<Enum>& words) {
  const CLI::Validator word = word_choice(words);
  return CLI::Validator([word](std::string& text) { return text.empty() ? std::string{} : word(text); },
                        "''|" + word.get_description(), word.get_name());
}

// Every field of RunConfig, in its order. `config` is RunConfig or const RunConfig.
template <class Config, class Visit>
void visit_fields(Config& c, Visit&& visit) {
  // ---- data
  visit(Field{"data", "PANDA-layout folder: train.csv and train_images/ (required)"}, c.data);
  visit(Field{"out", "run folder (RUNDIR); with all_folds, RUNDIR/fold<k>/", {}, false}, c.out);
  visit(Field{"folds", "k of the stratified k-fold split (>= 2)"}, c.folds);
  visit(Field{"fold", "the validation fold, 0..folds-1"}, c.fold);
  visit(Field{"all_folds", "train every fold in turn"}, c.all_folds);
  visit(Field{"fold_seed", "seed of the k-fold split"}, c.fold_seed);
  visit(Field{"exclude_known_bad", "drop PANDA's known-bad rows"}, c.exclude_known_bad);
  visit(Field{"train_fraction", "use this share of the training fold, stratified (0, 1]"}, c.train_fraction);
  // ---- tiles
  visit(Field{"tiles", "N: tiles per slide (1..1024)"}, c.tiles);
  visit(Field{"tile_size", "S: tile side in pixels at `level` (8..2048)"}, c.tile_size);
  visit(Field{"level", "L: OpenSlide level the tiles are cut from (0 = full resolution; 0..9)"}, c.level);
  visit(Field{"half_offset", "shift the tile grid by half a tile"}, c.half_offset);
  visit(Field{"shuffle_tiles", "random tile order within each training mosaic"}, c.shuffle_tiles);
  visit(Field{"mosaic_rows", "mosaic grid rows; 0: from cols, or square"}, c.mosaic_rows);
  visit(Field{"mosaic_cols", "mosaic grid columns; 0: from rows, or square"}, c.mosaic_cols);
  visit(Field{"tile_cache", "cache each slide's tiles on disk", {}, false}, c.tile_cache);
  visit(Field{"cache_dir", "tile cache folder; empty: <data>/.slidegrade_tile_cache", {}, false}, c.cache_dir);
  // ---- model
  visit(Field{"arch", "EfficientNet variant", arch_choice()}, c.arch);
  visit(Field{"width", "> 0: override the arch's width multiplier (small nets); 0: the arch's"}, c.width);
  visit(Field{"depth", "> 0: override the arch's depth multiplier (small nets); 0: the arch's"}, c.depth);
  visit(Field{"pretrained", "weight file for the backbone (ours, or imported Keras/PyTorch); empty: random"},
        c.pretrained);
  visit(Field{"head", "softmax over 6 grades, binned BCE with 5 outputs, or regression", word_choice(grading::kHeadKindWords)},
        c.head);
  visit(Field{"activation", "empty: the arch's (swish; relu6 for lite)", empty_or_word(kActivationWords)},
        c.activation);
  visit(Field{"pooling", "global pooling before the head", word_choice(nn::kHeadPoolingWords)},
        c.pooling);
  visit(Field{"dropout", "head dropout in [0, 1); < 0: the arch's"}, c.dropout);
  visit(Field{"drop_connect", "stochastic depth rate in [0, 1); < 0: the arch's"}, c.drop_connect);
  visit(Field{"precision", "compute precision (f16 with dynamic loss scaling)", word_choice(nn::kPrecisionWords)},
        c.precision);
  visit(Field{"checkpointing", "gradient checkpointing of blocks; auto: as the memory plan needs",
              checkpoint_choice()},
        c.checkpointing);
  // ---- optimisation
  visit(Field{"batch", "micro-batch size (>= 1)"}, c.batch);
  visit(Field{"accumulate", "micro-batches per optimizer step (>= 1)"}, c.accumulate);
  visit(Field{"epochs", "epochs to train (>= 1); a resume may extend it", {}, false}, c.epochs);
  visit(Field{"optimizer", "optimizer", word_choice(nn::kOptimizerWords)}, c.optimizer);
  visit(Field{"lr", "base learning rate (> 0)"}, c.lr);
  visit(Field{"weight_decay", "weight decay (>= 0; decoupled for adamw)"}, c.weight_decay);
  visit(Field{"momentum", "sgd momentum in [0, 1)"}, c.momentum);
  visit(Field{"schedule", "learning-rate schedule after the warm-up", word_choice(kLrScheduleWords)},
        c.schedule);
  visit(Field{"warmup_epochs", "linear warm-up, in epochs (>= 0, < epochs)"}, c.warmup_epochs);
  visit(Field{"min_lr", "the schedule's floor (>= 0, <= lr)"}, c.min_lr);
  visit(Field{"max_grad_norm", "> 0: clip the global gradient norm; 0: no clipping"}, c.max_grad_norm);
  visit(Field{"label_smoothing", "label smoothing in [0, 1) (softmax head only)"}, c.label_smoothing);
  // ---- augmentation
  visit(Field{"augment", "augmentation preset", word_choice(kAugmentPresetWords)}, c.augment);
  // ---- run
  visit(Field{"seed", "seed of weights, sampling, augmentation and dropout"}, c.seed);
  visit(Field{"device", "where to train; auto: the GPU if there is one", device_choice(), false},
        c.device);
  visit(Field{"memory_limit", "cap the device allocator, e.g. 4GiB, 512MiB; empty: no cap", memory_limit_choice()},
        c.memory_limit);
  visit(Field{"loader_threads", "slide loader threads (0: load in the training thread)", {}, false}, c.loader_threads);
  visit(Field{"queue_depth", "batches the loader may run ahead (>= 1)", {}, false}, c.queue_depth);
  visit(Field{"tta_validation", "validate with dihedral TTA (8x slower validation)"}, c.tta_validation);
  visit(Field{"log_every", "> 0: also print a plain line every this many steps", {}, false}, c.log_every);
}

std::string dashed(std::string_view key) {
  std::string name(key);
  std::replace(name.begin(), name.end(), '_', '-');
  return name;
}

// Shows only the first long name of an option (--tile_size, not --tile_size,--tile-size); the
// footer says that '-' works for '_'.
class RunConfigFormatter : public CLI::Formatter {
 public:
  std::string make_option_name(const CLI::Option* option, bool is_positional) const override {
    if (is_positional || option->get_lnames().size() != 2)
      return CLI::Formatter::make_option_name(option, is_positional);
    std::string name = "--" + option->get_lnames()[0];
    for (const std::string& short_name : option->get_snames()) name = "-" + short_name + "," + name;
    return name;
  }
};

// ---- a flat TOML reader: `key = value` lines, comments, basic and literal strings, integers,
// floats, booleans. Tables and arrays are not used by RunConfig and are errors.

enum class TomlType { string, integer, floating, boolean };

const char* toml_type_name(TomlType type) {
  switch (type) {
    case TomlType::string:
      return "a string";
    case TomlType::integer:
      return "an integer";
    case TomlType::floating:
      return "a number";
    case TomlType::boolean:
      return "true or false";
  }
  return "?";
}

struct TomlItem {
  std::string key;
  std::string value;  // strings unescaped; numbers without '_'; booleans "true"/"false"
  TomlType type = TomlType::string;
  int line = 0;
};

void append_utf8(std::string& out, uint32_t code) {
  if (code < 0x80) {
    out += char(code);
  } else if (code < 0x800) {
    out += char(0xC0 | (code >> 6));
    out += char(0x80 | (code & 0x3F));
  } else if (code < 0x10000) {
    out += char(0xE0 | (code >> 12));
    out += char(0x80 | ((code >> 6) & 0x3F));
    out += char(0x80 | (code & 0x3F));
  } else {
    out += char(0xF0 | (code >> 18));
    out += char(0x80 | ((code >> 12) & 0x3F));
    out += char(0x80 | ((code >> 6) & 0x3F));
    out += char(0x80 | (code & 0x3F));
  }
}

class TomlLineParser {
 public:
  TomlLineParser(const std::string& text, std::string where) : text_(text), where_(std::move(where)) {}

  // Returns false for a blank or comment line.
  bool parse(TomlItem& item) {
    skip_space();
    if (done() || peek() == '#') return false;
    if (peek() == '[') fail("tables ([section]) are not used: put every key at the top level");
    item.key = parse_key();
    skip_space();
    if (done() || peek() != '=') fail("expected '=' after the key '", item.key, "'");
    ++pos_;
    skip_space();
    if (done()) fail("key '", item.key, "' has no value");
    parse_value(item);
    skip_space();
    if (!done() && peek() != '#') fail("unexpected text after the value of '", item.key, "': ", text_.substr(pos_));
    return true;
  }

 private:
  template <class... Parts>
  [[noreturn]] void fail(const Parts&... parts) const {
    throw CLI::ConfigError(detail::concat(where_, ": ", parts...));
  }
  bool done() const { return pos_ >= text_.size(); }
  char peek() const { return text_[pos_]; }
  void skip_space() {
    while (!done() && (peek() == ' ' || peek() == '\t' || peek() == '\r')) ++pos_;
  }

  std::string parse_key() {
    if (peek() == '"' || peek() == '\'') return parse_string(peek() == '"');
    const size_t start = pos_;
    while (!done() && (std::isalnum(static_cast<unsigned char>(peek())) || peek() == '_' || peek() == '-')) ++pos_;
    if (pos_ == start) fail("expected a key, got: ", text_.substr(pos_));
    if (!done() && peek() == '.') fail("dotted keys are not used: put every key at the top level");
    return text_.substr(start, pos_ - start);
  }

  std::string parse_string(bool basic) {
    const char quote = peek();
    ++pos_;
    if (text_.compare(pos_, 2, std::string(2, quote)) == 0) fail("multi-line strings are not used");
    std::string out;
    while (true) {
      if (done()) fail("unterminated string");
      const char ch = text_[pos_++];
      if (ch == quote) return out;
      if (!basic || ch != '\\') {
        out += ch;
        continue;
      }
      if (done()) fail("unterminated string");
      const char escaped = text_[pos_++];
      switch (escaped) {
        case 'b':
          out += '\b';
          break;
        case 't':
          out += '\t';
          break;
        case 'n':
          out += '\n';
          break;
        case 'f':
          out += '\f';
          break;
        case 'r':
          out += '\r';
          break;
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case 'u':
        case 'U': {
          const size_t digits = escaped == 'u' ? 4 : 8;
          if (pos_ + digits > text_.size()) fail("short \\", escaped, " escape");
          uint32_t code = 0;
          for (size_t i = 0; i < digits; ++i) {
            const char h = text_[pos_++];
            if (!std::isxdigit(static_cast<unsigned char>(h))) fail("bad \\", escaped, " escape");
            code = code * 16 +
                   uint32_t(std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : (std::tolower(h) - 'a' + 10));
          }
          if (code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) fail("bad unicode escape");
          append_utf8(out, code);
          break;
        }
        default:
          fail("unknown escape \\", escaped, " in a string");
      }
    }
  }

  void parse_value(TomlItem& item) {
    if (peek() == '"' || peek() == '\'') {
      item.type = TomlType::string;
      item.value = parse_string(peek() == '"');
      return;
    }
    if (peek() == '[' || peek() == '{') fail("key '", item.key, "': arrays and tables are not used");
    const size_t start = pos_;
    while (!done() && peek() != ' ' && peek() != '\t' && peek() != '#' && peek() != '\r') ++pos_;
    const std::string word = text_.substr(start, pos_ - start);
    if (word == "true" || word == "false") {
      item.type = TomlType::boolean;
      item.value = word;
      return;
    }
    // A number: digits with single '_' between them, an optional sign, a fraction, an exponent;
    // or inf / nan.
    std::string digits;
    bool fraction_or_exponent = false;
    for (size_t i = 0; i < word.size(); ++i) {
      const char ch = word[i];
      if (ch == '_') {
        const bool between = i > 0 && i + 1 < word.size() && std::isdigit(static_cast<unsigned char>(word[i - 1])) &&
                             std::isdigit(static_cast<unsigned char>(word[i + 1]));
        if (!between) fail("key '", item.key, "': bad number '", word, "'");
        continue;
      }
      if (ch == '.' || ch == 'e' || ch == 'E') fraction_or_exponent = true;
      digits += ch;
    }
    const std::string unsigned_part =
        digits.empty() || (digits[0] != '+' && digits[0] != '-') ? digits : digits.substr(1);
    if (unsigned_part == "inf" || unsigned_part == "nan") {
      item.type = TomlType::floating;
      item.value = digits;
      return;
    }
    const bool looks_numeric = !unsigned_part.empty() && std::isdigit(static_cast<unsigned char>(unsigned_part[0]));
    bool valid = looks_numeric;
    if (valid && fraction_or_exponent) {
      char* end = nullptr;
      (void)std::strtod(digits.c_str(), &end);
      valid = end == digits.c_str() + digits.size();
    } else if (valid) {
      valid = std::all_of(unsigned_part.begin(), unsigned_part.end(),
                          [](char ch) { return std::isdigit(static_cast<unsigned char>(ch)); });
      if (valid && unsigned_part.size() > 1 && unsigned_part[0] == '0')
        fail("key '", item.key, "': leading zero in '", word, "'");
    }
    if (!valid) {
      fail("key '", item.key, "': '", word, "' is not a value (strings need quotes: ", item.key, " = \"", word, "\")");
    }
    item.type = fraction_or_exponent ? TomlType::floating : TomlType::integer;
    item.value = digits[0] == '+' ? digits.substr(1) : digits;
  }

  const std::string& text_;
  std::string where_;
  size_t pos_ = 0;
};

std::vector<TomlItem> read_toml_items(const std::string& path) {
  std::ifstream file(path);
  if (!file) throw CLI::ConfigError("config file '" + path + "': cannot open it");
  std::vector<TomlItem> items;
  std::string line;
  for (int number = 1; std::getline(file, line); ++number) {
    TomlItem item;
    item.line = number;
    TomlLineParser parser(line, "config file '" + path + "' line " + std::to_string(number));
    if (!parser.parse(item)) continue;
    for (const TomlItem& earlier : items)
      if (earlier.key == item.key)
        throw CLI::ConfigError(detail::concat("config file '", path, "' line ", number, ": key '", item.key,
                                              "' is set twice (first on line ", earlier.line, ")"));
    items.push_back(std::move(item));
  }
  if (file.bad()) throw CLI::ConfigError("config file '" + path + "': read error");
  return items;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// The field's type as a TOML type, for type errors in files.
template <class T>
TomlType toml_type_of() {
  if constexpr (std::is_same_v<T, std::string>)
    return TomlType::string;
  else if constexpr (std::is_same_v<T, bool>)
    return TomlType::boolean;
  else if constexpr (std::is_floating_point_v<T>)
    return TomlType::floating;
  else
    return TomlType::integer;
}

struct KeyOption {
  CLI::Option* option = nullptr;
  TomlType type = TomlType::string;
};

// Reads `path` into the options that the command line did not set (flags win).
void load_config_file(const std::string& path, const std::map<std::string, KeyOption, std::less<>>& keys) {
  for (const TomlItem& item : read_toml_items(path)) {
    const std::string where = "config file '" + path + "' line " + std::to_string(item.line);
    const auto found = keys.find(item.key);
    if (found == keys.end()) {
      std::string best;
      size_t best_distance = 3;
      for (const auto& [key, unused] : keys) {
        const size_t distance = edit_distance(dashed(item.key), dashed(key));
        if (distance < best_distance) best_distance = distance, best = key;
      }
      throw CLI::ConfigError(where + ": unknown key '" + item.key + "'" +
                             (best.empty() ? std::string{} : " (did you mean " + best + "?)") +
                             "; `slidegrade train --help` lists the keys");
    }
    const KeyOption& key = found->second;
    const bool type_ok = item.type == key.type || (key.type == TomlType::floating && item.type == TomlType::integer);
    if (!type_ok) {
      throw CLI::ConfigError(detail::concat(where, ": key '", item.key, "' needs ", toml_type_name(key.type), ", got ",
                                            item.type == TomlType::string ? "\"" + item.value + "\"" : item.value));
    }
    if (key.option->count() > 0) continue;  // given on the command line
    try {
      key.option->add_result(item.value);
      key.option->run_callback();
    } catch (const CLI::ConversionError&) {
      throw CLI::ConfigError(detail::concat(where, ": key '", item.key, "': ", item.value, " is not a valid ",
                                            key.option->get_type_name()));
    } catch (const CLI::ParseError& e) {
      // A validator's message without the "--key: " CLI11 puts in front.
      std::string message = e.what();
      const std::string prefix = key.option->get_name() + ": ";
      if (message.rfind(prefix, 0) == 0) message.erase(0, prefix.size());
      throw CLI::ConfigError(where + ": key '" + item.key + "': " + message);
    }
  }
}

std::string quote_toml(const std::string& text) {
  std::string out = "\"";
  for (const char ch : text) {
    const auto byte = static_cast<unsigned char>(ch);
    switch (ch) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (byte < 0x20 || byte == 0x7F) {
          char buffer[8];
          std::snprintf(buffer, sizeof buffer, "\\u%04X", unsigned(byte));
          out += buffer;
        } else {
          out += ch;
        }
    }
  }
  return out + "\"";
}

template <class T>
std::string value_text(const T& value) {
  if constexpr (std::is_same_v<T, std::string>) {
    return quote_toml(value);
  } else if constexpr (std::is_same_v<T, bool>) {
    return value ? "true" : "false";
  } else if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(value)) return "nan";
    if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
    char buffer[40];
    std::snprintf(buffer, sizeof buffer, "%.17g", value);
    // Shortest text that reads back to the same double (3e-4, not 0.00029999999999999997).
    for (int precision = 1; precision < 17; ++precision) {
      char shorter[40];
      std::snprintf(shorter, sizeof shorter, "%.*g", precision, value);
      if (std::strtod(shorter, nullptr) == value) {
        std::snprintf(buffer, sizeof buffer, "%s", shorter);
        break;
      }
    }
    std::string text = buffer;
    // TOML floats need a '.' or an exponent.
    if (text.find_first_of(".e") == std::string::npos) text += ".0";
    return text;
  } else {
    return std::to_string(value);
  }
}

}  // namespace

void add_run_config_options(CLI::App& app, RunConfig& config) {
  auto keys = std::make_shared<std::map<std::string, KeyOption, std::less<>>>();
  // --config first: its callback runs before the other options' (CLI11 runs callbacks in the
  // order options were added), so it only fills the options that the command line left unset.
  app.add_option_function<std::string>(
         "--config", [keys](const std::string& path) { load_config_file(path, *keys); },
         "TOML file of run config keys (key = value, one per line); flags override it")
      ->type_name("FILE")
      ->check(CLI::Validator(CLI::ExistingFile).description(""));
  visit_fields(config, [&](const Field& field, auto& value) {
    using T = std::remove_reference_t<decltype(value)>;
    std::string names = "--" + std::string(field.key);
    if (field.key.find('_') != std::string_view::npos) names += ",--" + dashed(field.key);
    std::string help(field.help);
    CLI::Option* option = nullptr;
    if constexpr (std::is_same_v<T, bool>) {
      // --key sets it; --key=false clears it.
      help += value ? " (default true; --" + std::string(field.key) + "=false to turn off)" : " (default false)";
      option = app.add_flag(names, value, help);
    } else {
      option = app.add_option(names, value, help)->capture_default_str();
      if constexpr (std::is_unsigned_v<T>) {
        option->check(CLI::Validator(
            [](std::string& text) {
              return text.find('-') == std::string::npos ? std::string{}
                                                         : "'" + text + "': expected a non-negative integer";
            },
            "", "NonNegative"));
      }
      // A transform, not a check: the option keeps the canonical spelling the validator writes.
      if constexpr (std::is_same_v<T, std::string>)
        if (field.allowed) option->transform(*field.allowed);
    }
    option->group("Run config (also keys of the --config file)");
    (*keys)[std::string(field.key)] = KeyOption{option, toml_type_of<T>()};
  });
  app.formatter(std::make_shared<RunConfigFormatter>());
  app.footer(app.get_footer() + (app.get_footer().empty() ? "" : "\n") +
             "Run config keys are also written with '-' for '_' (--tile-size = --tile_size). In a --config file "
             "they are `key = value` lines: tile_size = 256, precision = \"f16\", half_offset = true.");
}

void validate_run_config(const RunConfig& c) {
  auto check = [](bool ok, std::string_view key, const auto& value, const auto&... expected) {
    if (!ok) throw UsageError(detail::concat(key, " ", value, ": expected ", expected...));
  };
  // Enumerations first, with the flags' own validators: their messages list the allowed values.
  visit_fields(c, [&](const Field& field, const auto& value) {
    using T = std::remove_cvref_t<decltype(value)>;
    if constexpr (std::is_same_v<T, std::string>) {
      if (!field.allowed) return;
      std::string text = value;
      const std::string problem = (*field.allowed)(text);
      if (!problem.empty()) throw UsageError(detail::concat(field.key, ": ", problem));
    }
  });
  check(!c.data.empty(), "data", "''",
        "the PANDA-layout folder (train.csv, train_images/): --data DIR or data = \"DIR\"");
  check(!c.out.empty(), "out", "''", "a run folder");
  check(c.folds >= 2, "folds", c.folds, ">= 2");
  if (!c.all_folds)
    check(c.fold >= 0 && c.fold < c.folds, "fold", c.fold, "0..", c.folds - 1, " (folds = ", c.folds, ")");
  check(c.train_fraction > 0 && c.train_fraction <= 1, "train_fraction", c.train_fraction, "a share in (0, 1]");
  check(c.tiles >= 1 && c.tiles <= 1024, "tiles", c.tiles, "1..1024");
  check(c.tile_size >= 8 && c.tile_size <= 2048, "tile_size", c.tile_size, "8..2048 pixels");
  check(c.level >= 0 && c.level <= 9, "level", c.level, "0..9");
  check(c.mosaic_rows >= 0, "mosaic_rows", c.mosaic_rows, ">= 0 (0: square)");
  check(c.mosaic_cols >= 0, "mosaic_cols", c.mosaic_cols, ">= 0 (0: square)");
  if (c.mosaic_rows > 0 && c.mosaic_cols > 0) {
    check(int64_t(c.mosaic_rows) * c.mosaic_cols >= c.tiles, "mosaic_rows", c.mosaic_rows,
          "a grid that holds the tiles: ", c.mosaic_rows, "x", c.mosaic_cols, " < tiles = ", c.tiles);
  }
  check(c.width >= 0 && c.width <= 10, "width", c.width, "0 (the arch's) or a multiplier in (0, 10]");
  check(c.depth >= 0 && c.depth <= 10, "depth", c.depth, "0 (the arch's) or a multiplier in (0, 10]");
  check(c.dropout < 1, "dropout", c.dropout, "a rate in [0, 1), or < 0 for the arch's");
  check(c.drop_connect < 1, "drop_connect", c.drop_connect, "a rate in [0, 1), or < 0 for the arch's");
  check(c.batch >= 1, "batch", c.batch, ">= 1");
  check(c.accumulate >= 1, "accumulate", c.accumulate, ">= 1");
  check(c.epochs >= 1, "epochs", c.epochs, ">= 1");
  check(c.lr > 0 && std::isfinite(c.lr), "lr", c.lr, "> 0");
  check(c.weight_decay >= 0 && std::isfinite(c.weight_decay), "weight_decay", c.weight_decay, ">= 0");
  check(c.momentum >= 0 && c.momentum < 1, "momentum", c.momentum, "[0, 1)");
  check(c.warmup_epochs >= 0 && c.warmup_epochs < c.epochs, "warmup_epochs", c.warmup_epochs,
        ">= 0 and < epochs = ", c.epochs);
  check(c.min_lr >= 0 && c.min_lr <= c.lr, "min_lr", c.min_lr, ">= 0 and <= lr = ", c.lr);
  check(c.max_grad_norm >= 0 && std::isfinite(c.max_grad_norm), "max_grad_norm", c.max_grad_norm,
        ">= 0 (0: no clipping)");
  check(c.label_smoothing >= 0 && c.label_smoothing < 1, "label_smoothing", c.label_smoothing, "[0, 1)");
  check(c.label_smoothing == 0 || c.head == "softmax", "label_smoothing", c.label_smoothing, "0 with head = ", c.head,
        " (label smoothing needs head = softmax)");
  check(c.loader_threads >= 0 && c.loader_threads <= 256, "loader_threads", c.loader_threads, "0..256");
  check(c.queue_depth >= 1 && c.queue_depth <= 64, "queue_depth", c.queue_depth, "1..64");
  check(c.log_every >= 0, "log_every", c.log_every, ">= 0");
}

std::string run_config_toml(const RunConfig& config) {
  std::ostringstream out;
  out << "# slidegrade " << SLIDEGRADE_VERSION << " run config: every key as the run resolved it.\n"
      << "# Read it with `slidegrade train --config FILE` (flags override it); `--resume RUNDIR` reads "
         "RUNDIR/config.toml.\n";
  visit_fields(config,
               [&](const Field& field, const auto& value) { out << field.key << " = " << value_text(value) << "\n"; });
  return out.str();
}

RunConfig read_run_config(const std::string& path) {
  RunConfig config;
  CLI::App app{"read_run_config"};
  add_run_config_options(app, config);
  std::vector<std::string> arguments{path, "--config"};  // CLI11 takes them reversed
  try {
    app.parse(arguments);
  } catch (const CLI::ParseError& e) {
    throw Error(detail::concat("reading the run config '", path, "': ", e.what()));
  }
  return config;
}

namespace {
// CLI11 takes an argument vector in reverse order (it pops from the back).
RunConfig parse_reversed(std::vector<std::string> arguments) {
  std::reverse(arguments.begin(), arguments.end());
  RunConfig config;
  CLI::App app{"run config"};
  add_run_config_options(app, config);
  app.parse(arguments);
  return config;
}
}  // namespace

RunConfig parse_run_config_arguments(const std::vector<std::string>& arguments) {
  try {
    return parse_reversed(arguments);
  } catch (const CLI::ParseError& e) {
    throw UsageError(e.what());
  }
}

RunConfig resume_run_config(const std::string& run_dir, const std::vector<std::string>& flag_arguments) {
  const std::string saved = (std::filesystem::path(run_dir) / "config.toml").string();
  std::error_code error;
  SG_CHECK(std::filesystem::is_regular_file(saved, error), run_dir, ": not a run folder (no config.toml) to resume");
  std::vector<std::string> arguments{"--config", saved};
  arguments.insert(arguments.end(), flag_arguments.begin(), flag_arguments.end());
  try {
    return parse_reversed(arguments);
  } catch (const CLI::ParseError& e) {
    throw Error(detail::concat("reading the run config '", saved, "': ", e.what()));
  }
}

std::vector<std::string> run_config_differences(const RunConfig& saved, const RunConfig& given) {
  std::vector<std::pair<std::string, std::string>> saved_values;
  visit_fields(saved, [&](const Field& field, const auto& value) {
    saved_values.emplace_back(std::string(field.key), field.computes ? value_text(value) : std::string{});
  });
  std::vector<std::string> differences;
  size_t index = 0;
  visit_fields(given, [&](const Field& field, const auto& value) {
    const std::string& before = saved_values[index++].second;
    if (!field.computes) return;
    const std::string after = value_text(value);
    if (after != before) differences.push_back(std::string(field.key) + ": " + before + " -> " + after);
  });
  return differences;
}

}  // namespace sg::train
