#!/bin/bash
# examples.sh - the library as users get it: `make install` into a scratch
# DESTDIR, then examples/*.c and the program of libglad(3)'s EXAMPLES are
# compiled against that install through pkg-config, linked both with the
# shared library and with libglad.a, and run; every installed header compiles
# on its own; `make uninstall` leaves no file behind. GLAD_CFLAGS (set by
# `make check`: the build's CFLAGS, so asan-check's sanitizers) are the user's
# compile flags.
. "$(dirname "$0")/lib.sh"
CFLAGS_USER=${GLAD_CFLAGS:--O2}
command -v pkg-config >/dev/null || { skip "pkg-config missing"; done_tests; exit; }
VERSION=$(sed -n 's/^#define GLAD_VERSION "\(.*\)"/\1/p' "$ROOT/lib/core/glad.h")
STAGE=$T/stage
# the nested make must not inherit make check's jobserver or variables
mk() { env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$ROOT" BUILD="$BUILD" "$@"; }
mk install DESTDIR="$STAGE" PREFIX=/usr > "$T/install.log" 2>&1 || { fail "make install: $(tail -n 3 "$T/install.log")"; done_tests; exit; }
L=$STAGE/usr/lib I=$STAGE/usr/include/glad

# ---- what is installed ----
check "libglad.a" test -f "$L/libglad.a"
check "libglad.so.$VERSION is the file" test -f "$L/libglad.so.$VERSION" -a ! -L "$L/libglad.so.$VERSION"
check "libglad.so.0 -> libglad.so.$VERSION" test "$(readlink "$L/libglad.so.0")" = "libglad.so.$VERSION"
check "libglad.so -> libglad.so.0" test "$(readlink "$L/libglad.so")" = libglad.so.0
check "SONAME libglad.so.0" sh -c "readelf -d '$L/libglad.so.$VERSION' | grep -q 'SONAME.*\[libglad.so.0\]'"
# every exported symbol is in the glad_ namespace (ASan adds __odr_asan.glad_*)
nm -D --defined-only "$L/libglad.so.$VERSION" | awk '{print $NF}' | grep -v '^glad_\|^__odr_asan\.glad_' > "$T/foreign" || true
check "exports only glad_* ($(head -c 200 "$T/foreign"))" test ! -s "$T/foreign"
check "glad.pc" test -f "$L/pkgconfig/glad.pc"
check "man3/libglad.3" test -f "$STAGE/usr/share/man/man3/libglad.3"
for h in core/glad.h core/tensor.h io/stream.h io/record.h io/image.h diffusion/model.h diffusion/denoise.h nn/nn.h libglad.h; do
    check "header $h installed" test -f "$I/$h"
done
for h in nn/tile.h nn/winoblk.h nn/cpu.h nn/fastmath.h nn/wino3x3.h nn/wino4x4.h nn/conv1x1.h nn/conv3x3.h; do
    check "kernel internal $h not installed" test ! -e "$I/$h"
done
# every installed header includes only installed headers and compiles alone
# as strict C11; libglad.h names them all
export PKG_CONFIG_PATH=$L/pkgconfig PKG_CONFIG_SYSROOT_DIR=$STAGE
check "pkg-config --cflags glad" test "$(pkg-config --cflags glad | cut -d' ' -f1)" = "-I$I"
check "pkg-config --libs glad is -lglad alone" test "$(pkg-config --libs glad | xargs)" = "-L$L -lglad"
static_libs=$(pkg-config --static --libs glad)
check "pkg-config --static --libs glad adds the dependencies" sh -c "echo '$static_libs' | grep -q -- -lmsgpackc && echo '$static_libs' | grep -q -- -lopenblas"
check "pkg-config --modversion glad" test "$(pkg-config --modversion glad)" = "$VERSION"
bad=""
for h in $(cd "$I" && find . -name '*.h' | sed 's|^\./||' | sort); do
    echo "#include \"$h\"" | cc -std=c11 -pedantic -Wall -Wextra -Werror -fsyntax-only $(pkg-config --cflags glad) -x c - 2>> "$T/hdr.err" || bad="$bad $h"
done
check "installed headers compile alone:${bad:- all} $(head -c 300 "$T/hdr.err")" test -z "$bad"
bad=""
for h in $(cd "$I" && find . -mindepth 2 -name '*.h' | sed 's|^\./||'); do
    grep -q "^#include \"$h\"" "$I/libglad.h" || bad="$bad $h"
done
check "libglad.h includes every header:${bad:- yes}" test -z "$bad"

# ---- build user programs both ways ----
# build NAME SRC: $T/NAME-shared (libglad.so) and $T/NAME-static (libglad.a)
build() {
    cc $CFLAGS_USER $(pkg-config --cflags glad) "$2" -o "$T/$1-shared" $(pkg-config --libs glad) 2> "$T/$1.err" &&
    cc $CFLAGS_USER $(pkg-config --cflags glad) "$2" -o "$T/$1-static" \
        $(pkg-config --static --libs glad | sed 's/-lglad /-l:libglad.a /') 2>> "$T/$1.err"
}
export LD_LIBRARY_PATH=$L${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# man page EXAMPLES: the C program (the .nf block holding an #include)
awk '/^\.SH EXAMPLES/{on=1;next} /^\.SH/{on=0} on&&/^\.nf/{blk=1;b="";next} on&&/^\.fi/{blk=0; if (b ~ /#include/) printf "%s", b; next} on&&blk&&!/^\.R[SE]/{b=b $0 "\n"}' \
    "$ROOT/man/libglad.3" | sed -e 's/\\-/-/g' -e 's/\\e/\\/g' > "$T/list.c"
for ex in stream_stats anomaly_map train_steps; do
    check "examples/$ex.c builds shared and static: $(head -c 300 "$T/$ex.err" 2>/dev/null)" build $ex "$ROOT/examples/$ex.c"
done
check "libglad(3) example builds: $(head -c 300 "$T/list.err" 2>/dev/null)" build list "$T/list.c"
check "shared build needs libglad.so.0" sh -c "readelf -d '$T/stream_stats-shared' | grep -q 'NEEDED.*libglad.so.0'"
check "static build does not" sh -c "! readelf -d '$T/stream_stats-static' | grep -q libglad"

# ---- data: the demo dataset, a stream, a 2-step tiny model ----
glad-synth --make-dataset "$T/demo" --classes fabric --size 32 --train 4 --test-good 1 --test-defect 1 > /dev/null
glad-encode "$T/demo" --split test > "$T/test.msgpack"
glad-encode "$T/demo" --split train > "$T/train.msgpack"
glad-train --preset tiny --steps 2 --batch 2 -o "$T/m.model" "$T/train.msgpack" 2> /dev/null
check "a 2-step tiny model" test -s "$T/m.model"

# train_steps: the library's training loop gives the model glad-train writes
# for the same settings, byte for byte, and prints one finite loss a step
for k in shared static; do "$T/train_steps-$k" "$T/train.msgpack" 3 "$T/ts-$k.model" > "$T/ts-$k.txt" 2> "$T/ts-$k.err"; echo $? > "$T/ts-$k.rc"; done
check "train_steps runs: $(head -c 300 "$T/ts-shared.err")" test "$(cat "$T/ts-shared.rc") $(cat "$T/ts-static.rc")" = "0 0"
check "train_steps prints 3 finite losses" sh -c "test \$(grep -Ec '^step [1-3] loss [0-9]+\.[0-9]{6}$' '$T/ts-shared.txt') = 3"
glad-train --preset tiny --loss ddpm --batch 4 --lr 1e-3 --steps 3 -o "$T/ts-ref.model" "$T/train.msgpack" 2> /dev/null
check "train_steps model = glad-train's (shared)" cmp -s "$T/ts-shared.model" "$T/ts-ref.model"
check "train_steps model = glad-train's (static)" cmp -s "$T/ts-static.model" "$T/ts-ref.model"
"$T/train_steps-shared" "$T/nope.msgpack" 3 "$T/x.model" > /dev/null 2> "$T/ts.err"; rc=$?
check "train_steps: missing input, exit 1 naming it ($(cat "$T/ts.err"))" sh -c "test $rc = 1 && grep -q 'nope.msgpack' '$T/ts.err'"

# stream_stats: the same output linked either way, and its numbers agree with
# glad-info's per-record min/mean/max
for k in shared static; do "$T/stream_stats-$k" "$T/test.msgpack" > "$T/ss-$k.txt"; echo $? > "$T/ss-$k.rc"; done
check "stream_stats runs" test "$(cat "$T/ss-shared.rc") $(cat "$T/ss-static.rc")" = "0 0"
check "stream_stats: shared = static" cmp -s "$T/ss-shared.txt" "$T/ss-static.txt"
n=$(glad-info --summary "$T/test.msgpack" | sed -n 's/^# \([0-9]*\) records$/\1/p')
check "stream_stats: $n records" test "$(head -n 1 "$T/ss-shared.txt")" = "$n records"
glad-info --json "$T/test.msgpack" | tail -n +2 > "$T/info.jsonl"
# expected per tensor: min of mins, max of maxes, numel-weighted mean; label: its mean
expect() {
    /usr/bin/python3 -c '
import json, math, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
for key in ("image", "mask"):
    t = [r[key] for r in recs]
    n = [math.prod(x["shape"]) for x in t]
    print(key, sum(n), min(x["min"] for x in t), sum(x["mean"] * k for x, k in zip(t, n)) / sum(n), max(x["max"] for x in t))
lab = [r["label"] for r in recs]
print("label", len(lab), min(lab), sum(lab) / len(lab), max(lab))' "$1"
}
if /usr/bin/python3 -c 'import json' 2>/dev/null; then
    expect "$T/info.jsonl" > "$T/expect.txt"
    while read -r key cnt lo mean hi; do
        got=$(awk -v k="$key" '$1 == k {print $4, $5, $6, $7}' "$T/ss-shared.txt")
        check "stream_stats $key: '$got' vs glad-info '$cnt $lo $mean $hi'" awk -v g="$got" -v c="$cnt" -v lo="$lo" -v m="$mean" -v hi="$hi" 'BEGIN {
            split(g, a, " "); d = a[3] - m; if (d < 0) d = -d
            exit !(a[1] == c && a[2] == lo && a[4] == hi && d <= 1e-5 * (1 + (m < 0 ? -m : m))) }'
    done < "$T/expect.txt"
else
    skip "python3 missing: stream_stats numbers not compared with glad-info"
fi
head -c 600 "$T/test.msgpack" > "$T/cut.msgpack"
"$T/stream_stats-static" "$T/cut.msgpack" > /dev/null 2> "$T/cut.err"; rc=$?
check "stream_stats: truncated stream, exit 1 with the reader's message ($(cat "$T/cut.err"))" sh -c "test $rc = 1 && grep -q 'truncated' '$T/cut.err'"

# anomaly_map: the same score and byte-identical PNG either way, at the input's size
img=$(ls "$T"/demo/fabric/test/*/000.png | grep -v good | head -n 1)
for k in shared static; do "$T/anomaly_map-$k" "$T/m.model" "$img" "$T/map-$k.png" > "$T/am-$k.txt" 2> "$T/am-$k.err"; echo $? > "$T/am-$k.rc"; done
check "anomaly_map runs: $(head -c 300 "$T/am-shared.err")" test "$(cat "$T/am-shared.rc") $(cat "$T/am-static.rc")" = "0 0"
check "anomaly_map prints a score: $(cat "$T/am-shared.txt")" grep -Eq "^$img: score [0-9]+\.[0-9]{6}$" "$T/am-shared.txt"
check "anomaly_map: shared = static (score)" cmp -s "$T/am-shared.txt" "$T/am-static.txt"
check "anomaly_map: shared = static (PNG)" cmp -s "$T/map-shared.png" "$T/map-static.png"
# PNG signature, IHDR width and height (big-endian at bytes 16..23), grey (colour type 0)
png_wh() { od -An -tu1 -j16 -N10 "$1" | awk '{print $1*16777216 + $2*65536 + $3*256 + $4 "x" $5*16777216 + $6*65536 + $7*256 + $8, "type" $10}'; }
check "anomaly map is a 32x32 grey PNG ($(png_wh "$T/map-shared.png"))" test "$(png_wh "$T/map-shared.png")" = "32x32 type0"
"$T/anomaly_map-shared" "$T/nope.model" "$img" "$T/x.png" > /dev/null 2> "$T/am.err"; rc=$?
check "anomaly_map: missing model, exit 1 naming it ($(cat "$T/am.err"))" sh -c "test $rc = 1 && grep -q 'nope.model' '$T/am.err'"

# the man page's program
"$T/list-shared" "$T/test.msgpack" > "$T/list-shared.txt"
"$T/list-static" < "$T/test.msgpack" > "$T/list-static.txt"
check "libglad(3) example: one line per record" test "$(wc -l < "$T/list-shared.txt")" = "$n"
check "libglad(3) example: id, label, size" grep -q '^fabric/test/good/000 label 0 image 3x32x32$' "$T/list-shared.txt"
check "libglad(3) example: shared = static" cmp -s "$T/list-shared.txt" "$T/list-static.txt"

# ---- uninstall leaves nothing; LIBDIR/INCLUDEDIR are honoured ----
mk uninstall DESTDIR="$STAGE" PREFIX=/usr > "$T/uninstall.log" 2>&1
check "make uninstall removes every file ($(cd "$STAGE" && find . ! -type d | head -n 5 | xargs))" test -z "$(find "$STAGE" ! -type d)"
check "make uninstall removes include/glad" test ! -e "$STAGE/usr/include/glad"
mk install DESTDIR="$T/s2" PREFIX=/opt/glad LIBDIR=/opt/glad/lib64 INCLUDEDIR=/opt/glad/inc > "$T/install2.log" 2>&1
check "LIBDIR honoured" test -f "$T/s2/opt/glad/lib64/libglad.so.$VERSION" -a -f "$T/s2/opt/glad/lib64/pkgconfig/glad.pc"
check "INCLUDEDIR honoured" test -f "$T/s2/opt/glad/inc/glad/io/stream.h"
check "glad.pc paths follow" sh -c "grep -qx 'libdir=\${prefix}/lib64' '$T/s2/opt/glad/lib64/pkgconfig/glad.pc' && grep -qx 'includedir=\${prefix}/inc' '$T/s2/opt/glad/lib64/pkgconfig/glad.pc' && grep -qx 'prefix=/opt/glad' '$T/s2/opt/glad/lib64/pkgconfig/glad.pc'"
mk uninstall DESTDIR="$T/s2" PREFIX=/opt/glad LIBDIR=/opt/glad/lib64 INCLUDEDIR=/opt/glad/inc > /dev/null 2>&1
check "uninstall with the same paths removes every file" test -z "$(find "$T/s2" ! -type d)"
done_tests
