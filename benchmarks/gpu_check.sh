#!/usr/bin/env bash
# The GPU check: CUDA tests and CUDA benchmarks on a GPU machine, then a short table.
#
# The lent GPU machine has nvcc, CMake and a Python with PyTorch, but none of our Debian
# libraries (OpenBLAS, HDF5, GoogleTest, Google Benchmark), so the programs are built here
# for the card and carried there with the libraries `ldd` names:
#
#   here:   benchmarks/gpu_check.sh prepare [ARCH]   # builds for sm_ARCH (default 90): .gpu_bundle.tar.xz
#   there:  benchmarks/gpu_check.sh run              # CUDA tests (the emulated device's list first),
#                                                    # benchmarks and a table, well inside 8 minutes
#
# With the device tool: carry [".gpu_bundle.tar.xz"] and run `bash benchmarks/gpu_check.sh run`.
# The bundle holds glibc-2.36-era binaries (Debian 12); the GPU machine needs that glibc or newer.
# Its size, measured 2026-12-07 (sm_90): .gpu_bundle.tar.xz 33 MiB (34.5 MB), 190 MiB unpacked,
# 83 libraries and 2 links (65 MiB, 290 MB and 155 libraries while OpenCV's imgcodecs read PNGs).
# Compressed, the libraries take about 29 MB: OpenSlide's 13 (ICU's data alone 7.5, for libxml2),
# HDF5's 6 (libcurl with its TLS and Kerberos libraries), OpenBLAS with libgfortran 5.5, OpenCV
# core + imgproc with TBB 2.4; the three programs take about 6.
#
# On a machine that has both a GPU and the Debian libraries, `benchmarks/gpu_check.sh all`
# does both. Results go to $OUT (the device tool's output folder) or benchmarks/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
bundle=.gpu_bundle

prepare() {
  local arch=${1:-90}
  BUILD_DIR=build-gpu CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=$arch -DCMAKE_BUILD_TYPE=Release" scripts/setup.sh
  rm -rf "$bundle" && mkdir -p "$bundle/lib"
  cp build-gpu/sg_tests build-gpu/sg_bench_cuda build-gpu/slidegrade "$bundle/"
  strip --strip-debug "$bundle/sg_tests" "$bundle/sg_bench_cuda" "$bundle/slidegrade"
  # Every library the programs load but glibc's and CUDA's (those come from the GPU machine).
  # glibc's libresolv and libmvec stay out too: they use GLIBC_PRIVATE symbols of the libc they
  # came with, so Debian's copies break beside another glibc.
  ldd build-gpu/sg_tests build-gpu/sg_bench_cuda build-gpu/slidegrade | awk '/=> \// {print $3}' | sort -u |
    grep -vE '/(libc|libm|libdl|libpthread|librt|libresolv|libmvec|libutil|libanl|libnsl|ld-linux)[.-]' |
    grep -vE 'libcuda|libcublas|libcudnn|libcudart' |
    xargs -r -I{} cp -L {} "$bundle/lib/"
  # Debian's liblapack.so.3 and libblas.so.3 (OpenCV core needs them) are OpenBLAS's, on top of
  # libopenblas.so.0, which exports the whole BLAS and LAPACK itself: links to it instead of 7 MB
  # more (the loader maps the one file once).
  if [ -f "$bundle/lib/libopenblas.so.0" ]; then
    for name in liblapack.so.3 libblas.so.3; do
      if [ -f "$bundle/lib/$name" ]; then ln -sf libopenblas.so.0 "$bundle/lib/$name"; fi
    done
  fi
  git rev-parse --short HEAD >"$bundle/commit"
  # The three programs side by side and a 64 MiB window: their CUDA code (the same 16 MB in each)
  # is stored once. The x86 filter makes machine code compress better. One thread: xz's threads
  # would split the stream into blocks that share nothing (about 4 minutes here).
  tar -cf - "$bundle/commit" "$bundle/sg_bench_cuda" "$bundle/sg_tests" "$bundle/slidegrade" "$bundle/lib" |
    xz -T1 --x86 --lzma2=preset=9 >.gpu_bundle.tar.xz
  du -sh "$bundle" .gpu_bundle.tar.xz
  echo "$(find "$bundle/lib" -type f | wc -l) libraries (+ $(find "$bundle/lib" -type l | wc -l) links) in $bundle/lib"
}

run() {
  [ -d "$bundle" ] || tar -xJf .gpu_bundle.tar.xz
  local out=${OUT:-benchmarks/results}
  mkdir -p "$out"
  # cuDNN and cuBLAS on the GPU machine: the toolkit's, or the Python wheels' (nvidia/*/lib).
  local extra
  extra=$(python3 - <<'PY' 2>/dev/null || true
import glob, os, site
dirs = []
for base in site.getsitepackages() + [site.getusersitepackages()]:
    dirs += glob.glob(os.path.join(base, "nvidia", "*", "lib"))
print(":".join(dirs))
PY
)
  export LD_LIBRARY_PATH="$PWD/$bundle/lib:/usr/local/cuda/lib64:${extra}:${LD_LIBRARY_PATH:-}"
  export SG_GOLDEN_DIR="$PWD/tests/golden/data"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt" || true
  local commit
  commit=$(cat "$bundle/commit" 2>/dev/null || git rev-parse --short HEAD 2>/dev/null || echo unknown)
  echo "commit $commit, $(date -u +%Y-%m-%dT%H:%MZ)" | tee -a "$out/gpu.txt"
  # The code the binary holds, the code the card runs and the kernels that gives it (per precision).
  for precision in f16 bf16; do "$bundle/slidegrade" info --precision "$precision" 2>&1 | tee -a "$out/gpu.txt" || true; done

  echo "== CUDA tests: the list the emulated CUDA device runs in CI (tests/emulated_cuda/cuda_tests.filter)"
  set +e
  timeout 200 "$bundle/sg_tests" --gtest_brief=1 --gtest_filter="$(cat tests/emulated_cuda/cuda_tests.filter)" 2>&1 |
    tee "$out/cuda_tests.log" | tail -n 40
  local cuda_status=${PIPESTATUS[0]}
  echo "== every test on the GPU machine"
  timeout 200 "$bundle/sg_tests" --gtest_brief=1 2>&1 | tee "$out/tests.log" | tail -n 40
  local test_status=${PIPESTATUS[0]}
  [ "$cuda_status" -eq 0 ] || test_status=$cuda_status
  echo "== CUDA benchmarks"
  timeout 180 "$bundle/sg_bench_cuda" --benchmark_min_time=0.05 --benchmark_out="$out/bench_cuda.json" \
    --benchmark_out_format=json >"$out/bench_cuda.log" 2>&1
  local bench_status=$?
  echo "== EfficientNet-B0 beside PyTorch + timm (channels-last, autocast)"
  for precision in f16 f32; do
    PYTHON=python3 timeout 100 benchmarks/compare_bench.sh --build "$bundle" --device cuda --precision "$precision" \
      --rounds 1 --batches "32" 2>&1 | tee "$out/compare_b0_$precision.md"
  done
  set -e
  python3 benchmarks/bench_table.py "$out/bench_cuda.json" | tee "$out/table.md"
  echo "tests exit $test_status, benchmarks exit $bench_status"
  [ "$test_status" -eq 0 ] && [ "$bench_status" -eq 0 ]
}

case "${1:-}" in
  prepare) prepare "${2:-90}" ;;
  run) run ;;
  all) prepare "${2:-90}" && run ;;
  *) echo "usage: $0 prepare [ARCH] | run | all [ARCH]" >&2; exit 2 ;;
esac
