#!/bin/bash
# slurm.sh - recipes/slurm.sh and benchmark.sh --slurm against a real
# single-node Slurm started here: munged, slurmctld and slurmd on localhost from
# a scratch configuration in the test's scratch dir (Debian's slurm-wlm and
# munge), so the job array, the dependency and the merged table are proven for
# real. Skips visibly when Slurm cannot start (not root, packages missing, a
# daemon that does not come up). The daemons are stopped at the end.
. "$(dirname "$0")/lib.sh"
R="$ROOT/recipes"
why=""
[ "$(id -u)" = 0 ] || why="not root (slurmd needs it)"
for p in munged slurmctld slurmd sbatch squeue sinfo scontrol jq; do
    [ -n "$why" ] || command -v "$p" >/dev/null || why="$p missing (apt-get install slurm-wlm munge jq)"
done
if [ -n "$why" ]; then skip "no Slurm: $why"; done_tests; exit $?; fi

S="$T/slurm"
mkdir -p "$S/munge" "$S/state" "$S/spool" "$S/log"
chmod 755 "$S/munge"   # munged: the socket's directory must be searchable
PIDS=()
stop_daemons() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null
    done
    PIDS=()
}
trap 'stop_daemons; rm -rf "$T"' EXIT
# munge: a fresh key and its own socket
dd if=/dev/urandom of="$S/munge/munge.key" bs=1024 count=1 2>/dev/null
chmod 400 "$S/munge/munge.key"
munged -F -f --key-file="$S/munge/munge.key" --socket="$S/munge/sock" --pid-file="$S/munge/pid" \
    --seed-file="$S/munge/seed" --log-file="$S/log/munged.log" > "$S/log/munged.out" 2>&1 &
PIDS+=($!)
# ports from the scratch dir's name, away from the defaults 6817/6818
port=$(( 20000 + $(printf '%s' "$T" | cksum | cut -d' ' -f1) % 20000 ))
host=$(hostname -s)
cpus=$(nproc)
cat > "$S/slurm.conf" <<EOF
ClusterName=gladtest
SlurmctldHost=$host
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$S/munge/sock
CredType=cred/munge
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool
SlurmctldPidFile=$S/slurmctld.pid
SlurmdPidFile=$S/slurmd.pid
SlurmctldLogFile=$S/log/slurmctld.log
SlurmdLogFile=$S/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$host CPUs=$cpus State=UNKNOWN
PartitionName=glad Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$S/slurm.conf"
slurmctld -D -i -f "$SLURM_CONF" > "$S/log/slurmctld.out" 2>&1 &
PIDS+=($!)
slurmd -D -f "$SLURM_CONF" > "$S/log/slurmd.out" 2>&1 &
PIDS+=($!)
up=0
for _ in $(seq 240); do
    state=$(sinfo -h -o %T 2>/dev/null | head -1)
    case "$state" in idle*|mix*|alloc*) up=1; break ;; esac
    sleep 0.5
done
if [ "$up" = 0 ]; then
    skip "Slurm did not come up (node state '${state:-none}'): $(tail -n 2 "$S/log/slurmctld.log" "$S/log/slurmd.log" "$S/log/slurmd.out" 2>/dev/null | tr '\n' ' ' | head -c 400)"
    done_tests; exit $?
fi
ok   # the daemons came up

# wait_jobs ID...: until none of them is queued or running (at most 900 s: a
# safety net only; tests run two at a time and a loaded machine is slow)
wait_jobs() {
    local ids=$(IFS=,; echo "$*") n
    for _ in $(seq 1800); do
        n=$(squeue -h -j "$ids" 2>/dev/null | wc -l)
        [ "$n" = 0 ] && return 0
        sleep 0.5
    done
    return 1
}

# a tiny model and test set
glad-synth --make-dataset "$T/demo" --classes fabric,pill --size 32 --train 6 --test-good 2 --test-defect 1 >/dev/null
glad-encode "$T/demo" --class pill --split train --size 32 | glad-synth --seed 1 > "$T/train.msgpack"
glad-train --preset tiny --loss atp --steps 2 --batch 2 --seed 1 -o "$T/m.model" "$T/train.msgpack" > /dev/null
glad-encode "$T/demo" --class pill --split test --size 32 > "$T/test.msgpack"
DEN=(--steps 100 --skip 50 --seed 1)

# recipes/slurm.sh: an array of 3 shards and a merge job that depends on it
bash "$R/slurm.sh" --model "$T/m.model" --test "$T/test.msgpack" --shards 3 --cpus 1 --time 00:05:00 \
    --out "$T/sl" --backbone unet -- "${DEN[@]}" > "$T/sl.txt" 2> "$T/sl.err"
read -r array merge < <(awk '/^array job/ { gsub("[,;]", ""); print $3, $6 }' "$T/sl.txt")
check "slurm.sh submitted an array and a merge job" test -n "${array:-}" -a -n "${merge:-}"
dep=$(scontrol show job "${merge:-0}" 2>/dev/null | grep -o 'Dependency=[^ ]*')
check "the merge job depends on the array (${dep:-none})" sh -c "echo '$dep' | grep -q 'afterok:${array:-x}'"
wait_jobs "${array:-0}" "${merge:-0}"; check "slurm.sh jobs finished within 900 s" test $? = 0
check "3 shard streams from the array" test "$(ls "$T/sl"/shard*.msgpack 2>/dev/null | wc -l)" = 3
glad-denoise --model "$T/m.model" "${DEN[@]}" "$T/test.msgpack" | glad-features --backbone unet --model "$T/m.model" \
    | glad-score --preset glad | glad-auroc --format markdown > "$T/whole.md"
check "the merged table equals the unsharded run (metric rows)" \
    cmp -s <(sed '/^Pipeline/,$d' "$T/sl/table.md") <(sed '/^Pipeline/,$d' "$T/whole.md")
check "the merge ran after every shard" sh -c "for f in '$T/sl'/shard*.msgpack; do [ ! '$T/sl/table.md' -ot \"\$f\" ] || exit 1; done"

# benchmark.sh --slurm: one array task per class (tune -> train -> evaluate), then the table
bash "$R/benchmark.sh" --slurm --data "$T/demo" --out "$T/bench" --size 32 --steps 2 --batch 2 --tune-grid quick --cpus 1 --time 00:10:00 \
    --backbone unet > "$T/bench.txt" 2> "$T/bench.err"
read -r barray bmerge < <(awk '/^array job/ { gsub("[,;]", ""); print $3, $8 }' "$T/bench.txt")
check "benchmark.sh submitted an array of 2 classes and a merge" sh -c "grep -q '(2 classes)' '$T/bench.txt' && test -n '${bmerge:-}'"
wait_jobs "${barray:-0}" "${bmerge:-0}"; check "benchmark jobs finished within 900 s" test $? = 0
check "benchmark table: fabric, pill and the mean" sh -c "grep -q '^| fabric | [0-9.]* |' '$T/bench/table.md' && grep -q '^| pill | [0-9.]* |' '$T/bench/table.md' && grep -q '^| \*\*mean\*\* |' '$T/bench/table.md'"
check "benchmark table: knobs chosen by tune.sh" grep -q 'chosen per class by recipes/tune.sh' "$T/bench/table.md"
[ -f "$T/bench/table.md" ] || tail -n 5 "$T/bench.err" "$T/bench"/*.log >&2
stop_daemons
check "the daemons stopped" sh -c "! sinfo -h >/dev/null 2>&1"
done_tests
