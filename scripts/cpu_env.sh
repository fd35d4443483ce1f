# Sourced by the run scripts. OpenBLAS 0.3.21 (Debian 12) does not recognise some current
# CPUs and falls back to its generic SSE3 kernels; its SkylakeX (AVX-512) and Haswell (AVX2 +
# FMA) kernels are correct on any CPU that has those instructions. On the project's AVX-512 VM
# the SkylakeX kernels ran B0's pointwise-convolution GEMMs 1.2-2.3x faster than the Haswell ones
# (BM_Conv2d/(3|4|5), 1 thread, minimum of 5 alternated runs), Haswell's several times faster than SSE3.
# A value the user set is kept. `slidegrade info` says which kernels OpenBLAS uses.
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
  if grep -qw avx512f /proc/cpuinfo && grep -qw avx512bw /proc/cpuinfo && grep -qw avx512vl /proc/cpuinfo &&
     grep -qw avx512dq /proc/cpuinfo; then
    export OPENBLAS_CORETYPE=SkylakeX
  elif grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then
    export OPENBLAS_CORETYPE=Haswell
  fi
fi
