#!/bin/bash
# programs.sh - what every program owes its users: --help (exit 0), --version
# (exit 0, names the program), a usage error for an unknown option (exit 2,
# message naming the program on stderr), and a man page.
. "$(dirname "$0")/lib.sh"
for p in "$BUILD"/glad-*; do
    [ -x "$p" ] || continue
    name=$(basename "$p")
    "$p" --help > "$T/help" 2>&1 && grep -qi usage "$T/help" && ok || fail "$name --help"
    "$p" --version > "$T/ver" 2>&1 && grep -q "^$name " "$T/ver" && ok || fail "$name --version"
    "$p" --no-such-option > /dev/null 2> "$T/err"; rc=$?
    [ "$rc" = 2 ] && grep -q "^$name: " "$T/err" && ok || fail "$name unknown option gave exit $rc: $(head -c 200 "$T/err")"
    [ -f "$ROOT/man/$name.1" ] && ok || fail "$name has no man page man/$name.1"
done
done_tests
