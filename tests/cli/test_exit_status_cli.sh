#!/bin/sh
# slidegrade's exit status convention (cli/main.cpp, README "Exit status"): 0 success, 1 a failure
# while running, 2 a usage or configuration error; and that the flags, the --config keys, `plan` and
# `bench` take the same option words (core/option_words.h).
#   tests/cli/test_exit_status_cli.sh path/to/slidegrade
set -u
SG=$1
. "$(dirname "$0")/../support/cli_test.sh"

# 0: help, which states the convention.
expect 0 "Exit status: 0 success; 1 a failure while running" "$SG" --help
expect 0 "2 a usage or configuration error" "$SG" --help

# 2: usage and configuration errors, before anything runs.
expect 2 "--no-such-flag" "$SG" train --no-such-flag
expect 2 "A subcommand is required" "$SG"
expect 2 "$DIR/missing.toml" "$SG" train --config "$DIR/missing.toml" --data "$DIR"
printf 'tile_sise = 128\n' >"$DIR/unknown_key.toml"
expect 2 "unknown key 'tile_sise' (did you mean tile_size?)" "$SG" train --config "$DIR/unknown_key.toml" --data "$DIR"
printf 'tiles = "many"\n' >"$DIR/bad_type.toml"
expect 2 "key 'tiles' needs an integer" "$SG" train --config "$DIR/bad_type.toml" --data "$DIR"
# An unknown word: the message lists the allowed ones, on every path that reads the word.
WORDS="unknown precision 'f8' (expected f32, f16 or bf16)"
expect 2 "$WORDS" "$SG" train --precision f8 --data "$DIR"
printf 'precision = "f8"\n' >"$DIR/f8.toml"
expect 2 "$WORDS" "$SG" train --config "$DIR/f8.toml" --data "$DIR"
expect 2 "$WORDS" "$SG" plan --precision f8
expect 2 "$WORDS" "$SG" bench --precision f8
expect 2 "$WORDS" "$SG" info --precision f8
expect 2 "unknown TTA mode 'rot' (expected none, flips or dihedral)" "$SG" grade --models "$DIR/m.h5" --data "$DIR" --tta rot
expect 2 "unknown device 'tpu' (expected cpu, cuda, cuda:N or auto)" "$SG" forward --weights "$DIR/w.h5" \
  --input "$DIR/x.npy" --output "$DIR/y.npy" --device tpu
expect 2 "unknown optimizer 'adam' (expected adamw or sgd)" "$SG" plan --optimizer adam
expect 2 "unknown checkpoint policy 'sometimes'" "$SG" bench --checkpoint sometimes
expect 2 "unknown architecture 'b9'" "$SG" summary --arch b9
expect 2 "unknown ONNX input layout 'nhcw' (expected nhwc or nchw)" "$SG" export "$DIR/w.h5" "$DIR/w.onnx" --layout nhcw
expect 2 "unknown ONNX precision 'bf16' (expected f32 or f16)" "$SG" export "$DIR/w.h5" "$DIR/w.onnx" --precision bf16
expect 2 "--batch '0': expected dynamic or a positive image count" "$SG" export "$DIR/w.h5" "$DIR/w.onnx" --batch 0
expect 2 "--opset" "$SG" export "$DIR/w.h5" "$DIR/w.onnx" --opset 12
expect 2 "unknown --format 'tflite' (expected onnx)" "$SG" export --format tflite "$DIR/w.h5" "$DIR/w.onnx"
# Bad argument values.
expect 2 "--tiles" "$SG" tile --slide "$DIR/s.tiff" --tiles 0 --out "$DIR/m.png"
expect 2 "fold 3: expected 0..2" "$SG" train --data "$DIR" --folds 3 --fold 3

# The same words everywhere: each spelling of a precision on plan's and train's flag and in a
# config file (the training then fails at the missing data, status 1: the word was accepted).
for PAIR in f32:f32 fp32:f32 float32:f32 float:f32 F16:f16 half:f16 float16:f16 bf16:bf16 bfloat16:bf16; do
  WORD=${PAIR%:*}
  expect 0 "${PAIR#*:} activations" "$SG" plan --precision "$WORD" --device cpu --sm 61
  expect 1 "$DIR/no_data" "$SG" train --precision "$WORD" --data "$DIR/no_data"
  printf 'precision = "%s"\ndata = "%s"\n' "$WORD" "$DIR/no_data" >"$DIR/word.toml"
  expect 1 "$DIR/no_data" "$SG" train --config "$DIR/word.toml"
done

# 1: failures while running.
expect 1 "$DIR/no_slides" "$SG" grade --models "$DIR/m.h5" --data "$DIR/no_slides"
expect 1 "$DIR/w.h5: no such weight file" "$SG" export "$DIR/w.h5" "$DIR/w.onnx"
printf 'not an HDF5 file\n' >"$DIR/junk.h5"
expect 1 "$DIR/junk.h5: not an HDF5 file" "$SG" inspect "$DIR/junk.h5"

[ $FAILED -eq 0 ] && echo "exit_status_cli: all passed"
exit $FAILED
