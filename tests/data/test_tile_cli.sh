#!/bin/sh
# `slidegrade tile` through the command line on a synthetic slide: the mosaic PNG, the tiles, the
# mask mosaic; bad slides and bad masks fail with one message naming the file.
#   tests/data/test_tile_cli.sh path/to/slidegrade
set -u
SG=$1
. "$(dirname "$0")/../support/cli_test.sh"
# A PNG's size from its IHDR chunk: bytes 17-24 hold width and height (big-endian).
png_size() { od -An -tu1 -j16 -N8 "$1" | awk '{printf "%dx%d\n", $1*16777216+$2*65536+$3*256+$4, $5*16777216+$6*65536+$7*256+$8}'; }

"$SG" synth --out "$DIR/panda" --slides 2 --test-slides 0 --seed 4 --width 2048 --height 1024 >/dev/null 2>&1 ||
  fail "synth"
ID=$(sed -n 3p "$DIR/panda/train.csv" | cut -d, -f1)
SLIDE="$DIR/panda/train_images/$ID.tiff"
MASK="$DIR/panda/train_label_masks/${ID}_mask.tiff"

expect 0 "level 1 is 512x256 (downsample 4" "$SG" tile --slide "$SLIDE" --level 1 --tiles 9 --size 64 --out "$DIR/m.png" \
  --tiles-dir "$DIR/tiles" --mask "$MASK"
grep -qF "grid 4x8 of 64 px tiles (32 cells), keeping the 9 with the most tissue" "$DIR/out" || { fail "grid line"; cat "$DIR/out"; }
[ "$(png_size "$DIR/m.png")" = "192x192" ] || fail "mosaic is $(png_size "$DIR/m.png"), want 192x192"
[ "$(png_size "$DIR/m_mask.png")" = "192x192" ] || fail "mask mosaic is $(png_size "$DIR/m_mask.png"), want 192x192"
[ "$(ls "$DIR/tiles" | grep -c '^tile_0[0-8]_r[0-9]*_c[0-9]*\.png$')" -eq 9 ] || { fail "9 tiles named by position"; ls "$DIR/tiles"; }
grep -qE "^tissue: [0-9.]+% of the slide \(level 2\); [0-9] of the 9 tiles hold at least 5% tissue" "$DIR/out" ||
  { fail "tissue line"; cat "$DIR/out"; }
# More tiles than cells: white fillers, a non-square grid, and a note that tissue runs short.
expect 0 "note: fewer tissue tiles than N=12" "$SG" tile --slide "$SLIDE" --level 2 --tiles 12 --size 64 --rows 2 --cols 6 --out "$DIR/w.png"
expect 0 "white filler" "$SG" tile --slide "$SLIDE" --level 2 --tiles 12 --size 64 --rows 2 --cols 6 --out "$DIR/w.png"
[ "$(png_size "$DIR/w.png")" = "384x128" ] || fail "2x6 mosaic is $(png_size "$DIR/w.png"), want 384x128"
expect 0 "grid shifted by half a tile" "$SG" tile --slide "$SLIDE" --level 1 --tiles 4 --size 64 --half-offset --out "$DIR/h.png"
expect 0 "mosaic 128x128" "$SG" tile --slide "$SLIDE" --level 1 --tiles 4 --size 64 --augment --seed 3 --out "$DIR/a.png"

# Bad input.
echo "not a slide" >"$DIR/notes.tiff"
expect 1 "$DIR/notes.tiff" "$SG" tile --slide "$DIR/notes.tiff" --out "$DIR/x.png"
expect 1 "$DIR/missing.tiff" "$SG" tile --slide "$DIR/missing.tiff" --out "$DIR/x.png"
expect 1 "level 7" "$SG" tile --slide "$SLIDE" --level 7 --out "$DIR/x.png"
OTHER=$(sed -n 2p "$DIR/panda/train.csv" | cut -d, -f1)
"$SG" synth --out "$DIR/small" --slides 1 --test-slides 0 --seed 4 --width 1024 --height 512 >/dev/null 2>&1
SMALL_MASK=$(ls "$DIR"/small/train_label_masks/*_mask.tiff)
expect 1 "is 256x128 but the slide level it must match is 512x256" "$SG" tile --slide "$SLIDE" --level 1 --tiles 4 --size 64 \
  --mask "$SMALL_MASK" --out "$DIR/y.png"
[ -n "$OTHER" ] || fail "train.csv rows"
[ "$FAILED" -eq 0 ] && echo "tile CLI: all passed"
exit "$FAILED"
