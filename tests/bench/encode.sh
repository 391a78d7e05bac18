#!/bin/sh
# encode.sh - glad-encode throughput: >= 2000 images at 256x256 (mtd-mini
# repeated through the generic path list), 1 and 2 threads, and the speed-up.
SHARED=${GLAD_SHARED:-../shared}
if [ ! -d "$SHARED/datasets/mtd-mini" ]; then echo "   skipped: $SHARED/datasets/mtd-mini absent"; exit 0; fi
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
ls "$SHARED"/datasets/mtd-mini/MT_*/Imgs/*.jpg > "$T/one"
: > "$T/list"; n=0
while [ "$n" -lt 2000 ]; do cat "$T/one" >> "$T/list"; n=$(wc -l < "$T/list"); done
# repeated paths make repeated ids: fine for a throughput test
rate() {
    s=$(date +%s.%N)
    OMP_NUM_THREADS=$1 glad-encode --format generic --size 256 --channels 3 - < "$T/list" > /dev/null
    e=$(date +%s.%N)
    echo "$n $s $e" | awk '{printf "%.1f", $1 / ($3 - $2)}'
}
r1=$(rate 1); r2=$(rate 2)
echo "   glad-encode $n images at 256x256: 1 thread $r1 img/s, 2 threads $r2 img/s, speed-up $(echo "$r1 $r2" | awk '{printf "%.2f", $2 / $1}')x"
