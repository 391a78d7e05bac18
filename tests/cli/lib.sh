# lib.sh - sourced by every CLI test script: a scratch dir, PATH to the
# freshly built programs, and ok/fail counters printing "N passed, N failed".
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${GLAD_BUILD:-$ROOT/build}
export PATH="$BUILD:$PATH"
SHARED=${GLAD_SHARED:-$ROOT/../shared}
T=$(mktemp -d "${TMPDIR:-/tmp}/glad-test.XXXXXX")
trap 'rm -rf "$T"' EXIT
PASS=0; FAIL=0; SKIPPED=0
ok()   { PASS=$((PASS+1)); }
fail() { FAIL=$((FAIL+1)); echo "FAIL $(basename "$0"): $*" >&2; }
skip() { SKIPPED=$((SKIPPED+1)); echo "SKIP $(basename "$0"): $*" >&2; }
# check "description" command...   (passes when the command exits 0)
check() { local d=$1; shift; if "$@"; then ok; else fail "$d"; fi; }
# status N "description" command...   (passes when the command exits with N)
status() { local want=$1 d=$2; shift 2; "$@" >/dev/null 2>"$T/.stderr"; local got=$?
  if [ "$got" = "$want" ]; then ok; else fail "$d (exit $got, want $want): $(head -c 300 "$T/.stderr")"; fi; }
have_shared() { [ -f "$SHARED/README.md" ]; }
done_tests() {
  if [ "$SKIPPED" -gt 0 ]; then echo "$PASS passed, $FAIL failed, $SKIPPED skipped"; else echo "$PASS passed, $FAIL failed"; fi
  [ "$FAIL" -eq 0 ]
}
