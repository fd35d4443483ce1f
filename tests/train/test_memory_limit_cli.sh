#!/bin/sh
# --memory-limit through the command line (core/allocator.h): a cap too small for a training step,
# a grading pass or a forward pass fails with exit 1 and a message that names what was running (the
# training step, the slide and view, the images), the request and the cap, with advice; a cap that
# is large enough lets the same run finish and the log reports the peak against the cap.
#   tests/train/test_memory_limit_cli.sh path/to/slidegrade
set -u
SG=$1
. "$(dirname "$0")/../support/cli_test.sh"

"$SG" synth --out "$DIR/panda" --slides 12 --test-slides 2 --seed 3 --width 1024 --height 512 >/dev/null 2>&1 ||
  fail "synth"
# The tiny run of test_train_cli.sh: 128x128 mosaics, a B0 at width 0.25 and depth 0.34, batch 4.
set -- --data "$DIR/panda" --folds 3 --fold 0 --tiles 16 --tile_size 32 --level 1 --arch b0 --width 0.25 \
  --depth 0.34 --batch 4 --epochs 1 --warmup_epochs 0 --seed 5 --device cpu

# A cap the step fits in: the run finishes; the limit and the peak against it are in the log.
expect 0 "memory on cpu: limit 256.00 MiB (--memory-limit" "$SG" train "$@" --memory-limit 256MiB --out "$DIR/fits"
PEAK=$(grep -o "memory on cpu: peak .* of the 256.00 MiB limit ([0-9]*%)" "$DIR/out")
[ -n "$PEAK" ] || { fail "no peak line against the limit"; cat "$DIR/out"; }
PERCENT=$(echo "$PEAK" | sed 's/.*limit (\([0-9]*\)%)$/\1/')
[ "${PERCENT:-999}" -le 100 ] || fail "peak over the limit: $PEAK"
[ -s "$DIR/fits/best.h5" ] || fail "no best.h5 from the run under a sufficient cap"

# A cap the weights fit in but a training step does not: exit 1, the step, the bytes, the cap, the
# advice (checkpointing by its option name, the batch), once, and not as an internal error. (The
# underscore spelling, the config key's, is the same option.)
expect 1 "during training step 1 (epoch 1 of 1, batch 1/" "$SG" train "$@" --memory_limit 6MiB --out "$DIR/small"
for text in "slidegrade: error: out of memory on cpu during training step 1" " bytes)" "limit 6.00 MiB (--memory-limit)" \
  "--checkpointing every" "a smaller --batch"; do
  grep -qF -- "$text" "$DIR/out" || { fail "train OOM message lacks '$text'"; cat "$DIR/out"; }
done
! grep -qF "internal error" "$DIR/out" || { fail "train OOM reported as an internal error"; cat "$DIR/out"; }
[ "$(grep -c "out of memory" "$DIR/out")" -eq 1 ] || { fail "OOM reported more than once"; cat "$DIR/out"; }

# grade: a cap the model fits in but a forward pass does not names the slide and the view.
MODEL="$DIR/fits/best.h5"
expect 0 "memory on cpu: peak" "$SG" grade --models "$MODEL" --data "$DIR/panda" --device cpu --memory-limit 256MiB \
  --out "$DIR/submission.csv"
expect 1 "limit 6.00 MiB (--memory-limit)" "$SG" grade --models "$MODEL" --data "$DIR/panda" --device cpu \
  --tta flips --memory-limit 6MiB --out "$DIR/small.csv"
grep -qE "during grading slide [^ ]+, view 1 of 4" "$DIR/out" || { fail "grade OOM names no slide and view"; cat "$DIR/out"; }
grep -qF "a smaller --batch" "$DIR/out" || { fail "grade OOM gives no advice"; cat "$DIR/out"; }
expect 1 "during loading the model $MODEL" "$SG" grade --models "$MODEL" --data "$DIR/panda" --device cpu \
  --memory-limit 64KiB --out "$DIR/tiny.csv"
grep -qF "weights alone do not fit" "$DIR/out" || { fail "grade OOM while loading gives the batch advice"; cat "$DIR/out"; }

# forward: a float32 .npy [2, 128, 128, 3] of zeros (10 bytes of magic, version and length, a
# 118-byte header: 128 bytes before the data).
{
  printf '\223NUMPY\001\000\166\000'
  printf "%-117s\n" "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 128, 128, 3), }"
  head -c 393216 /dev/zero
} >"$DIR/x.npy"
expect 0 "memory on cpu: peak" "$SG" forward --weights "$MODEL" --input "$DIR/x.npy" --output "$DIR/y.npy" \
  --device cpu --memory-limit 256MiB
expect 1 "during forward of images 1..2 of 2 (128x128)" "$SG" forward --weights "$MODEL" --input "$DIR/x.npy" \
  --output "$DIR/y2.npy" --device cpu --memory-limit 3MiB
grep -qF "limit 3.00 MiB (--memory-limit)" "$DIR/out" || { fail "forward OOM names no limit"; cat "$DIR/out"; }
expect 2 "unknown unit" "$SG" forward --weights "$MODEL" --input "$DIR/x.npy" --output "$DIR/y3.npy" --device cpu \
  --memory-limit 3parsecs

[ $FAILED -eq 0 ] && echo "memory_limit_cli: all passed"
exit $FAILED
