#!/bin/sh
# `slidegrade import --format keras` and `slidegrade inspect` through the command line: exit status
# 0 on a good file, non-zero with one message naming the file on bad input, never a crash.
#   tests/weights/test_keras_cli.sh path/to/slidegrade path/to/tests/golden/data
set -u
SG=$1
DATA=$2
. "$(dirname "$0")/../support/cli_test.sh"

expect 0 "efficientnet-b0 (inferred from the shapes)" "$SG" import --format keras "$DATA/keras_real_b0.skeleton.h5" "$DIR/b0.h5"
expect 0 "format: slidegrade weights" "$SG" inspect "$DIR/b0.h5"
expect 0 "unplaced tensors: 0" "$SG" inspect "$DIR/b0.h5"
expect 0 "checksum: crc32 0x" "$SG" inspect "$DIR/b0.h5"
expect 0 "checksum: none" "$SG" inspect "$DATA/keras_real_b1.skeleton.h5"
cp "$DIR/b0.h5" "$DIR/damaged.h5"
printf '\001\002' | dd of="$DIR/damaged.h5" bs=1 seek=100000 conv=notrunc 2>/dev/null
expect 1 "$DIR/damaged.h5: checksum mismatch (stored crc32 0x" "$SG" inspect "$DIR/damaged.h5"
head -c 100000 "$DIR/b0.h5" >"$DIR/cut.h5"
expect 1 "$DIR/cut.h5: truncated: 100000 bytes on disk" "$SG" inspect "$DIR/cut.h5"
expect 0 "format: Keras legacy HDF5" "$SG" inspect "$DATA/keras_real_b1.skeleton.h5"
expect 0 "arch: efficientnet-b1" "$SG" inspect "$DATA/keras_real_b1.skeleton.h5"
expect 0 "efficientnet-b1 (inferred from the shapes)" "$SG" import --format keras "$DATA/keras_real_b1.skeleton.h5" "$DIR/b1.h5"
expect 0 "format: Keras 3 .weights.h5 (layers under /layers)" "$SG" inspect "$DATA/keras3_real_b0.skeleton.weights.h5"
expect 0 "unplaced tensors: 0" "$SG" inspect "$DATA/keras3_real_b0.skeleton.weights.h5"
expect 0 "Keras 3 .weights.h5, 132 layers with weights under /layers" "$SG" import --format keras \
  "$DATA/keras3_real_b0.skeleton.weights.h5" "$DIR/b0_keras3.h5"
expect 1 "keras_real_b1.skeleton.h5: 128 Keras weight(s) match no tensor of efficientnet-b0, first in layer 'block1b_dwconv'" \
  "$SG" import --format keras "$DATA/keras_real_b1.skeleton.h5" "$DIR/x.h5" --arch b0
echo "not HDF5" >"$DIR/junk.h5"
expect 1 "$DIR/junk.h5: not an HDF5 file" "$SG" import --format keras "$DIR/junk.h5" "$DIR/y.h5"
expect 1 "$DIR/junk.h5: not an HDF5 file" "$SG" inspect "$DIR/junk.h5"
head -c 300000 "$DATA/keras_real_b0.skeleton.h5" >"$DIR/truncated.h5"
expect 1 "$DIR/truncated.h5: HDF5 cannot open the file: it is truncated" "$SG" import --format keras "$DIR/truncated.h5" "$DIR/z.h5"
expect 1 "$DIR/truncated.h5: HDF5 cannot open the file: it is truncated" "$SG" inspect "$DIR/truncated.h5"

# Files the fuzzers found (fuzz/README.md) that make Debian's libhdf5 1.10.8 loop forever, read
# past a buffer or ask for exabytes. import and inspect read them in a child process: slidegrade
# itself ends with exit status 1 and a message naming the file, never a signal, never a hang.
FOUND="$(dirname "$0")/../data/fuzz_regressions/hdf5"
export SLIDEGRADE_READ_TIME_LIMIT=5
for f in weights_global_heap_loop keras_global_heap_loop keras3_loop; do
  expect 1 "inspect $FOUND/$f.h5: did not finish within 5 s (killed)" "$SG" inspect "$FOUND/$f.h5"
done
expect 1 "import $FOUND/keras_global_heap_loop.h5: did not finish within 5 s" \
  "$SG" import --format keras "$FOUND/keras_global_heap_loop.h5" "$DIR/w.h5"
for f in weights_global_heap_overlap weights_global_heap_overflow weights_huge_allocation keras_huge_allocation \
  keras3_global_heap_segv keras3_global_heap_overlap keras3_huge_allocation; do
  for command in "inspect $FOUND/$f.h5" "import --format keras $FOUND/$f.h5 $DIR/w.h5"; do
    # shellcheck disable=SC2086  # the command is a list of words
    "$SG" $command >"$DIR/out" 2>&1
    status=$?
    # What the library does with the damage differs between builds (a SIGSEGV here, an ASan report
    # in the sanitizer build, a refusal elsewhere); slidegrade's own answer does not.
    { [ "$status" -eq 1 ] && grep -qF "$FOUND/$f.h5" "$DIR/out"; } ||
      { fail "$command -> exit $status (want 1 and a message naming the file)"; cat "$DIR/out"; }
  done
done
unset SLIDEGRADE_READ_TIME_LIMIT
[ ! -e "$DIR/x.h5" ] && [ ! -e "$DIR/y.h5" ] && [ ! -e "$DIR/z.h5" ] && [ ! -e "$DIR/w.h5" ] ||
  { echo "FAIL: a failed import left an output file"; FAILED=1; }
[ "$FAILED" -eq 0 ] && echo "keras CLI: all passed"
exit "$FAILED"
