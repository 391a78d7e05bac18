#!/bin/bash
# synth.sh - the demo dataset, synthesis keys, determinism across threads,
# --as-test, previews, and errors.
. "$(dirname "$0")/lib.sh"
glad-synth --make-dataset "$T/demo" --size 32 --train 6 --test-good 3 --test-defect 2
check "demo: layout" test -d "$T/demo/pill/ground_truth/scratch" -a -d "$T/demo/fabric/train/good"
check "demo: 6 train images per class" test "$(ls "$T/demo/fabric/train/good" | wc -l)" = 6
check "demo: 2 per defect type, with masks" test "$(ls "$T/demo/pill/test/hole" | wc -l)" = 2 -a "$(ls "$T/demo/pill/ground_truth/hole" | wc -l)" = 2
glad-encode "$T/demo" --split test > "$T/test.msgpack"
check "demo: every defect mask is non-empty" test "$(glad-info "$T/test.msgpack" | grep 'label=1' | grep -c 'mask:|u1\[1,32,32\] 0/0\.[0-9]*/1')" = 20
glad-encode "$T/demo" --split train > "$T/train.msgpack"
OMP_NUM_THREADS=1 glad-synth --seed 5 --p 1 "$T/train.msgpack" > "$T/s1.msgpack"
OMP_NUM_THREADS=2 glad-synth --seed 5 --p 1 "$T/train.msgpack" > "$T/s2.msgpack"
check "same bytes with 1 and 2 threads" cmp -s "$T/s1.msgpack" "$T/s2.msgpack"
check "anomalous and synth_mask added" sh -c "glad-info '$T/s1.msgpack' | grep 'fabric/train/good/000' | grep -q 'anomalous:|u1\[3,32,32\].*synth_mask:|u1\[1,32,32\]'"
check "with p=1 most records get an anomaly" test "$(glad-info "$T/s1.msgpack" | grep -c 'synth_mask:|u1\[1,32,32\] 0/0\.[0-9]*/1')" -ge 8
glad-synth --seed 6 --p 1 "$T/train.msgpack" > "$T/s3.msgpack"
check "another seed, other anomalies" sh -c "! cmp -s '$T/s1.msgpack' '$T/s3.msgpack'"
# sharded input gives the same records as unsharded (randomness per record id)
glad-encode "$T/demo" --split train --shard 1/2 | glad-synth --seed 5 --p 1 | glad-info | grep -v '^#' > "$T/sh.txt"
check "shards: same synthesis per record" bash -c "grep -F -f '$T/sh.txt' <(glad-info '$T/s1.msgpack') | wc -l | grep -q '^6$'" 
glad-synth --seed 1 --p 1 --as-test --preview "$T/prev.png" "$T/train.msgpack" > "$T/astest.msgpack"
check "as-test: labels and masks" sh -c "glad-info '$T/astest.msgpack' | grep 'label=1' | grep -q 'mask:|u1\[1,32,32\]'"
check "as-test: no anomalous key" sh -c "! glad-info '$T/astest.msgpack' | grep -q anomalous"
# --defect: the anomalous records' defect name; the rest of each record as without it
glad-synth --seed 1 --p 1 --as-test --defect uneven "$T/train.msgpack" > "$T/named.msgpack"
glad-synth --seed 1 --p 1 --as-test "$T/train.msgpack" > "$T/plain.msgpack"
check "--defect NAME: every anomalous record's defect is NAME, none 'synthetic'" sh -c "glad-info --json '$T/named.msgpack' | grep -q '\"label\":1,\"defect\":\"uneven\"' && ! glad-info --json '$T/named.msgpack' | grep -q '\"defect\":\"synthetic\"'"
check "--defect: the same records otherwise" cmp -s <(glad-info --json "$T/named.msgpack" | tail -n +2 | sed 's/"defect":"uneven"/"defect":"synthetic"/') <(glad-info --json "$T/plain.msgpack" | tail -n +2)
status 2 "--defect without --as-test" glad-synth --defect uneven "$T/train.msgpack"
status 2 "--defect with a space" glad-synth --as-test --defect "a b" "$T/train.msgpack"
status 2 "--defect empty" glad-synth --as-test --defect "" "$T/train.msgpack"
check "preview PNG written" sh -c "head -c 8 '$T/prev.png' | od -An -c | grep -q 'P   N   G'"
check "built-in textures need no files" sh -c "glad-synth --seed 3 '$T/train.msgpack' | glad-info -q"
mkdir -p "$T/tex/a"; cp "$T/demo/fabric/train/good/000.png" "$T/tex/a/t.png"
check "texture folder" sh -c "glad-synth --seed 3 --textures '$T/tex' --p 1 '$T/train.msgpack' | glad-info -q"
status 1 "empty texture folder" glad-synth --textures "$T/demo/nothing" "$T/train.msgpack"
/usr/bin/python3 -c 'import msgpack, msgpack_numpy as m, numpy as np, sys; sys.stdout.buffer.write(msgpack.packb({"glad": 1, "history": []}) + msgpack.packb({"id": "x/1", "label": 0}, default=m.encode))' > "$T/noimg.msgpack" 2>/dev/null
if [ -s "$T/noimg.msgpack" ]; then
    glad-synth "$T/noimg.msgpack" > /dev/null 2> "$T/err"; rc=$?
    check "record without image: exit 1 naming it" sh -c "test $rc = 1 && grep -q \"record 'x/1'\" '$T/err'"
fi
# messages say why (#16)
glad-synth --textures "$T/nowhere" "$T/train.msgpack" > /dev/null 2> "$T/err"; rc=$?
check "--textures missing: exit 1, No such file or directory" sh -c "test $rc = 1 && grep -q 'error: --textures .*nowhere: No such file or directory' '$T/err'"
glad-synth --textures "$T/train.msgpack" "$T/train.msgpack" > /dev/null 2> "$T/err"; rc=$?
check "--textures a file: exit 1, Not a directory" sh -c "test $rc = 1 && grep -q 'train.msgpack: Not a directory' '$T/err'"
ln -s "$T/gone.png" "$T/tex/a/u.png"
glad-synth --textures "$T/tex" "$T/train.msgpack" > /dev/null 2> "$T/err"; rc=$?
check "--textures with a broken link: exit 1 naming it" sh -c "test $rc = 1 && grep -q 'tex/a/u.png: No such file or directory' '$T/err'"
rm "$T/tex/a/u.png"
glad-synth --p 1 --seed 1 --preview "$T/tex" "$T/train.msgpack" > /dev/null 2> "$T/err"; rc=$?
check "--preview a directory: exit 1, Is a directory" sh -c "test $rc = 1 && grep -q 'cannot write the preview: .*tex: Is a directory' '$T/err'"
glad-synth "$T/tex" > /dev/null 2> "$T/err"; rc=$?
check "input a directory: exit 1, Is a directory" sh -c "test $rc = 1 && grep -q 'tex: .*Is a directory' '$T/err'"
touch "$T/plain"
glad-synth --make-dataset "$T/plain/demo" --train 1 --test-good 1 --test-defect 1 2> "$T/err"; rc=$?
check "--make-dataset under a file: exit 1, Not a directory" sh -c "test $rc = 1 && grep -q 'plain/demo: cannot create: Not a directory' '$T/err'"
status 2 "bad --p" glad-synth --p 2 "$T/train.msgpack"
status 2 "bad --fg" glad-synth --fg dim "$T/train.msgpack"
status 2 "bad --family" glad-synth --family perlin "$T/train.msgpack"
# CutPaste's families: labelled synthetic test sets, other anomalies than DRAEM's, deterministic
glad-synth --as-test --p 1 --seed 4 --fg none "$T/train.msgpack" > "$T/fd.msgpack"
glad-synth --as-test --p 1 --seed 4 --fg none --family cutpaste "$T/train.msgpack" > "$T/fc.msgpack"
glad-synth --as-test --p 1 --seed 4 --fg none --family cutpaste "$T/train.msgpack" > "$T/fc2.msgpack"
glad-synth --as-test --p 1 --seed 4 --fg none --family scar "$T/train.msgpack" > "$T/fs.msgpack"
check "--family cutpaste / scar: every record anomalous, deterministic, unlike draem's and each other's" sh -c "
    test \$(glad-info '$T/fc.msgpack' | grep -c 'label=1') = \$(glad-info '$T/train.msgpack' | grep -vc '^#') &&
    cmp -s '$T/fc.msgpack' '$T/fc2.msgpack' && ! cmp -s '$T/fc.msgpack' '$T/fd.msgpack' && ! cmp -s '$T/fc.msgpack' '$T/fs.msgpack'"
# drawn defects: every record anomalous, deterministic, darker where the mask is
# (crack, hole) and unchanged elsewhere, unlike CutPaste's; the mix differs from each
glad-synth --as-test --p 1 --seed 4 --fg none --family crack "$T/train.msgpack" > "$T/fk.msgpack"
glad-synth --as-test --p 1 --seed 4 --fg none --family crack "$T/train.msgpack" > "$T/fk2.msgpack"
glad-synth --as-test --p 1 --seed 4 --fg none --family defect-mix "$T/train.msgpack" > "$T/fm.msgpack"
check "--family crack / defect-mix: every record anomalous, deterministic, unlike CutPaste's and each other's" sh -c "
    test \$(glad-info '$T/fk.msgpack' | grep -c 'label=1') = \$(glad-info '$T/train.msgpack' | grep -vc '^#') &&
    cmp -s '$T/fk.msgpack' '$T/fk2.msgpack' && ! cmp -s '$T/fk.msgpack' '$T/fc.msgpack' && ! cmp -s '$T/fk.msgpack' '$T/fm.msgpack'"
status 2 "unknown demo class" glad-synth --make-dataset "$T/d2" --classes nope
done_tests
