// RunConfig from flags and TOML files (train/run_config_cli.h): a file plus overriding flags,
// the resolved config written and read back equal, the shipped configs/, and the bad input: an
// unknown key, a bad value (named, with the allowed values), cross-field errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/usage_error.h"
#include "grading/head.h"
#include "kernels/activation.h"
#include "nn/head.h"
#include "nn/optimizer_kind.h"
#include "nn/precision.h"
#include "train/augment_preset.h"
#include "train/lr_schedule.h"
#include "train/run_config_cli.h"

namespace sg::train {
namespace {

namespace fs = std::filesystem;

// A folder of its own under the temp dir, removed afterwards.
class TempFolder {
 public:
  TempFolder() {
    static std::atomic<int> counter{0};
    path_ =
        fs::temp_directory_path() / ("sg_run_config_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(path_);
  }
  ~TempFolder() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  std::string write(const std::string& name, const std::string& text) const {
    const fs::path file = path_ / name;
    std::ofstream(file) << text;
    return file.string();
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Parses `arguments` (without the program name) into a RunConfig as a `train` subcommand would.
RunConfig parse(std::vector<std::string> arguments) {
  CLI::App app{"test"};
  RunConfig config;
  add_run_config_options(app, config);
  std::reverse(arguments.begin(), arguments.end());
  app.parse(arguments);
  return config;
}

// The message of the CLI11 parse error `arguments` must cause.
std::string parse_error(std::vector<std::string> arguments) {
  try {
    parse(std::move(arguments));
  } catch (const CLI::ParseError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no parse error";
  return {};
}

std::string validation_error(const RunConfig& config) {
  try {
    validate_run_config(config);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "validate_run_config accepted it";
  return {};
}

RunConfig valid_config() {
  RunConfig config;
  config.data = "/data/panda";
  return config;
}

// A config whose every field differs from the defaults (and takes awkward values: strings with
// spaces, quotes, '#' and backslashes; doubles that need 17 digits; a 64-bit seed).
RunConfig unusual_config() {
  RunConfig c;
  c.data = "/data/my \"panda\" # copy\\x";
  c.out = "runs/a b";
  c.folds = 7;
  c.fold = 6;
  c.all_folds = true;
  c.fold_seed = 18446744073709551615ull;
  c.exclude_known_bad = false;
  c.train_fraction = 0.1 + 0.2;
  c.tiles = 64;
  c.tile_size = 192;
  c.level = 2;
  c.half_offset = true;
  c.shuffle_tiles = false;
  c.mosaic_rows = 4;
  c.mosaic_cols = 16;
  c.tile_cache = false;
  c.cache_dir = "/tmp/cache=dir";
  c.arch = "lite3";
  c.width = 0.25;
  c.depth = 1.0 / 3.0;
  c.pretrained = "w\teights.h5";
  c.head = "softmax";
  c.activation = "mish";
  c.pooling = "avgmax";
  c.dropout = 0.35;
  c.drop_connect = 1e-300;
  c.precision = "bf16";
  c.checkpointing = "blocks:0,1,4";
  c.batch = 3;
  c.accumulate = 5;
  c.epochs = 31;
  c.optimizer = "sgd";
  c.lr = 2.0 / 3.0 * 1e-3;
  c.weight_decay = 0;
  c.momentum = 0.95;
  c.schedule = "cosine_restarts";
  c.warmup_epochs = 0.5;
  c.min_lr = 1e-7;
  c.max_grad_norm = 5;
  c.label_smoothing = 0.1;
  c.augment = "light";
  c.seed = 12345678901234ull;
  c.device = "cuda:1";
  c.memory_limit = "3.5GiB";
  c.loader_threads = 7;
  c.queue_depth = 4;
  c.tta_validation = true;
  c.log_every = 50;
  return c;
}

// Field-by-field equality through the TOML text plus the fields compared directly.
void expect_equal(const RunConfig& a, const RunConfig& b) {
  EXPECT_EQ(run_config_toml(a), run_config_toml(b));
  EXPECT_EQ(a.data, b.data);
  EXPECT_EQ(a.fold_seed, b.fold_seed);
  EXPECT_EQ(a.train_fraction, b.train_fraction);
  EXPECT_EQ(a.depth, b.depth);
  EXPECT_EQ(a.lr, b.lr);
  EXPECT_EQ(a.drop_connect, b.drop_connect);
  EXPECT_EQ(a.pretrained, b.pretrained);
  EXPECT_EQ(a.half_offset, b.half_offset);
  EXPECT_EQ(a.shuffle_tiles, b.shuffle_tiles);
}

fs::path repo_root() { return fs::path(SG_TEST_DATA_DIR).parent_path().parent_path(); }

TEST(RunConfigCli, FileThenFlagsFlagsWin) {
  TempFolder folder;
  const std::string file = folder.write("run.toml",
                                        "# a run\n"
                                        "data = \"/data/panda\"  # the folder\n"
                                        "tiles = 16\n"
                                        "tile_size = 128\n"
                                        "lr = 1e-3\n"
                                        "precision = \"f16\"\n"
                                        "half_offset = true\n"
                                        "shuffle_tiles = false\n"
                                        "\n"
                                        "batch = 8\n");
  const RunConfig config =
      parse({"--config", file, "--tile-size", "64", "--batch=2", "--shuffle_tiles", "--lr", "0.01"});
  EXPECT_EQ(config.data, "/data/panda");
  EXPECT_EQ(config.tiles, 16);                   // file
  EXPECT_EQ(config.tile_size, 64);               // flag, dashed form
  EXPECT_EQ(config.batch, 2);                    // flag
  EXPECT_EQ(config.lr, 0.01);                    // flag
  EXPECT_EQ(config.precision, "f16");            // file
  EXPECT_TRUE(config.half_offset);               // file
  EXPECT_TRUE(config.shuffle_tiles);             // flag over the file's false
  EXPECT_EQ(config.epochs, RunConfig{}.epochs);  // neither: the default

  // The order of --config among the flags does not matter.
  const RunConfig flags_first = parse({"--tile_size", "64", "--config", file});
  EXPECT_EQ(flags_first.tile_size, 64);
  EXPECT_EQ(flags_first.tiles, 16);

  // A flag turned off on the command line wins over a file's true.
  EXPECT_FALSE(parse({"--config", file, "--half_offset=false"}).half_offset);
}

TEST(RunConfigCli, EveryFieldRoundTripsThroughToml) {
  const RunConfig original = unusual_config();
  const std::string text = run_config_toml(original);
  EXPECT_NE(text.find("# slidegrade "), std::string::npos) << text;
  TempFolder folder;
  const RunConfig read_back = read_run_config(folder.write("config.toml", text));
  expect_equal(original, read_back);
  EXPECT_TRUE(run_config_differences(original, read_back).empty());

  // The defaults too, and every key is written, in RunConfig's order.
  const RunConfig defaults;
  expect_equal(defaults, read_run_config(folder.write("defaults.toml", run_config_toml(defaults))));
  const std::string defaults_text = run_config_toml(defaults);
  EXPECT_LT(defaults_text.find("\ndata = "), defaults_text.find("\ntiles = "));
  EXPECT_LT(defaults_text.find("\ntiles = "), defaults_text.find("\nlog_every = "));
  EXPECT_NE(defaults_text.find("\nlr = 0.0003\n"), std::string::npos) << defaults_text;  // shortest exact text
}

TEST(RunConfigCli, TomlValueForms) {
  TempFolder folder;
  const RunConfig config = read_run_config(folder.write("forms.toml",
                                                        "data = 'C:\\literal\\path'\n"
                                                        "  out = \"caf\\u00e9\"   \n"
                                                        "seed = 1_000\n"
                                                        "lr = 3E-4\n"
                                                        "width = 1\n"  // an integer for a float key
                                                        "\"arch\" = \"b3\"\n"));
  EXPECT_EQ(config.data, "C:\\literal\\path");
  EXPECT_EQ(config.out, "caf\xc3\xa9");
  EXPECT_EQ(config.seed, 1000u);
  EXPECT_EQ(config.lr, 3e-4);
  EXPECT_EQ(config.width, 1.0);
  EXPECT_EQ(config.arch, "b3");
}

TEST(RunConfigCli, ShippedConfigsParseAndValidate) {
  const fs::path configs = repo_root() / "configs";
  int count = 0;
  for (const char* name : {"b0_36x256.toml", "b1_64x192.toml", "demo.toml"}) {
    SCOPED_TRACE(name);
    const fs::path path = configs / name;
    ASSERT_TRUE(fs::exists(path)) << path;
    RunConfig config = parse({"--config", path.string(), "--data", "/data/panda"});
    EXPECT_NO_THROW(validate_run_config(config));
    ++count;
  }
  EXPECT_EQ(count, 3);
  const RunConfig b0 = read_run_config((configs / "b0_36x256.toml").string());
  EXPECT_EQ(b0.arch, "b0");
  EXPECT_EQ(b0.tiles, 36);
  EXPECT_EQ(b0.tile_size, 256);
  EXPECT_EQ(b0.level, 1);
  const RunConfig b1 = read_run_config((configs / "b1_64x192.toml").string());
  EXPECT_EQ(b1.arch, "b1");
  EXPECT_EQ(b1.tiles, 64);
  EXPECT_EQ(b1.tile_size, 192);
  EXPECT_EQ(b1.pooling, "gem");
}

TEST(RunConfigCli, ReadmeListsEveryKey) {
  std::ifstream file(repo_root() / "configs" / "README.md");
  ASSERT_TRUE(file) << "configs/README.md";
  const std::string readme((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  std::istringstream toml(run_config_toml(RunConfig{}));
  int keys = 0;
  for (std::string line; std::getline(toml, line);) {
    if (line.empty() || line[0] == '#') continue;
    const std::string key = line.substr(0, line.find(' '));
    EXPECT_NE(readme.find("`" + key + "`"), std::string::npos) << key << " is not in configs/README.md";
    ++keys;
  }
  EXPECT_GT(keys, 40);
}

TEST(RunConfigCli, UnknownKeyInFileNamesKeyAndFile) {
  TempFolder folder;
  const std::string file = folder.write("typo.toml", "tiles = 16\ntile_sise = 128\n");
  const std::string message = parse_error({"--config", file});
  EXPECT_NE(message.find("tile_sise"), std::string::npos) << message;
  EXPECT_NE(message.find(file), std::string::npos) << message;
  EXPECT_NE(message.find("line 2"), std::string::npos) << message;
  EXPECT_NE(message.find("did you mean tile_size"), std::string::npos) << message;

  // read_run_config says the same as an sg::Error.
  try {
    read_run_config(file);
    ADD_FAILURE() << "read_run_config accepted an unknown key";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tile_sise"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << e.what();
  }
  // The file's keys are the underscore names only; --config itself is not a key.
  EXPECT_NE(parse_error({"--config", folder.write("dash.toml", "tile-size = 128\n")}).find("did you mean tile_size"),
            std::string::npos);
  EXPECT_NE(
      parse_error({"--config", folder.write("config.toml", "config = \"x.toml\"\n")}).find("unknown key 'config'"),
      std::string::npos);
}

TEST(RunConfigCli, BadFileSyntaxAndTypesAreNamed) {
  TempFolder folder;
  struct Case {
    std::string text, expected;
  };
  const std::vector<Case> cases = {
      {"tiles = \"36\"\n", "key 'tiles' needs an integer, got \"36\""},
      {"tiles = 3.5\n", "key 'tiles' needs an integer"},
      {"lr = \"fast\"\n", "key 'lr' needs a number"},
      {"half_offset = 1\n", "key 'half_offset' needs true or false"},
      {"arch = b0\n", "strings need quotes"},
      {"data = \"unterminated\n", "unterminated string"},
      {"[train]\ntiles = 4\n", "tables"},
      {"tiles = 4\ntiles = 5\n", "set twice"},
      {"tiles 4\n", "expected '='"},
      {"tiles = 99999999999\n", "tiles"},
      {"seed = -1\n", "non-negative"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    const std::string file = folder.write("bad.toml", c.text);
    const std::string message = parse_error({"--config", file});
    EXPECT_NE(message.find(c.expected), std::string::npos) << message;
    EXPECT_NE(message.find(file), std::string::npos) << message;
  }
  EXPECT_NE(parse_error({"--config", (folder.path() / "missing.toml").string()}).find("missing.toml"),
            std::string::npos);
}

TEST(RunConfigCli, BadEnumerationValuesListTheAllowedOnes) {
  struct Case {
    std::string key, value;
    std::vector<std::string> allowed;
  };
  const std::vector<Case> cases = {
      {"precision", "f8", {"f32", "f16", "bf16"}},
      {"head", "ordinal", {"softmax", "binned", "regression"}},
      {"optimizer", "adam", {"adamw", "sgd"}},
      {"schedule", "linear", {"cosine", "constant", "step", "cosine_restarts"}},
      {"augment", "heavy", {"default", "light", "none"}},
      {"arch", "b9", {"b0", "b7", "lite0", "lite4"}},
      {"pooling", "mean", {"avg", "max", "gem", "avgmax"}},
      {"activation", "gelu", {"swish", "relu6", "mish"}},
      {"checkpointing", "sometimes", {"none", "every", "every:K", "blocks:I,J", "auto"}},
      {"device", "tpu", {"auto", "cpu", "cuda", "cuda:N"}},
      {"memory_limit", "lots", {"4GiB", "512MiB"}},
  };
  TempFolder folder;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.key);
    // On the command line, in a file, and in validate_run_config (a RunConfig built in code).
    const std::string flag_message = parse_error({"--" + c.key, c.value});
    const std::string file = folder.write("bad.toml", c.key + " = \"" + c.value + "\"\n");
    const std::string file_message = parse_error({"--config", file});
    EXPECT_NE(file_message.find(file), std::string::npos) << file_message;
    RunConfig config = valid_config();
    if (c.key == "precision") config.precision = c.value;
    if (c.key == "head") config.head = c.value;
    if (c.key == "optimizer") config.optimizer = c.value;
    if (c.key == "schedule") config.schedule = c.value;
    if (c.key == "augment") config.augment = c.value;
    if (c.key == "arch") config.arch = c.value;
    if (c.key == "pooling") config.pooling = c.value;
    if (c.key == "activation") config.activation = c.value;
    if (c.key == "checkpointing") config.checkpointing = c.value;
    if (c.key == "device") config.device = c.value;
    if (c.key == "memory_limit") config.memory_limit = c.value;
    const std::string validate_message = validation_error(config);
    EXPECT_EQ(validate_message.rfind(c.key + ": ", 0), 0u) << validate_message;
    for (const std::string* message : {&flag_message, &file_message, &validate_message}) {
      EXPECT_NE(message->find(c.key), std::string::npos) << *message;
      EXPECT_NE(message->find("'" + c.value + "'"), std::string::npos) << *message;
      for (const std::string& allowed : c.allowed) EXPECT_NE(message->find(allowed), std::string::npos) << *message;
    }
  }
  // The accepted forms are accepted.
  for (const char* value : {"none", "every", "every:3", "blocks:0,2", "auto"})
    EXPECT_EQ(parse({"--checkpointing", value}).checkpointing, value);
  for (const char* value : {"auto", "cpu", "cuda", "cuda:3"}) EXPECT_EQ(parse({"--device", value}).device, value);
  EXPECT_EQ(parse({"--memory_limit", "512MiB"}).memory_limit, "512MiB");
  EXPECT_EQ(parse({"--activation", ""}).activation, "");
}

// Every spelling of a word key's table goes on the command line and in a --config file alike,
// and both store the canonical word (what config.toml holds and --resume compares).
TEST(RunConfigCli, FlagsAndFilesTakeEveryWordOfTheTables) {
  TempFolder folder;
  const auto check = [&](const std::string& key, const auto& table, auto field) {
    for (const auto& entry : table.words) {
      std::vector<std::string_view> spellings{entry.word};
      for (std::string_view alias : entry.aliases)
        if (!alias.empty()) spellings.push_back(alias);
      for (std::string_view spelling : spellings) {
        SCOPED_TRACE(key + " = " + std::string(spelling));
        const std::string text(spelling);
        EXPECT_EQ(parse({"--" + key, text}).*field, entry.word);
        const std::string file = folder.write(key + ".toml", key + " = \"" + text + "\"\n");
        EXPECT_EQ(parse({"--config", file}).*field, entry.word);
      }
    }
    const std::string flag_message = parse_error({"--" + key, "nonsense"});
    const std::string file_message =
        parse_error({"--config", folder.write(key + ".toml", key + " = \"nonsense\"\n")});
    for (const std::string& word : allowed_words(table)) {
      EXPECT_NE(flag_message.find(word), std::string::npos) << flag_message;
      EXPECT_NE(file_message.find(word), std::string::npos) << file_message;
    }
  };
  check("precision", nn::kPrecisionWords, &RunConfig::precision);
  check("head", grading::kHeadKindWords, &RunConfig::head);
  check("optimizer", nn::kOptimizerWords, &RunConfig::optimizer);
  check("schedule", kLrScheduleWords, &RunConfig::schedule);
  check("augment", kAugmentPresetWords, &RunConfig::augment);
  check("pooling", nn::kHeadPoolingWords, &RunConfig::pooling);
  check("activation", kActivationWords, &RunConfig::activation);
  EXPECT_EQ(parse({"--precision", "HALF"}).precision, "f16");
  EXPECT_EQ(parse({"--arch", "efficientnet-B3"}).arch, "b3");
}

TEST(RunConfigCli, CrossFieldErrorsNameTheKey) {
  EXPECT_NO_THROW(validate_run_config(valid_config()));
  struct Case {
    std::function<void(RunConfig&)> change;
    std::string key;
  };
  const std::vector<Case> cases = {
      {[](RunConfig& c) { c.data.clear(); }, "data"},
      {[](RunConfig& c) { c.folds = 1, c.fold = 0; }, "folds"},
      {[](RunConfig& c) { c.fold = 5; }, "fold"},
      {[](RunConfig& c) { c.fold = -1; }, "fold"},
      {[](RunConfig& c) { c.train_fraction = 0; }, "train_fraction"},
      {[](RunConfig& c) { c.train_fraction = 1.5; }, "train_fraction"},
      {[](RunConfig& c) { c.tiles = 0; }, "tiles"},
      {[](RunConfig& c) { c.tile_size = 4; }, "tile_size"},
      {[](RunConfig& c) { c.level = -1; }, "level"},
      {[](RunConfig& c) { c.mosaic_rows = 2, c.mosaic_cols = 2; }, "mosaic_rows"},
      {[](RunConfig& c) { c.batch = 0; }, "batch"},
      {[](RunConfig& c) { c.accumulate = 0; }, "accumulate"},
      {[](RunConfig& c) { c.epochs = 0; }, "epochs"},
      {[](RunConfig& c) { c.lr = 0; }, "lr"},
      {[](RunConfig& c) { c.lr = -1e-3; }, "lr"},
      {[](RunConfig& c) { c.warmup_epochs = 10; }, "warmup_epochs"},
      {[](RunConfig& c) { c.min_lr = 1; }, "min_lr"},
      {[](RunConfig& c) { c.momentum = 1; }, "momentum"},
      {[](RunConfig& c) { c.label_smoothing = 0.1; }, "label_smoothing"},  // binned head
      {[](RunConfig& c) { c.dropout = 1; }, "dropout"},
      {[](RunConfig& c) { c.queue_depth = 0; }, "queue_depth"},
  };
  for (const Case& c : cases) {
    RunConfig config = valid_config();
    c.change(config);
    const std::string message = validation_error(config);
    EXPECT_EQ(message.rfind(c.key + " ", 0), 0u) << c.key << ": " << message;
  }
  // Fixed: fold out of range is fine with all_folds; label smoothing with softmax.
  RunConfig all = valid_config();
  all.fold = 9, all.all_folds = true;
  EXPECT_NO_THROW(validate_run_config(all));
  RunConfig smoothing = valid_config();
  smoothing.head = "softmax", smoothing.label_smoothing = 0.1;
  EXPECT_NO_THROW(validate_run_config(smoothing));
  EXPECT_NE(validation_error([] {
              RunConfig c = valid_config();
              c.label_smoothing = 0.1;
              return c;
            }())
                .find("softmax"),
            std::string::npos);
}

TEST(RunConfigCli, DifferencesReportComputingKeysOnly) {
  const RunConfig saved = valid_config();
  RunConfig given = saved;
  EXPECT_TRUE(run_config_differences(saved, given).empty());
  // Where and how fast: not differences.
  given.out = "elsewhere";
  given.device = "cpu";
  given.loader_threads = 9;
  given.queue_depth = 5;
  given.log_every = 10;
  given.epochs = 40;
  given.cache_dir = "/cache";
  given.tile_cache = false;
  EXPECT_TRUE(run_config_differences(saved, given).empty());
  // What the run computes: differences, one line each, in RunConfig order.
  given.tile_size = 128;
  given.lr = 1e-3;
  given.head = "softmax";
  given.seed = 7;
  const std::vector<std::string> differences = run_config_differences(saved, given);
  ASSERT_EQ(differences.size(), 4u);
  EXPECT_EQ(differences[0], "tile_size: 256 -> 128");
  EXPECT_EQ(differences[1], "head: \"binned\" -> \"softmax\"");
  EXPECT_EQ(differences[2], "lr: 0.0003 -> 0.001");
  EXPECT_EQ(differences[3], "seed: 0 -> 7");
}

TEST(RunConfigCli, HelpListsKeysDefaultsAndAllowedValues) {
  CLI::App app{"train"};
  RunConfig config;
  add_run_config_options(app, config);
  const std::string help = app.help();
  for (const char* text : {"--config", "--tile_size", "256", "f32|f16|bf16", "softmax|binned|regression",
                           "none|every|every:K|blocks:I,J|auto", "--tile-size = --tile_size"})
    EXPECT_NE(help.find(text), std::string::npos) << text << "\n" << help;
}

// parse_run_config_arguments: the command's parser, with its parse errors as UsageError (the
// Python package's train() passes its keys through it).
TEST(RunConfigCli, ParseArgumentsAsTheCommandDoes) {
  TempFolder folder;
  const std::string file = folder.write("run.toml", "tiles = 16\nbatch = 8\n");
  const RunConfig config = parse_run_config_arguments({"--config", file, "--batch=2", "--tile_size=64"});
  EXPECT_EQ(config.tiles, 16);
  EXPECT_EQ(config.batch, 2);
  EXPECT_EQ(config.tile_size, 64);
  try {
    parse_run_config_arguments({"--tile_sise=64"});
    FAIL() << "an unknown flag was accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("tile_sise"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_run_config_arguments({"--precision=f8"}), UsageError);
}

// resume_run_config: the saved config.toml under the flags given beside --resume.
TEST(RunConfigCli, ResumeReadsTheSavedConfigUnderTheFlags) {
  TempFolder folder;
  RunConfig saved;
  saved.tiles = 9;
  saved.epochs = 3;
  folder.write("config.toml", run_config_toml(saved));
  const RunConfig config = resume_run_config(folder.path().string(), {"--epochs=5"});
  EXPECT_EQ(config.tiles, 9);
  EXPECT_EQ(config.epochs, 5);
  try {
    resume_run_config((folder.path() / "nothing").string(), {});
    FAIL() << "a folder without config.toml was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a run folder (no config.toml) to resume"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace sg::train
