#!/bin/bash
# man-examples.sh - run the commands of every man page's EXAMPLES section in
# a scratch dir: each page's example block must exit 0. Pages whose examples
# need ../shared (weights, datasets) say so with "../shared" and are skipped
# when it is absent.
. "$(dirname "$0")/lib.sh"
for page in "$ROOT"/man/*.[157]; do
    name=$(basename "$page")
    # lines between .SH EXAMPLES and the next .SH, inside .nf/.fi blocks
    awk '/^\.SH EXAMPLES/{on=1;next} /^\.SH/{on=0} on&&/^\.nf/{blk=1;next} on&&/^\.fi/{blk=0;next} on&&blk&&!/^\.R[SE]/{print}' "$page" \
        | sed -e 's/\\-/-/g' -e 's/\\e/\\/g' -e 's/\\(aq/'"'"'/g' > "$T/$name.sh"
    [ -s "$T/$name.sh" ] || { fail "$name has no EXAMPLES commands"; continue; }
    if grep -q '\.\./shared' "$T/$name.sh" && ! have_shared; then skip "$name examples need ../shared"; continue; fi
    mkdir -p "$T/run-$name"
    if (cd "$T/run-$name" && ln -s "$ROOT/../shared" ../shared 2>/dev/null; SHARED="$SHARED" ROOT="$ROOT" bash -e "$T/$name.sh") >"$T/$name.out" 2>&1; then ok
    else fail "$name examples: $(tail -n 3 "$T/$name.out")"; fi
done
done_tests
