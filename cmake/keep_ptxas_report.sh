#!/usr/bin/env bash
# The compiler launcher of every CUDA compile (CMAKE_CUDA_COMPILER_LAUNCHER): runs the command
# (ccache nvcc ... -o OBJECT) and moves ptxas's resource report (nvcc --resource-usage: registers,
# spills, stack, shared memory of every kernel for every architecture) out of the build's output
# into OBJECT.ptxas, where scripts/kernel_resources.py reads it. Every other line of the compiler's
# stderr (warnings, errors) still goes to stderr; the exit status is the compiler's.
set -uo pipefail
object=""
previous=""
for arg in "$@"; do
  [ "$previous" = "-o" ] && object=$arg
  previous=$arg
done
stderr_file=$(mktemp)
trap 'rm -f "$stderr_file"' EXIT
"$@" 2>"$stderr_file"
status=$?
# ptxas's report: "ptxas info" lines and the indented "N bytes stack frame, ..." lines after them.
report='^(ptxas info|    [0-9]+ bytes stack frame)'
if [ -n "$object" ] && [ "$status" -eq 0 ]; then
  grep -E "$report" "$stderr_file" >"$object.ptxas.tmp" || true
  mv "$object.ptxas.tmp" "$object.ptxas"
fi
grep -vE "$report" "$stderr_file" >&2 || true
exit "$status"
