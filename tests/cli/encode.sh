#!/bin/bash
# encode.sh - glad-encode on every dataset layout (small trees built here),
# on ../shared/datasets/mtd-mini when present, and on bad input.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
mk() { $PY "$ROOT/tests/tools/mkpng.py" "$@"; }
count() { glad-info "$1" | grep -vc '^#'; }
field() { glad-info --json "$1" | tail -n +2; }

# MVTec / MPDD: two classes
for c in bottle cable; do
    mkdir -p "$T/mv/$c/train/good" "$T/mv/$c/test/good" "$T/mv/$c/test/crack" "$T/mv/$c/ground_truth/crack"
    for i in 000 001 002; do mk "$T/mv/$c/train/good/$i.png" 20 16 3 grad; done
    mk "$T/mv/$c/test/good/000.png" 20 16 3 noise
    for i in 000 001; do mk "$T/mv/$c/test/crack/$i.png" 20 16 3 noise; mk "$T/mv/$c/ground_truth/crack/${i}_mask.png" 20 16 1 blob; done
done
glad-encode "$T/mv" -o "$T/mv.msgpack"; check "mvtec: exit 0" test $? = 0
check "mvtec: 12 records" test "$(count "$T/mv.msgpack")" = 12
glad-encode "$T/mv" --class cable --split test --size 8x10 -o "$T/cable.msgpack"
check "mvtec: class and split filter" test "$(count "$T/cable.msgpack")" = 3
check "mvtec: ids" sh -c "glad-info '$T/cable.msgpack' | grep -q '^cable/test/crack/001'"
check "mvtec: resized image and mask" sh -c "glad-info '$T/cable.msgpack' | grep 'cable/test/crack/000' | grep -q 'image:|u1\[3,8,10\].*mask:|u1\[1,8,10\] 0/0.[0-9]*/1'"
check "mvtec: normal mask all zero" sh -c "glad-info '$T/cable.msgpack' | grep 'cable/test/good/000' | grep -q 'mask:|u1\[1,8,10\] 0/0/0'"
check "mvtec: class folder as root" test "$(glad-encode "$T/mv/bottle" | glad-info | grep -c '^bottle/')" = 6
glad-encode "$T/mv" --channels 1 --float --crop 12 --size 16 --class bottle -o "$T/f.msgpack"
check "float, grey, crop" sh -c "glad-info '$T/f.msgpack' | grep 'bottle/train/good/000' | grep -q 'image:<f4\[1,12,12\]'"
# --scale: each side times F, rounded half up (20x16 * 0.75 = 15x12, * 0.3 = 6x4.8 -> 6x5); the mask follows
glad-encode "$T/mv" --class cable --split test --scale 0.75 -o "$T/sc.msgpack"
check "--scale 0.75: 16x20 -> 12x15, image and mask" sh -c "glad-info '$T/sc.msgpack' | grep 'cable/test/crack/000' | grep -q 'image:|u1\[3,12,15\].*mask:|u1\[1,12,15\] 0/0.[0-9]*/1'"
glad-encode "$T/mv" --class cable --split test --scale 0.3 -o "$T/sc3.msgpack"
check "--scale 0.3: 16x20 -> 5x6 (4.8 rounds up)" sh -c "glad-info '$T/sc3.msgpack' | grep 'cable/test/good/000' | grep -q 'image:|u1\[3,5,6\].*mask:|u1\[1,5,6\] 0/0/0'"
glad-encode "$T/mv" --class cable --split test --scale 0.5 -o "$T/sc5.msgpack"
glad-encode "$T/mv" --class cable --split test --size 8x10 -o "$T/sz5.msgpack"
check "--scale 0.5 equals --size of the same shape" cmp -s <(glad-info --json "$T/sc5.msgpack" | tail -n +2) <(glad-info --json "$T/sz5.msgpack" | tail -n +2)
status 2 "--scale with --size" glad-encode "$T/mv" --scale 0.5 --size 8
status 2 "--scale 0" glad-encode "$T/mv" --scale 0
mk "$T/big600.png" 600 520 1 grad
glad-encode --format generic --scale 64 "$T/big600.png" > "$T/never.msgpack" 2> "$T/err"; rc=$?
check "--scale past the largest side: exit 1 naming the file and the size" sh -c "test $rc = 1 && grep -q 'big600.png: --scale 64 makes 33280x38400, above 32768 px' '$T/err'"
# sharding: the shards concatenate to the whole
for k in 0 1 2; do glad-encode "$T/mv" --shard $k/3 -o "$T/s$k.msgpack"; done
cat "$T/s0.msgpack" "$T/s1.msgpack" "$T/s2.msgpack" > "$T/all.msgpack"
check "shards: 12 records together" test "$(count "$T/all.msgpack")" = 12
check "shards: same ids" test "$(glad-info "$T/all.msgpack" | grep -v '^#' | cut -f1 | sort | md5sum)" = "$(glad-info "$T/mv.msgpack" | grep -v '^#' | cut -f1 | sort | md5sum)"
OMP_NUM_THREADS=1 glad-encode "$T/mv" > "$T/t1"; OMP_NUM_THREADS=2 glad-encode "$T/mv" > "$T/t2"
check "threads do not change bytes" cmp -s "$T/t1" "$T/t2"
check "limit" test "$(glad-encode "$T/mv" --limit 5 | glad-info | grep -vc '^#')" = 5
check "zstd output" sh -c "glad-encode '$T/mv' --zstd -o '$T/z.msgpack' && head -c 4 '$T/z.msgpack' | od -An -tx1 | grep -q '28 b5 2f fd' && glad-info -q '$T/z.msgpack'"

# BTAD
mkdir -p "$T/bt/01/train/ok" "$T/bt/01/test/ok" "$T/bt/01/test/ko" "$T/bt/01/ground_truth/ko"
mk "$T/bt/01/train/ok/0000.png" 12 12 3 grad; mk "$T/bt/01/test/ok/0001.png" 12 12 3 grad
mk "$T/bt/01/test/ko/0002.png" 12 12 3 noise; mk "$T/bt/01/ground_truth/ko/0002.png" 12 12 1 blob
glad-encode --format btad "$T/bt" -o "$T/bt.msgpack"
check "btad: 3 records, one anomalous with mask" sh -c "test \$(glad-info '$T/bt.msgpack' | grep -c 'label=1.*mask:|u1\[1,12,12\] 0/0.[0-9]*/1') = 1 && test \$(glad-info '$T/bt.msgpack' | grep -vc '^#') = 3"

# VisA
mkdir -p "$T/visa/split_csv" "$T/visa/candle/Data/Images/Normal" "$T/visa/candle/Data/Images/Anomaly" "$T/visa/candle/Data/Masks/Anomaly"
mk "$T/visa/candle/Data/Images/Normal/0000.png" 10 10 3 grad; mk "$T/visa/candle/Data/Images/Normal/0001.png" 10 10 3 grad
mk "$T/visa/candle/Data/Images/Anomaly/000.png" 12 8 3 noise; mk "$T/visa/candle/Data/Masks/Anomaly/000.png" 12 8 1 ids
cat > "$T/visa/split_csv/1cls.csv" <<CSV
object,split,label,image,mask
candle,train,normal,candle/Data/Images/Normal/0000.png,
candle,test,normal,candle/Data/Images/Normal/0001.png,
candle,test,anomaly,candle/Data/Images/Anomaly/000.png,candle/Data/Masks/Anomaly/000.png
CSV
glad-encode --format visa "$T/visa" --split test -o "$T/visa.msgpack"
check "visa: split from csv" test "$(count "$T/visa.msgpack")" = 2
# region ids 1, 2, 3 in three 3x4 blocks of a 12x8 mask: every id is anomalous (36 of 96 pixels)
check "visa: anomaly mask, every region id" sh -c "glad-info '$T/visa.msgpack' | grep 'label=1' | grep -q 'mask:|u1\[1,8,12\] 0/0.375/1'"
echo 'candle,test,anomaly,candle/Data/Images/Anomaly/000.png,candle/Data/Masks/Anomaly/001.png' >> "$T/visa/split_csv/1cls.csv"
glad-encode --format visa "$T/visa" -o "$T/x" 2> "$T/err"; rc=$?
check "visa: an anomaly row whose mask is missing is an error naming both" sh -c "test $rc = 1 && grep -q '1cls.csv:5: .*Anomaly/000.png: its mask .*001.png: No such file or directory' '$T/err'"

# MTD with a list
mkdir -p "$T/mtd/MT_Free/Imgs" "$T/mtd/MT_Crack/Imgs"
for i in a b c; do mk "$T/mtd/MT_Free/Imgs/$i.png" 9 9 1 grad; done
for i in a b c; do mv "$T/mtd/MT_Free/Imgs/$i.png" "$T/mtd/MT_Free/Imgs/$i.jpg" 2>/dev/null; done
# JPEG names holding PNG data are read by content; masks beside
mk "$T/mtd/MT_Crack/Imgs/d.png" 9 9 1 blob; cp "$T/mtd/MT_Free/Imgs/a.jpg" "$T/mtd/MT_Crack/Imgs/d.jpg"
printf 'train MT_Free/Imgs/a.jpg\ntrain MT_Free/Imgs/b.jpg\ntest MT_Free/Imgs/c.jpg\ntest MT_Crack/Imgs/d.jpg\n' > "$T/list.txt"
glad-encode --format mtd "$T/mtd" --split-file "$T/list.txt" --split train -o "$T/mtd.msgpack"
check "mtd: train split from list" test "$(count "$T/mtd.msgpack")" = 2
glad-encode --format mtd "$T/mtd" --split-file "$T/list.txt" --split test -o "$T/mtd2.msgpack"
check "mtd: defect record" sh -c "glad-info '$T/mtd2.msgpack' | grep -q '^mtd/test/crack/d.*label=1'"
printf 'train MT_Free/Imgs/a.jpg\n' > "$T/short.txt"
status 1 "mtd: image absent from the list" glad-encode --format mtd "$T/mtd" --split-file "$T/short.txt" --split train -o "$T/x"
status 0 "mtd: --split all accepts it" glad-encode --format mtd "$T/mtd" --split-file "$T/short.txt" --split all -o "$T/x"

# generic
glad-encode --format generic --normal "$T/mv/bottle/train/good" --anomalous "$T/mv/bottle/test/crack" -o "$T/g.msgpack"
check "generic folders" test "$(count "$T/g.msgpack")" = 5
ls "$T"/mv/cable/train/good/*.png | glad-encode --format generic - -o "$T/g2.msgpack"
check "generic paths on stdin" test "$(count "$T/g2.msgpack")" = 3

# the real MTD subset
if have_shared; then
    glad-encode --format mtd "$SHARED/datasets/mtd-mini" --split-file "$ROOT/datasets/mtd/split.txt" --size 64 -o "$T/mm.msgpack"
    check "mtd-mini: 32 normal" test "$(glad-info "$T/mm.msgpack" | grep -c 'label=0')" = 32
    check "mtd-mini: 10 anomalous with non-empty masks" test "$(glad-info "$T/mm.msgpack" | grep 'label=1' | grep -c 'mask:|u1\[1,64,64\] 0/0.[0-9]*/1')" = 10
    check "mtd-mini: 24 train" test "$(glad-info "$T/mm.msgpack" | grep -c 'split=train')" = 24
else skip "../shared absent: mtd-mini not encoded"; fi

# the pixel budget (#16): a 249 KB PNG declaring 16000x16000 is refused before decoding
mkdir -p "$T/huge/x/train/good"
$PY - "$T/huge/x/train/good/000.png" <<'PY'
import struct, sys, zlib
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
c = zlib.compressobj(9); row = bytes(16001); z = b"".join(c.compress(row) for _ in range(16000)) + c.flush()
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 16000, 16000, 8, 0, 0, 0, 0)) + chunk(b"IDAT", z) + chunk(b"IEND", b""))
PY
glad-encode "$T/huge" -o "$T/x" 2> "$T/err"; rc=$?
check "16000x16000 PNG: exit 1" test $rc = 1
check "16000x16000 PNG: message names the file and its declared size" grep -q "error: .*000.png: 16000x16000 PNG (256000000 pixels) over the limit of 67108864 pixels" "$T/err"
mkdir -p "$T/px/x/train/good"; mk "$T/px/x/train/good/000.png" 20 16 3 grad
status 1 "--max-pixels below the image" glad-encode "$T/px" --max-pixels 319 -o "$T/x"
check "--max-pixels: message" grep -q "20x16 PNG (320 pixels) over the limit of 319 pixels" "$T/.stderr"
status 0 "--max-pixels at the image" glad-encode "$T/px" --max-pixels 320 -o "$T/x"
status 2 "--max-pixels 0" glad-encode "$T/px" --max-pixels 0

# masks: --masks must exist; an anomalous image needs its mask, NAME_mask.png or NAME.png
mkdir -p "$T/gen/normal" "$T/gen/bad" "$T/gen/masks"
mk "$T/gen/normal/n0.png" 12 12 1 grad
for i in a b c; do mk "$T/gen/bad/$i.png" 12 12 1 noise; done
mk "$T/gen/masks/a_mask.png" 12 12 1 blob; mk "$T/gen/masks/b.png" 12 12 1 blob
glad-encode --format generic --normal "$T/gen/normal" --anomalous "$T/gen/bad" --masks "$T/gen/nowhere" -o "$T/x" 2> "$T/err"; rc=$?
check "--masks missing: exit 1, No such file or directory" sh -c "test $rc = 1 && grep -q 'gen/nowhere: No such file or directory' '$T/err'"
glad-encode --format generic --anomalous "$T/gen/bad" --masks "$T/gen/masks" -o "$T/x" 2> "$T/err"; rc=$?
check "generic: image without its mask is an error naming it" sh -c "test $rc = 1 && grep -q 'error: .*gen/bad/c.png: anomalous image without a mask' '$T/err'"
mk "$T/gen/masks/c_mask.png" 12 12 1 blob
glad-encode --format generic --anomalous "$T/gen/bad" --masks "$T/gen/masks" -o "$T/gm.msgpack"
check "generic: NAME_mask.png and NAME.png masks both found" test "$(glad-info "$T/gm.msgpack" | grep -c 'label=1.*mask:|u1\[1,12,12\] 0/0.[0-9]*/1')" = 3
mkdir -p "$T/same/k/train/good" "$T/same/k/test/dent" "$T/same/k/ground_truth/dent"
mk "$T/same/k/train/good/0.png" 8 8 1 grad; mk "$T/same/k/test/dent/0.png" 8 8 1 noise; mk "$T/same/k/ground_truth/dent/0.png" 8 8 1 blob
check "mvtec: a same-name mask is found too" sh -c "glad-encode '$T/same' | glad-info | grep -q 'label=1.*mask:|u1\[1,8,8\] 0/0.[0-9]*/1'"

# paths that are not files say why; broken symbolic links among the images are reported
glad-encode --format generic "$T/gen/normal" -o "$T/x" 2> "$T/err"
check "generic path that is a directory: Is a directory" grep -q "gen/normal: Is a directory" "$T/err"
glad-encode --format generic "$T/gen/nothing.png" -o "$T/x" 2> "$T/err"
check "generic path missing: No such file or directory" grep -q "gen/nothing.png: No such file or directory" "$T/err"
glad-encode --format mtd "$T/mtd" --split-file "$T/gen" -o "$T/x" 2> "$T/err"; rc=$?
check "--split-file a directory: exit 1, Is a directory" sh -c "test $rc = 1 && grep -q 'gen: Is a directory' '$T/err'"
ln -s "$T/gone.png" "$T/gen/normal/n1.png"
glad-encode --format generic --normal "$T/gen/normal" -o "$T/x" 2> "$T/err"; rc=$?
check "broken symlink among the images: exit 1 naming it" sh -c "test $rc = 1 && grep -q 'gen/normal/n1.png: No such file or directory (a broken symbolic link)' '$T/err'"
rm "$T/gen/normal/n1.png"

# --seed: a shuffle from lib/core/rng, the same for the same seed, a permutation of the items
glad-encode --format generic --normal "$T/gen/normal" --anomalous "$T/gen/bad" --masks "$T/gen/masks" --seed 3 > "$T/s3a"
glad-encode --format generic --normal "$T/gen/normal" --anomalous "$T/gen/bad" --masks "$T/gen/masks" --seed 3 > "$T/s3b"
check "--seed: same seed, same bytes" cmp -s "$T/s3a" "$T/s3b"
check "--seed: the same records" test "$(glad-info "$T/s3a" | grep -v '^#' | cut -f1 | sort | md5sum)" = "$(glad-encode --format generic --normal "$T/gen/normal" --anomalous "$T/gen/bad" --masks "$T/gen/masks" | glad-info | grep -v '^#' | cut -f1 | sort | md5sum)"
# Fisher-Yates with glad_rng_below from glad_rng_seed(3, hash "glad_items_shuffle", 0); the old
# xorshift with a modulo gave b a c n0
check "--seed 3 order (core/rng)" test "$(glad-info "$T/s3a" | grep -v '^#' | cut -f1 | tr '\n' ' ')" = "generic/test/anomalous/a generic/test/good/n0 generic/test/anomalous/b generic/test/anomalous/c "

# bad input
cp "$T/mv/bottle/train/good/000.png" "$T/mv/bottle/train/good/zzz.png"; head -c 60 "$T/mv/bottle/train/good/001.png" > "$T/mv/bottle/train/good/zzz.png"
glad-encode "$T/mv" -o "$T/bad.msgpack" 2> "$T/err"; rc=$?
check "corrupt image: exit 1" test $rc = 1
check "corrupt image: one-line message naming the file" sh -c "test \$(wc -l < '$T/err') = 1 && grep -q 'glad-encode: error: .*zzz.png' '$T/err'"
rm "$T/mv/bottle/train/good/zzz.png"
rm "$T/mv/cable/ground_truth/crack/001_mask.png"
status 1 "missing mask" glad-encode "$T/mv" -o "$T/x"
status 1 "missing root" glad-encode "$T/nowhere" -o "$T/x"
status 2 "bad option value" glad-encode --size 0 "$T/mv"
status 2 "bad shard" glad-encode --shard 3/3 "$T/mv"
status 2 "bad format" glad-encode --format nope "$T/mv"
done_tests
