#!/bin/sh
# `slidegrade synth` through the command line: it writes the PANDA layout, and OpenSlide's own
# tool reports a slide and a mask as generic-tiff with 3 levels; bad arguments fail with a message.
#   tests/data/test_synth_cli.sh path/to/slidegrade
set -u
SG=$1
. "$(dirname "$0")/../support/cli_test.sh"

"$SG" synth --out "$DIR/panda" --slides 2 --test-slides 1 --seed 3 --width 1024 --height 512 >"$DIR/out" 2>&1 ||
  { fail "slidegrade synth exited $?"; cat "$DIR/out"; }
grep -qF "wrote 2 training slides (with masks) and 1 test slides of 1024x512 px" "$DIR/out" || { fail "summary line"; cat "$DIR/out"; }
for f in train.csv test.csv test_truth.csv; do [ -s "$DIR/panda/$f" ] || fail "$f missing"; done
[ "$(wc -l <"$DIR/panda/train.csv")" -eq 3 ] || fail "train.csv should have a header and 2 rows"
head -n 1 "$DIR/panda/train.csv" | grep -qx "image_id,data_provider,isup_grade,gleason_score" || fail "train.csv header"
head -n 1 "$DIR/panda/test.csv" | grep -qx "image_id,data_provider" || fail "test.csv header"

ID=$(sed -n 2p "$DIR/panda/train.csv" | cut -d, -f1)
for f in "$DIR/panda/train_images/$ID.tiff" "$DIR/panda/train_label_masks/${ID}_mask.tiff"; do
  openslide-show-properties "$f" >"$DIR/props" 2>&1 || { fail "openslide-show-properties $f exited $?"; cat "$DIR/props"; }
  grep -qF "openslide.vendor: 'generic-tiff'" "$DIR/props" || { fail "$f: not generic-tiff"; cat "$DIR/props"; }
  grep -qF "openslide.level-count: '3'" "$DIR/props" || { fail "$f: not 3 levels"; cat "$DIR/props"; }
  grep -qF "openslide.level[2].downsample: '16'" "$DIR/props" || { fail "$f: level 2 downsample"; cat "$DIR/props"; }
done

"$SG" synth --out "$DIR/x" --slides 1 --width 100 >"$DIR/out" 2>&1 && fail "--width 100 accepted"
grep -qF -- "--width" "$DIR/out" || { fail "--width 100: no message naming the option"; cat "$DIR/out"; }
echo "not a directory" >"$DIR/file"
"$SG" synth --out "$DIR/file" --slides 1 --width 512 --height 512 >"$DIR/out" 2>&1
[ $? -eq 1 ] || fail "--out over a file: want exit 1"
grep -qF "$DIR/file/train_images: cannot create the directory" "$DIR/out" || { fail "--out over a file: message"; cat "$DIR/out"; }

[ "$FAILED" -eq 0 ] && echo "synth CLI: all passed"
exit "$FAILED"
