#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, CMake option SLIDEGRADE_FUZZ) with clang, ASan and UBSan
# in build-fuzz/, and runs each for a bounded time. Not part of CI's default path.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     e.g. scripts/fuzz.sh 600 fuzz_npy
#
# Corpus: build-fuzz/corpus/<target>/ (kept between runs), seeded from fuzz/corpus/<target>/ and
# the test data (tests/data/npy/*.npy). Crashes, leaks and timeouts go to fuzz/findings/<target>/
# (gitignored); a finding becomes a regression test under tests/data/fuzz_regressions/.
# Environment: SG_FUZZ_JOBS (ninja -j, default 1), SG_FUZZ_RSS_MB (default 2048), SG_FUZZ_NICE (the
# fuzzers' niceness, default 19: they yield to everything else on the machine).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
all_targets=(fuzz_csv fuzz_panda_dataset fuzz_grades_csv fuzz_npy fuzz_png fuzz_weight_file fuzz_slide_reader
             fuzz_run_config fuzz_oof_predictions fuzz_keras_weights)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")

build=build-fuzz
if [ ! -f "$build/build.ninja" ]; then
  nice -n 19 cmake -S . -B "$build" -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLIDEGRADE_CUDA=OFF -DSLIDEGRADE_FUZZ=ON \
    -DSLIDEGRADE_TESTS=OFF -DSLIDEGRADE_BENCHMARKS=OFF >/dev/null
fi
nice -n 19 ninja -C "$build" -j"${SG_FUZZ_JOBS:-1}" "${targets[@]}" make_fuzz_seeds
# Seeds our own writers make (weight files, checkpoints, pyramid TIFFs, PNGs), always in today's format.
"$build/fuzz/make_fuzz_seeds" "$build/seeds"

dictionary_for() {
  case "$1" in
    fuzz_csv | fuzz_panda_dataset | fuzz_grades_csv | fuzz_oof_predictions) echo fuzz/dict/csv.dict ;;
    fuzz_npy) echo fuzz/dict/npy.dict ;;
    fuzz_png) echo fuzz/dict/png.dict ;;
    fuzz_run_config) echo fuzz/dict/toml.dict ;;
    fuzz_weight_file | fuzz_keras_weights) echo fuzz/dict/hdf5.dict ;;
    fuzz_slide_reader) echo fuzz/dict/tiff.dict ;;
    *) echo "" ;;
  esac
}

summary=()
for target in "${targets[@]}"; do
  corpus="$build/corpus/$target"
  findings="fuzz/findings/$target"
  mkdir -p "$corpus" "$findings"
  [ -d "fuzz/corpus/$target" ] && cp -n fuzz/corpus/"$target"/* "$corpus"/ 2>/dev/null || true
  [ -d "$build/seeds/$target" ] && cp -n "$build/seeds/$target"/* "$corpus"/ 2>/dev/null || true
  [ "$target" = fuzz_npy ] && cp -n tests/data/npy/*.npy "$corpus"/ 2>/dev/null || true
  dict=$(dictionary_for "$target")
  log="$findings/last_run.log"
  echo "== $target: ${seconds}s"
  set +e
  # -fork=1 keeps going after a finding, so one run reports every crash it meets.
  ASAN_OPTIONS=allocator_may_return_null=0:detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    nice -n "${SG_FUZZ_NICE:-19}" "$build/fuzz/$target" -max_total_time="$seconds" -rss_limit_mb="${SG_FUZZ_RSS_MB:-2048}" \
    -timeout=10 -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
    -artifact_prefix="$findings/" ${dict:+-dict="$dict"} "$corpus" >"$log" 2>&1
  rc=$?
  set -e
  # Executions: the last status line's exec count (fork mode prints "#N: cov: ... exec/s").
  execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
  crashes=$(find "$findings" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
  line="$target: ${seconds}s, ${execs:-?} executions, $crashes findings in $findings/ (exit $rc)"
  echo "$line"
  summary+=("$line")
done
echo "== summary"
printf '%s\n' "${summary[@]}"
