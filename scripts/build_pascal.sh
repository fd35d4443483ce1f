#!/usr/bin/env bash
# Builds slidegrade for Pascal GPUs (GTX 1050 Ti and the other GTX 10xx cards: sm_61) in build-sm61/:
# the slidegrade program, the tests (sg_tests) and the CUDA benchmarks (sg_bench_cuda).
#
# Why a separate build: CUDA 13, the toolkit the default build uses, cannot target anything older
# than Turing (sm_75). CUDA 12.9 can, so this build takes CUDA 12.9 from NVIDIA's PyPI wheels,
# installs them into .cuda12/ (git ignores it) and never uses the system's CUDA.
#
# Why clang compiles the CUDA code: the CUDA 12 wheels carry the headers, the runtime, cuBLAS,
# ptxas, libdevice and libnvfatbin, but no nvcc (nor cicc, cudafe++ or fatbinary). clang (Debian's
# clang-16) compiles CUDA with exactly those: it generates the PTX itself, runs the wheel's ptxas,
# and bundles cubin and PTX with scripts/cuda12/fatbinary (on libnvfatbin). docs/pascal.md has the
# details. The C++ code is compiled by g++ as in every other build.
#
#   SG_CUDA12_DIR          where the wheels and the assembled toolkit go (default: .cuda12)
#   BUILD_DIR              the build folder (default: build-sm61)
#   SG_CUDA_ARCHITECTURES  the GPU architectures (default: 61, every GTX 10xx; 60 for a Tesla P100)
# A second run reuses the installed wheels (each one's installed version is checked) and only
# rebuilds what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
cuda12=${SG_CUDA12_DIR:-$repo/.cuda12}
case $cuda12 in /*) ;; *) cuda12=$repo/$cuda12 ;; esac
toolkit=$cuda12/toolkit
build_dir=${BUILD_DIR:-build-sm61}
archs=${SG_CUDA_ARCHITECTURES:-61}
targets="slidegrade sg_tests sg_bench_cuda"
clang_cuda=clang++-16

# CUDA 12.9 Update 1 (docs/pascal.md): the compiler back end (ptxas, libdevice, the crt headers),
# the runtime (headers, libcudart_static), CCCL (libcu++, CUB, Thrust headers), cuBLAS, and
# libnvfatbin for the fatbinary stand-in. These wheels declare no dependencies; --no-deps makes sure
# pip brings in nothing else.
wheels=(
  nvidia-cuda-nvcc-cu12==12.9.86
  nvidia-cuda-runtime-cu12==12.9.79
  nvidia-cuda-cccl-cu12==12.9.27
  nvidia-cublas-cu12==12.9.1.4
  nvidia-nvfatbin-cu12==12.9.82
)

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
apt_install() {
  echo "build_pascal: installing $*"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "$@"
}

# ---- 1. The wheels, each into a folder of its own ----------------------------------------------
# One --target per wheel: pip skips (or, with --upgrade, replaces whole) a top-level folder that
# already exists in the target, and every one of these wheels installs into nvidia/.
if ! python3 -m pip --version >/dev/null 2>&1; then
  apt_install python3-pip
fi
mkdir -p "$cuda12/wheels"
for spec in "${wheels[@]}"; do
  name=${spec%%==*} version=${spec##*==}
  dir=$cuda12/wheels/$name
  if [ -d "$dir/${name//-/_}-$version.dist-info" ]; then
    continue  # this version is installed
  fi
  echo "build_pascal: installing $spec from PyPI into $dir"
  rm -rf "$dir"
  # --target installs outside any Python environment (Debian's externally managed Python allows
  # it); --no-compile: nothing here is Python code that will be imported.
  python3 -m pip install --quiet --no-deps --only-binary=:all: --no-compile --disable-pip-version-check \
    --root-user-action=ignore --target "$dir" "$spec"
done
wheel_root() { echo "$cuda12/wheels/$1/nvidia/$2"; }
nvcc_wheel=$(wheel_root nvidia-cuda-nvcc-cu12 cuda_nvcc)
runtime_wheel=$(wheel_root nvidia-cuda-runtime-cu12 cuda_runtime)
cccl_wheel=$(wheel_root nvidia-cuda-cccl-cu12 cuda_cccl)
cublas_wheel=$(wheel_root nvidia-cublas-cu12 cublas)
nvfatbin_wheel=$(wheel_root nvidia-nvfatbin-cu12 nvfatbin)

# ---- 2. The toolkit: the layout CMake and clang expect of a CUDA installation -------------------
#   bin/      ptxas (the wheel's), fatbinary and nvcc (scripts/cuda12: a libnvfatbin front end and a
#             stand-in that only tells CMake the toolkit's root and version)
#   include/  every wheel's headers side by side, plus an empty cuRAND header clang's wrapper wants
#   lib64/    the wheels' libraries, with the unversioned names the linker looks for
#   nvvm/     libdevice (clang links it into the device code)
# Remade only when the pinned wheels change, so the headers' paths stay those the build recorded.
stamp="layout 2: ${wheels[*]}"  # bump the layout number when the layout below changes
if [ "$(cat "$toolkit/.wheels" 2>/dev/null)" != "$stamp" ]; then
  echo "build_pascal: assembling the CUDA 12.9 toolkit in $toolkit"
  rm -rf "$toolkit"
  mkdir -p "$toolkit/bin" "$toolkit/include" "$toolkit/lib64"
  ln -s "$nvcc_wheel/bin/ptxas" "$toolkit/bin/ptxas"
  ln -s "$nvcc_wheel/nvvm" "$toolkit/nvvm"
  for headers in "$runtime_wheel" "$nvcc_wheel" "$cublas_wheel" "$cccl_wheel" "$nvfatbin_wheel"; do
    for entry in "$headers/include"/*; do
      base=$(basename "$entry")
      case $base in __init__.py | __pycache__) continue ;; esac
      if [ -e "$toolkit/include/$base" ]; then
        echo "build_pascal: $base is in two wheels ($entry)" >&2
        exit 1
      fi
      ln -s "$entry" "$toolkit/include/$base"
    done
  done
  # One header changed: crt/host_defines.h defines __noinline__ as __attribute__((noinline)) for
  # every CUDA compiler, which breaks libstdc++ 12's own __attribute__((__noinline__)) under clang
  # (clang >= 15 has __noinline__ as a keyword and needs no macro). CUDA 13's header no longer
  # defines it; here the definition is skipped under clang, as other clang CUDA builds do.
  rm "$toolkit/include/crt"
  mkdir "$toolkit/include/crt"
  ln -s "$nvcc_wheel/include/crt"/* "$toolkit/include/crt/"
  rm "$toolkit/include/crt/host_defines.h"
  sed '/^#define __noinline__ \\$/{N;/__attribute__((noinline))/{s/^/#if !defined(__clang__)  \/* clang: a keyword (scripts\/build_pascal.sh) *\/\n/;s/$/\n#endif/}}' \
    "$nvcc_wheel/include/crt/host_defines.h" >"$toolkit/include/crt/host_defines.h"
  if ! grep -q '^#if !defined(__clang__)  /\* clang: a keyword' "$toolkit/include/crt/host_defines.h"; then
    echo "build_pascal: crt/host_defines.h has no __noinline__ definition to skip under clang" >&2
    exit 1
  fi
  for lib in "$runtime_wheel"/lib/lib* "$cublas_wheel"/lib/lib* "$nvfatbin_wheel"/lib/lib*; do
    ln -s "$lib" "$toolkit/lib64/$(basename "$lib")"
  done
  for lib in libcudart libcublas libcublasLt libnvfatbin; do
    ln -s "$lib.so.12" "$toolkit/lib64/$lib.so"
  done
  # The component versions, in the form of NVIDIA's own version.json (the nvcc stand-in reads it).
  {
    echo '{'
    echo '  "cuda" : { "name" : "CUDA SDK (PyPI wheels)", "version" : "12.9.1" },'
    for spec in "${wheels[@]}"; do
      name=${spec%%==*}
      echo "  \"$name\" : { \"version\" : \"${spec##*==}\" },"
    done
    echo '  "cuda_nvcc" : { "name" : "CUDA NVCC (ptxas, libdevice; no nvcc)", "version" : "'"${wheels[0]##*==}"'" }'
    echo '}'
  } >"$toolkit/version.json"
  echo "$stamp" >"$toolkit/.wheels"
fi
# Copied, not linked: the toolkit keeps working if the checkout moves. install only when changed,
# so the files' times stay put.
for tool in fatbinary nvcc; do
  cmp -s "scripts/cuda12/$tool" "$toolkit/bin/$tool" || install -m 755 "scripts/cuda12/$tool" "$toolkit/bin/$tool"
done
cmp -s scripts/cuda12/curand_mtgp32_kernel.h "$toolkit/include/curand_mtgp32_kernel.h" ||
  install -m 644 scripts/cuda12/curand_mtgp32_kernel.h "$toolkit/include/curand_mtgp32_kernel.h"

# ---- 3. Only this toolkit: no other CUDA on PATH, in CMake's searches or in the headers ---------
# PATH without any CUDA folder (setup.sh adds /usr/local/cuda/bin only when no nvcc is on PATH, and
# the stand-in is); CUDA_PATH and CUDAToolkit_ROOT name this toolkit.
clean_path=$toolkit/bin
IFS=: read -ra path_entries <<<"$PATH"
for entry in "${path_entries[@]}"; do
  case $entry in *cuda*) ;; *) clean_path+=":$entry" ;; esac
done
export PATH=$clean_path CUDA_PATH=$toolkit CUDAToolkit_ROOT=$toolkit
unset CUDA_HOME CUDACXX CUDAHOSTCXX
# CMake's find_* calls skip every other CUDA installation: /usr/local/cuda (and what it links to),
# and /usr/local/include, lib and lib64 where they hold CUDA files (some machines put CUDA 13 there):
# otherwise the system's cuBLAS, cudart or cuDNN could be found before, or instead of, the wheels'.
ignore_prefixes=() ignore_paths=()
for prefix in /usr/local/cuda /usr/local/cuda-*; do
  [ -e "$prefix" ] && ignore_prefixes+=("$prefix" "$(readlink -f "$prefix")")
done
for dir in /usr/local/include /usr/local/lib /usr/local/lib64; do
  if compgen -G "$dir/cuda*.h" >/dev/null || compgen -G "$dir/libcu*" >/dev/null; then
    ignore_paths+=("$dir")
  fi
done
join() { local IFS=';'; echo "$*"; }
# -isystem$toolkit/include: clang searches its --cuda-path headers after /usr/local/include, so a
# CUDA installed there would otherwise shadow the wheels' headers. (setup.sh splits CMAKE_ARGS at
# spaces: no argument may contain one, this checkout's path included.)
cmake_args="-DCMAKE_CUDA_COMPILER=$clang_cuda -DCUDAToolkit_ROOT=$toolkit -DCMAKE_CUDA_ARCHITECTURES=$archs"
cmake_args+=" -DCMAKE_CUDA_FLAGS=-isystem$toolkit/include"
cmake_args+=" -DCMAKE_IGNORE_PREFIX_PATH=$(join "${ignore_prefixes[@]}") -DCMAKE_IGNORE_PATH=$(join "${ignore_paths[@]}")"

# ---- 4. Configure and build (setup.sh: the Debian packages, clang-16 among them) ---------------
BUILD_DIR=$build_dir BUILD_TARGETS=$targets CMAKE_ARGS=$cmake_args nice -n 10 scripts/setup.sh

# ---- 5. Check that the build used this toolkit and nothing else --------------------------------
log=$build_dir.configure.log
cache=$build_dir/CMakeCache.txt
problems=()
# What enable_language(CUDA) found, as CMake recorded it (the configure log says it only the first time).
compiler_file=$(ls -t "$build_dir"/CMakeFiles/*/CMakeCUDACompiler.cmake | head -1)
cmake_value() { sed -n "s/^set($1 \"\(.*\)\")$/\1/p" "$compiler_file"; }
[ "$(cmake_value CMAKE_CUDA_COMPILER_ID)" = Clang ] || problems+=("the CUDA compiler is $(cmake_value CMAKE_CUDA_COMPILER), not clang")
[ "$(cmake_value CMAKE_CUDA_COMPILER_TOOLKIT_ROOT)" = "$toolkit" ] ||
  problems+=("the CUDA toolkit is $(cmake_value CMAKE_CUDA_COMPILER_TOOLKIT_ROOT), not $toolkit")
[[ $(cmake_value CMAKE_CUDA_COMPILER_TOOLKIT_VERSION) == 12.9.* ]] ||
  problems+=("the CUDA toolkit's version is $(cmake_value CMAKE_CUDA_COMPILER_TOOLKIT_VERSION), not 12.9")
for var in CUDA_cudart_static_LIBRARY CUDA_cublas_LIBRARY CUDA_cublasLt_LIBRARY; do
  value=$(sed -n "s/^$var:[A-Z]*=//p" "$cache")
  [[ $value == "$toolkit"/* ]] || problems+=("$var is '$value', not in $toolkit")
done
if grep -q "slidegrade: cuDNN baseline" "$log"; then
  problems+=("a cuDNN was found ($(grep "cuDNN baseline" "$log")); this build has none")
fi
# Every CUDA header the compilers read came from this toolkit: no header of the same name (the
# toolkit's top-level and crt/ headers) from anywhere else, nothing from a CUDA installation.
toolkit_headers=$(cd "$toolkit/include" && find -L . crt -maxdepth 1 -type f -name '*.h*' -printf '%f\n' | sort -u)
leaks=$(ninja -C "$build_dir" -t deps | awk -v toolkit="$toolkit/" -v names="$toolkit_headers" '
  BEGIN { n = split(names, list, "\n"); for (i = 1; i <= n; ++i) known[list[i]] = 1 }
  /^    \// { path = $1; base = path; sub(/.*\//, "", base)
              if (index(path, toolkit) != 1 && (known[base] || path ~ /\/cuda(-[0-9.]+)?\/(include|targets)\//)) print path }' | sort -u)
[ -z "$leaks" ] || problems+=("headers from outside $toolkit: $(echo "$leaks" | head -5 | tr '\n' ' ')")
for target in $targets; do
  libs=$(ldd "$build_dir/$target")
  if grep -E 'lib(cudart|cublas|cublasLt|cudnn)[^ ]*\.so' <<<"$libs" | grep -v "=> $cuda12/" | grep -q .; then
    problems+=("$target loads a CUDA library from outside $cuda12: $(grep -E 'libcu' <<<"$libs" | tr -s ' \t' ' ')")
  fi
done
if ((${#problems[@]})); then
  printf 'build_pascal: %s\n' "${problems[@]}" >&2
  exit 1
fi

cat <<MESSAGE

build_pascal: done, for sm_${archs//;/, sm_} (61: the GTX 1050 Ti and every other GTX 10xx card):
  $build_dir/slidegrade       the program
  $build_dir/sg_tests         the tests (the CUDA ones need the GPU)
  $build_dir/sg_bench_cuda    the CUDA benchmarks
Compiled by $($clang_cuda --version | head -1) against CUDA 12.9 (wheels in $cuda12);
cuBLAS is loaded from $toolkit/lib64, so keep that folder where it is.
NVIDIA driver: 525.60.13 or newer runs it (CUDA 12 minor-version compatibility); 575.57.08 or
newer is the driver CUDA 12.9 Update 1 ships with. The 580 driver series is the last to support
Pascal GPUs. Check with: nvidia-smi
MESSAGE
