# Sourced by the run scripts. OpenBLAS 0.3.21 (Debian 12) does not recognise some current
# CPUs and falls back to its generic SSE3 kernels; its Haswell kernels (AVX2 + FMA) are
# correct on any CPU that has those instructions and run GEMMs several times faster.
# A value the user set is kept. `slidegrade info` says which kernels OpenBLAS uses.
if [ -z "${OPENBLAS_CORETYPE:-}" ] && grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then
  export OPENBLAS_CORETYPE=Haswell
fi
