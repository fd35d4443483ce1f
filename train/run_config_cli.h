#pragma once
// RunConfig <-> command line and TOML files, with CLI11 (a well-kept parser from Debian; its
// config-file reader takes TOML). Every RunConfig field is a flag --<field name> and a key of the
// same name in the file given with --config; flags override the file.
#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "train/run_config.h"

namespace sg::train {

// Registers --config FILE and one option per RunConfig field on `app` (a subcommand). An unknown
// key in the file or a value of the wrong type is a parse error naming the key (and the file).
void add_run_config_options(CLI::App& app, RunConfig& config);

// A RunConfig from `slidegrade train`'s arguments without the program and subcommand names
// ("--key=value", "--config", "FILE", ...), parsed as the command parses them (the Python package
// passes its dict and keyword arguments through here). A CLI11 parse error (an unknown flag or key,
// a bad value or word) becomes sg::UsageError with CLI11's message. Values are checked by
// validate_run_config, which the trainer runs.
RunConfig parse_run_config_arguments(const std::vector<std::string>& arguments);

// `--resume RUNDIR`'s config: RUNDIR/config.toml as the run saved it, under `flag_arguments`
// ("--key=value": the flags given beside --resume). Throws sg::Error naming RUNDIR when it has no
// config.toml, or naming the file when it cannot be read.
RunConfig resume_run_config(const std::string& run_dir, const std::vector<std::string>& flag_arguments);

// Checks every value after parsing: ranges, and every word key with the flag's own validator, the
// allowed values listed in the message ("precision: unknown precision 'f8' (expected f32, f16 or
// bf16)"). Throws sg::UsageError (core/usage_error.h: exit status 2).
void validate_run_config(const RunConfig& config);

// The resolved config as TOML, every key, in RunConfig's order, with a header comment;
// read_run_config reads it back to an equal RunConfig (errors name the file and the key).
std::string run_config_toml(const RunConfig& config);
RunConfig read_run_config(const std::string& path);

// The keys whose values differ and that change what a run computes (everything except out,
// device, loader_threads, queue_depth, log_every, epochs, cache_dir, tile_cache): `--resume`
// refuses a run folder whose config differs in any of them. "key: a -> b" per difference.
std::vector<std::string> run_config_differences(const RunConfig& saved, const RunConfig& given);

}  // namespace sg::train
