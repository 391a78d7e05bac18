#!/bin/sh
# run.sh - make bench: run every tests/bench/*.sh; each prints its own
# measurements and ratios against a reference measured in the same run.
cd "$(dirname "$0")/../.." || exit 1
export GLAD_BUILD=${GLAD_BUILD:-$PWD/build}
export PATH="$GLAD_BUILD:$PATH"
for b in tests/bench/*.sh; do
    [ "$(basename "$b")" = run.sh ] && continue
    echo "== $(basename "$b" .sh)"
    sh "$b" || echo "   (benchmark $(basename "$b") failed)"
done
