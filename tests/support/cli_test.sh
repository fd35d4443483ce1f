# Shared by the command-line test scripts (sourced, POSIX sh): a scratch folder removed on exit,
# a failure flag, and `expect STATUS TEXT command...`, which runs the command and fails unless it
# exits with STATUS and its stdout+stderr contain TEXT. Scripts end with `exit "$FAILED"`.
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
FAILED=0
fail() { echo "FAIL: $*"; FAILED=1; }
expect() {
  want_status=$1 text=$2
  shift 2
  "$@" >"$DIR/out" 2>&1
  status=$?
  if [ "$status" -ne "$want_status" ] || ! grep -qF -- "$text" "$DIR/out"; then
    fail "$* -> exit $status (want $want_status), output must contain '$text':"
    cat "$DIR/out"
  fi
}
