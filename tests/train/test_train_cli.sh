#!/bin/sh
# `slidegrade train` through the command line: a run killed with SIGKILL in the middle of epoch 2
# and resumed with --resume ends with the same weights (bit for bit) and metrics.csv as an
# uninterrupted run; bad input fails with a clear message and a non-zero exit.
#   tests/train/test_train_cli.sh path/to/slidegrade path/to/sg_tests
set -u
SG=$1
TESTS=$2
. "$(dirname "$0")/../support/cli_test.sh"

"$SG" synth --out "$DIR/panda" --slides 36 --test-slides 0 --seed 3 --width 1024 --height 512 >/dev/null 2>&1 || fail "synth"
# 16 tiles of 32 px at level 1 (128x128 mosaics), a B0 at width 0.25 and depth 0.34, batch 4:
# 24 training slides, 3 epochs of 6 steps.
set -- --folds 3 --tiles 16 --tile_size 32 --level 1 --arch b0 --width 0.25 \
  --depth 0.34 --batch 4 --epochs 3 --seed 5 --device cpu --log_every 1
GOOD="--data $DIR/panda --fold 0 --lr 1e-3"
"$SG" train "$@" $GOOD --out "$DIR/whole" >"$DIR/whole.log" 2>&1 || { fail "uninterrupted run"; cat "$DIR/whole.log"; }
grep -qE "^fold 0: best validation QWK" "$DIR/whole.log" || { fail "best QWK line"; cat "$DIR/whole.log"; }
grep -qE "^fold 0: device cpu: [0-9.]+ images/s in training" "$DIR/whole.log" || { fail "time report"; cat "$DIR/whole.log"; }
grep -qF "the device waited for data" "$DIR/whole.log" || { fail "device wait line"; cat "$DIR/whole.log"; }
for f in curves.svg curves.png confusion.svg confusion.png; do [ -s "$DIR/whole/$f" ] || fail "no $f"; done
[ "$(wc -l <"$DIR/whole/metrics.csv")" -eq 4 ] || fail "metrics.csv has $(wc -l <"$DIR/whole/metrics.csv") lines, want 4"

# The same run, killed with SIGKILL after the first batch of epoch 2, then resumed.
"$SG" train "$@" $GOOD --out "$DIR/parts" >"$DIR/parts.log" 2>&1 &
PID=$!
i=0
while ! grep -qE "^epoch 2/3 .*1/6 batches" "$DIR/parts.log" 2>/dev/null; do
  i=$((i + 1))
  if [ $i -gt 6000 ] || ! kill -0 $PID 2>/dev/null; then break; fi
  sleep 0.01
done
kill -9 $PID 2>/dev/null
wait $PID 2>/dev/null
[ -f "$DIR/parts/last.h5" ] || fail "no last.h5 after epoch 1"
ROWS=$(wc -l <"$DIR/parts/metrics.csv")
[ "$ROWS" -eq 2 ] || fail "killed run's metrics.csv has $ROWS lines, want 2 (the kill must land in epoch 2)"
expect 0 "resuming fold 0 from $DIR/parts/last.h5 after epoch 1" "$SG" train --resume "$DIR/parts"
SLIDEGRADE_COMPARE_RUN_A="$DIR/whole" SLIDEGRADE_COMPARE_RUN_B="$DIR/parts" \
  "$TESTS" --gtest_filter=TrainerRunFolders.SameWeightsAndMetrics >"$DIR/compare" 2>&1 ||
  { fail "resumed run differs from the uninterrupted one"; cat "$DIR/compare"; }
grep -qF "[  PASSED  ] 1 test" "$DIR/compare" || { fail "comparison did not run"; cat "$DIR/compare"; }

# Bad input.
mkdir -p "$DIR/empty"
expect 1 "no train.csv in the data folder" "$SG" train "$@" --data "$DIR/empty" --fold 0 --out "$DIR/bad1"
expect 2 "fold 3: expected 0..2" "$SG" train "$@" --data "$DIR/panda" --fold 3 --out "$DIR/bad2"
expect 2 "belongs to another config" "$SG" train --lr 5e-4 --resume "$DIR/parts"
expect 2 "lr: 0.001 -> 0.0005" "$SG" train --lr 5e-4 --resume "$DIR/parts"
expect 2 "belongs to another config" "$SG" train "$@" --data "$DIR/panda" --fold 1 --lr 1e-3 --resume "$DIR/parts"
expect 1 "not a run folder" "$SG" train --resume "$DIR/nothing"

# --pretrained: the uninterrupted run's best.h5 (a binned head, 5 outputs) starts a softmax run
# (6 outputs): the backbone is loaded, the classifier skipped with both shapes and made new.
expect 0 "skipped 2:" "$SG" train --folds 3 --tiles 16 --tile_size 32 --level 1 --arch b0 --width 0.25 \
  --depth 0.34 --batch 4 --epochs 1 --warmup_epochs 0 --seed 5 --device cpu $GOOD --head softmax \
  --pretrained "$DIR/whole/best.h5" --out "$DIR/pretrained"
grep -qE "^loaded [0-9]+ tensors from $DIR/whole/best.h5" "$DIR/out" || { fail "loaded line"; cat "$DIR/out"; }
grep -qF "classifier.weight: file has [5, " "$DIR/out" || { fail "skipped classifier named with its shapes"; cat "$DIR/out"; }
grep -qF "new (freshly initialised) 2:" "$DIR/out" || { fail "new tensors listed"; cat "$DIR/out"; }
expect 1 "$DIR/missing.h5" "$SG" train "$@" $GOOD --pretrained "$DIR/missing.h5" --out "$DIR/bad3"

[ $FAILED -eq 0 ] && echo "train_cli: all passed"
exit $FAILED
