#!/bin/bash
# bank.sh - glad-bank (a memory bank of normal features) and glad-score --bank
# on a small demo class with the built-in unet backbone: the bank-only map
# works without a reconstruction, a training image scores ~0 against a bank
# that holds it, the modes differ, coreset/subsample sizes, and errors.
. "$(dirname "$0")/lib.sh"
glad-synth --make-dataset "$T/demo" --classes fabric --size 32 --train 6 --test-good 1 --test-defect 2
glad-encode "$T/demo" --split train | glad-train --preset tiny --steps 2 --batch 2 -o "$T/m.model"
glad-encode "$T/demo" --split train | glad-features --model "$T/m.model" --input image --layers 0,1 > "$T/train.f.msgpack"
glad-encode "$T/demo" --split test | glad-denoise --model "$T/m.model" --steps 4 --skip 2 --seed 1 |
    glad-features --model "$T/m.model" --layers 0,1 > "$T/test.f.msgpack"
glad-bank -o "$T/b.safetensors" "$T/train.f.msgpack"
check "bank: one [M,C] matrix per layer (6 images x 32x32 + 16x16 positions)" sh -c \
    "glad-info '$T/train.f.msgpack' >/dev/null && od -An -c -N 400 '$T/b.safetensors' | tr -d ' \n' | grep -q 'bank.0'"
glad-score --bank "$T/b.safetensors" --bank-mode replace --image-score max "$T/test.f.msgpack" > "$T/r.msgpack"
n=$(glad-info "$T/test.f.msgpack" | grep -vc '^#')
check "replace: a map and a score per record" sh -c "test \$(glad-info '$T/r.msgpack' | grep -c 'amap:<f4\[1,32,32\]') = $n"
# a training image against a bank holding it: every position finds itself (distance ~0)
glad-score --bank "$T/b.safetensors" --bank-mode replace --sigma 0 --image-score max "$T/train.f.msgpack" > "$T/self.msgpack"
check "bank replace: its own training images score ~0" sh -c "glad-info --json '$T/self.msgpack' | tail -n +2 | grep -o '\"score\":[-0-9.e]*' | cut -d: -f2 | awk '{ if (\$1 > 1e-5 || \$1 < -1e-5) bad = 1 } END { exit bad + (NR != 6) }'"
glad-score --bank "$T/b.safetensors" --image-score max "$T/test.f.msgpack" > "$T/u.msgpack"
glad-score --bank "$T/b.safetensors" --bank-mode add --image-score max "$T/test.f.msgpack" > "$T/a.msgpack"
glad-score --image-score max "$T/test.f.msgpack" > "$T/n.msgpack"
# field FILE NAME: every record's number NAME, space-separated; sc FILE: the scores
field() { glad-info --json "$1" | tail -n +2 | grep -o "\"$2\":[-0-9.e]*" | cut -d: -f2 | tr '\n' ' '; }
sc() { field "$1" score; }
check "union <= nn and union <= replace, add >= both (scores)" awk -v u="$(sc "$T/u.msgpack")" -v a="$(sc "$T/a.msgpack")" -v n="$(sc "$T/n.msgpack")" -v r="$(sc "$T/r.msgpack")" 'BEGIN {
    split(u, U); split(a, A); split(n, N); split(r, R)
    if (split(u, X) < 3) exit 1
    for (i = 1; i <= length(U); i++) if (U[i] > N[i] + 1e-6 || U[i] > R[i] + 1e-6 || A[i] < N[i] - 1e-6 || A[i] < R[i] - 1e-6 || A[i] <= U[i]) exit 1 }'
glad-bank --layers 1 --subsample 0.5 -o "$T/s.safetensors" "$T/train.f.msgpack"
glad-bank --layers 1 --coreset 0.25 --seed 3 -o "$T/c.safetensors" "$T/train.f.msgpack"
glad-bank --layers 1 --coreset 0.25 --seed 3 -o "$T/c2.safetensors" "$T/train.f.msgpack"
shape() { head -c 400 "$1" | grep -ao '"bank.1":{[^}]*}' | grep -o '"shape":\[[0-9,]*\]'; }
check "subsample 0.5 of 6 x 256 vectors: [768,64]" sh -c "test '$(shape "$T/s.safetensors")' = '\"shape\":[768,64]'"
check "coreset 0.25: [384,64]" sh -c "test '$(shape "$T/c.safetensors")' = '\"shape\":[384,64]'"
check "coreset is deterministic for a seed" cmp -s "$T/c.safetensors" "$T/c2.safetensors"
glad-score --bank "$T/c.safetensors" --bank-mode replace --image-score max "$T/test.f.msgpack" > /dev/null
check "a one-layer coreset bank scores" test $? = 0
# errors
status 2 "--bank-mode without --bank" glad-score --bank-mode replace "$T/test.f.msgpack"
status 2 "unknown --bank-mode" glad-score --bank "$T/b.safetensors" --bank-mode min "$T/test.f.msgpack"
status 2 "glad-bank without -o" glad-bank "$T/train.f.msgpack"
status 2 "--coreset 0" glad-bank --coreset 0 -o "$T/x.safetensors" "$T/train.f.msgpack"
glad-bank -o "$T/t.safetensors" "$T/test.f.msgpack" 2> "$T/err"; rc=$?
check "an anomalous record refused: exit 1 naming record and label" sh -c "test $rc = 1 && grep -q \"glad-bank: error: record '.*': 'label'\" '$T/err' && test ! -e '$T/t.safetensors'"
glad-bank --layers 7 -o "$T/t.safetensors" "$T/train.f.msgpack" 2> "$T/err"; rc=$?
check "a missing layer: exit 1 naming the field, no file" sh -c "test $rc = 1 && grep -q \"'feat.image.7' missing\" '$T/err' && test ! -e '$T/t.safetensors'"
glad-bank -o "$T/t.safetensors" < /dev/null 2> "$T/err"; rc=$?
check "an empty input: exit 1" sh -c "test $rc = 1 && test ! -e '$T/t.safetensors'"
cat "$T/train.f.msgpack" "$T/train.f.msgpack" | glad-bank --max-mb 1 -o "$T/t.safetensors" 2> "$T/err"; rc=$?
check "a bank over --max-mb: exit 1, no file" sh -c "test $rc = 1 && grep -q 'exceed 1 MB' '$T/err' && test ! -e '$T/t.safetensors'"
glad-score --bank "$T/none.safetensors" "$T/test.f.msgpack" > /dev/null 2> "$T/err"; rc=$?
check "a missing bank: exit 1" sh -c "test $rc = 1 && grep -q 'none.safetensors: No such file' '$T/err'"
glad-score --bank "$T/m.model" "$T/test.f.msgpack" > /dev/null 2> "$T/err"; rc=$?
check "a model file as bank: exit 1 'not a glad-bank file'" sh -c "test $rc = 1 && grep -q 'not a glad-bank file' '$T/err'"
glad-score --bank "$T/b.safetensors" "$T/train.f.msgpack" > /dev/null 2> "$T/err"; rc=$?
check "union without a reconstruction: exit 1 naming the field" sh -c "test $rc = 1 && grep -q \"'recon' missing\" '$T/err'"
glad-score --bank "$T/b.safetensors" --bank-mode replace --v 1 "$T/train.f.msgpack" > /dev/null 2> "$T/err"; rc=$?
check "replace with --v 1 and no recon: 'recon' missing" sh -c "test $rc = 1 && grep -q \"'recon' missing\" '$T/err'"
glad-encode "$T/demo" --split train | glad-features --model "$T/m.model" --input image --layers 0 > "$T/l0.msgpack"
glad-score --bank "$T/b.safetensors" --bank-mode replace --layers 1 "$T/l0.msgpack" > /dev/null 2> "$T/err"; rc=$?
check "the bank's layer missing in the record: exit 1" sh -c "test $rc = 1 && grep -q \"'feat.image.1' missing\" '$T/err'"
# every_record FILE PATTERN: FILE has records and each one's JSON line matches
# PATTERN; bank_meta BANK PATTERN: BANK's safetensors header matches PATTERN
every_record() { local n; n=$(glad-info --json "$1" | tail -n +2 | wc -l); test "$n" -gt 0 && test "$(glad-info --json "$1" | tail -n +2 | grep -c "$2")" = "$n"; }
bank_meta() { head -c 300 "$1" | grep -aq "$2"; }
not() { ! "$@"; }
# glad-features --pool K is recorded (feat_pool) and kept in the bank: the same K
# on both sides scores, any other K (or none against a pooled bank) is refused
glad-encode "$T/demo" --split train | glad-features --model "$T/m.model" --input image --layers 1 --pool 3 > "$T/p3.train.msgpack"
glad-encode "$T/demo" --split test | glad-features --model "$T/m.model" --input image --layers 1 --pool 3 > "$T/p3.test.msgpack"
glad-encode "$T/demo" --split test | glad-features --model "$T/m.model" --input image --layers 1 --pool 5 > "$T/p5.test.msgpack"
glad-bank -o "$T/p3.safetensors" "$T/p3.train.msgpack"
check "--pool 3: each record says feat_pool 3" every_record "$T/p3.test.msgpack" '"feat_pool":3}'
check "--pool 3: the bank's metadata says pool 3" bank_meta "$T/p3.safetensors" '"pool":"3"'
check "an unpooled bank has no pool metadata (its file as before)" not bank_meta "$T/b.safetensors" '"pool"'
status 0 "pooled features against the bank pooled alike" glad-score --bank "$T/p3.safetensors" --bank-mode replace "$T/p3.test.msgpack"
status 1 "pool 5 features against a pool-3 bank" glad-score --bank "$T/p3.safetensors" --bank-mode replace "$T/p5.test.msgpack"
check "... names the record, feat_pool and both K" grep -q "glad-score: error: record 'fabric/test/.*': 'feat_pool' is 5 but the bank's features were pooled with 3" "$T/.stderr"
glad-score --bank "$T/p3.safetensors" --bank-mode replace --layers 1 "$T/train.f.msgpack" > /dev/null 2> "$T/err"; rc=$?
check "... exit 1: 'feat_pool' absent but the bank's pooled with 3" sh -c "test $rc = 1 && grep -q \"'feat_pool' absent (features not pooled) but the bank's were pooled with 3\" '$T/err'"
glad-score --bank "$T/b.safetensors" --bank-mode replace --layers 1 "$T/p3.test.msgpack" > /dev/null 2> "$T/err"; rc=$?
check "pooled features against an unpooled bank: exit 1" sh -c "test $rc = 1 && grep -q \"'feat_pool' is 3 but the bank's features were not pooled\" '$T/err'"
glad-features --model "$T/m.model" --input image --layers 1 "$T/p3.test.msgpack" > "$T/p1again.msgpack"
check "features again without --pool: feat_pool dropped with the pooled maps" sh -c "! glad-info --json '$T/p1again.msgpack' | grep -q feat_pool"
glad-encode "$T/demo" --split train | glad-features --model "$T/m.model" --input image --layers 1 > "$T/p1.train.msgpack"
# whole-image Gaussians (glad-bank --global): fitted on the 6 training images'
# mean vectors of layer 0, stored as F64 beside the bank; glad-score writes
# score_global and adds --global-weight W times it to the map's score
glad-bank --layers 1 --global 0 -o "$T/g.safetensors" "$T/train.f.msgpack"
check "--global 0: gauss.0.mean/prec/scale as F64, metadata global" sh -c "head -c 800 '$T/g.safetensors' | grep -aq '\"gauss.0.prec\":{\"dtype\":\"F64\"' && head -c 800 '$T/g.safetensors' | grep -aq '\"global\":\"0\"'"
check "a bank without --global has no gauss tensors (its file as before)" sh -c "! head -c 800 '$T/b.safetensors' | grep -aq 'gauss'"
glad-score --bank "$T/g.safetensors" --bank-mode replace --layers 1 --image-score max "$T/test.f.msgpack" > "$T/g0.msgpack"
glad-score --bank "$T/g.safetensors" --bank-mode replace --layers 1 --image-score max --global-weight 0.5 "$T/test.f.msgpack" > "$T/g5.msgpack"
glad-score --rescore --image-score max --global-weight 2 "$T/g0.msgpack" > "$T/g2.msgpack"
check "score_global on every record, positive; W 0.5 adds half of it, --rescore W 2 twice" awk -v s0="$(field "$T/g0.msgpack" score)" \
    -v s5="$(field "$T/g5.msgpack" score)" -v s2="$(field "$T/g2.msgpack" score)" -v g="$(field "$T/g0.msgpack" score_global)" 'BEGIN {
    n = split(s0, A); split(s5, B); split(s2, R); if (split(g, G) != n || n < 3) exit 1
    for (i = 1; i <= n; i++) { d = B[i] - A[i] - 0.5 * G[i]; e = R[i] - A[i] - 2 * G[i]
        if (G[i] <= 0 || d > 1e-6 || d < -1e-6 || e > 1e-6 || e < -1e-6) exit 1 } }'
glad-score --bank "$T/g.safetensors" --bank-mode replace --layers 1 --sigma 0 --image-score max "$T/train.f.msgpack" > "$T/gtrain.msgpack"
check "the training images' score_global: median 1 (the scale)" sh -c "printf '%s\\n' $(field "$T/gtrain.msgpack" score_global) | sort -g |
    awk '{ v[NR] = \$1 } END { m = (v[3] + v[4]) / 2; exit !(NR == 6 && m > 0.999999 && m < 1.000001) }'"
status 2 "--global-weight without --bank or --rescore" glad-score --global-weight 1 "$T/test.f.msgpack"
status 2 "--global-weight with a bank without Gaussians" glad-score --bank "$T/b.safetensors" --bank-mode replace --global-weight 1 "$T/test.f.msgpack"
check "... says so" grep -q "has no whole-image Gaussian (glad-bank --global LAYERS)" "$T/.stderr"
status 2 "--global-weight -1" glad-score --bank "$T/g.safetensors" --global-weight -1 "$T/test.f.msgpack"
status 1 "--rescore --global-weight on records without score_global" glad-score --rescore --global-weight 1 "$T/r.msgpack"
check "... names the record and score_global" grep -q "glad-score: error: record 'fabric/test/.*': 'score_global' missing" "$T/.stderr"
status 1 "the Gaussian's layer missing in the record" glad-score --bank "$T/g.safetensors" --bank-mode replace --layers 1 "$T/p1.train.msgpack"
check "... names the record and the field" grep -q "record 'fabric/train/.*': 'feat.image.0' missing (the bank's whole-image Gaussian" "$T/.stderr"
glad-bank --layers 1 --global 0 -o "$T/g1.safetensors" "$T/p1.train.msgpack" 2> "$T/err"; rc=$?
check "--global on a layer the records lack: exit 1 naming the field, no file" sh -c "test $rc = 1 && grep -q \"'feat.image.0' missing (--global 0\" '$T/err' && test ! -e '$T/g1.safetensors'"
status 2 "--global 0,0" glad-bank --global 0,0 -o "$T/g1.safetensors" "$T/train.f.msgpack"
cat "$T/p3.train.msgpack" "$T/p1.train.msgpack" | glad-bank -o "$T/mixed.safetensors" 2> "$T/err"; rc=$?
check "a bank of mixed pooling refused: exit 1 naming feat_pool, no file" sh -c "test $rc = 1 && grep -q \"'feat_pool' is 1, the first record's 3\" '$T/err' && test ! -e '$T/mixed.safetensors'"
# glad-features --standardize S is recorded (feat_standardize) and kept in the
# bank: the same S on both sides scores, another S (or none) is refused; and it
# changes the features (each image to mean 0, std S before the backbone)
glad-encode "$T/demo" --split train | glad-features --model "$T/m.model" --input image --layers 1 --standardize 0.8 > "$T/s8.train.msgpack"
glad-encode "$T/demo" --split test | glad-features --model "$T/m.model" --input image --layers 1 --standardize 0.8 > "$T/s8.test.msgpack"
glad-encode "$T/demo" --split test | glad-features --model "$T/m.model" --input image --layers 1 --standardize 0.5 > "$T/s5.test.msgpack"
glad-bank -o "$T/s8.safetensors" "$T/s8.train.msgpack"
check "--standardize 0.8: each record says feat_standardize 0.8" every_record "$T/s8.test.msgpack" '"feat_standardize":0.80000000000000004[,}]'
check "--standardize 0.8: the bank's metadata says standardize 0.8" bank_meta "$T/s8.safetensors" '"standardize":"0.80000000000000004"'
check "a bank of unstandardised images has no standardize metadata (its file as before)" not bank_meta "$T/b.safetensors" standardize
check "--standardize changes the features" sh -c "! cmp -s '$T/s8.test.msgpack' '$T/s5.test.msgpack'"
status 0 "standardised features against the bank standardised alike" glad-score --bank "$T/s8.safetensors" --bank-mode replace "$T/s8.test.msgpack"
status 1 "S 0.5 features against an S 0.8 bank" glad-score --bank "$T/s8.safetensors" --bank-mode replace "$T/s5.test.msgpack"
check "... names the record, feat_standardize and both S" grep -q "glad-score: error: record 'fabric/test/.*': 'feat_standardize' is 0.5 but the bank's images were standardised with 0.8" "$T/.stderr"
status 1 "unstandardised features against an S 0.8 bank" glad-score --bank "$T/s8.safetensors" --bank-mode replace --layers 1 "$T/p1.train.msgpack"
check "... says 'feat_standardize' absent" grep -q "'feat_standardize' absent (images not standardised) but the bank's images were standardised with 0.8" "$T/.stderr"
status 1 "standardised features against an unstandardised bank" glad-score --bank "$T/b.safetensors" --bank-mode replace --layers 1 "$T/s8.test.msgpack"
check "... says the bank's were not" grep -q "'feat_standardize' is 0.8 but the bank's images were not standardised" "$T/.stderr"
cat "$T/s8.train.msgpack" "$T/p1.train.msgpack" | glad-bank -o "$T/mixeds.safetensors" 2> "$T/err"; rc=$?
check "a bank of mixed standardisation refused: exit 1 naming feat_standardize, no file" sh -c "test $rc = 1 && grep -q \"'feat_standardize' absent (images not standardised) but the first record's images were standardised with 0.8\" '$T/err' && test ! -e '$T/mixeds.safetensors'"
glad-features --model "$T/m.model" --input image --layers 1 "$T/s8.test.msgpack" > "$T/s0again.msgpack"
check "features again without --standardize: feat_standardize dropped" sh -c "! glad-info --json '$T/s0again.msgpack' | grep -q feat_standardize"
for v in 0 -1 9 nan x; do status 2 "--standardize $v" glad-features --model "$T/m.model" --input image --layers 1 --standardize "$v" "$T/p1.train.msgpack"; done
# --standardize-tail tanh|open: recorded (feat_standardize_tail), kept in the bank,
# another tail (or the clamp) refused on either side; clip is the default, unrecorded
glad-encode "$T/demo" --split train | glad-features --model "$T/m.model" --input image --layers 1 --standardize 0.8 --standardize-tail tanh > "$T/s8t.train.msgpack"
glad-encode "$T/demo" --split test | glad-features --model "$T/m.model" --input image --layers 1 --standardize 0.8 --standardize-tail tanh > "$T/s8t.test.msgpack"
glad-encode "$T/demo" --split test | glad-features --model "$T/m.model" --input image --layers 1 --standardize 0.8 --standardize-tail clip > "$T/s8c.test.msgpack"
glad-bank -o "$T/s8t.safetensors" "$T/s8t.train.msgpack"
check "--standardize-tail tanh: each record says feat_standardize_tail tanh" every_record "$T/s8t.test.msgpack" '"feat_standardize_tail":"tanh"'
check "--standardize-tail tanh: the bank's metadata says standardize_tail tanh" bank_meta "$T/s8t.safetensors" '"standardize_tail":"tanh"'
check "--standardize-tail clip is the default: the same records as without it (their tensors' statistics)" sh -c "glad-info --json '$T/s8c.test.msgpack' | sed 1d > '$T/s8c.j' && glad-info --json '$T/s8.test.msgpack' | sed 1d > '$T/s8.j' && cmp -s '$T/s8c.j' '$T/s8.j' && test -s '$T/s8.j'"
check "a bank of the clamp has no standardize_tail metadata (its file as before)" not bank_meta "$T/s8.safetensors" standardize_tail
check "--standardize-tail tanh changes the features" sh -c "! cmp -s '$T/s8t.test.msgpack' '$T/s8.test.msgpack'"
status 0 "tanh-tailed features against the bank tailed alike" glad-score --bank "$T/s8t.safetensors" --bank-mode replace "$T/s8t.test.msgpack"
status 1 "clamped features against a tanh-tailed bank" glad-score --bank "$T/s8t.safetensors" --bank-mode replace "$T/s8.test.msgpack"
check "... names the record, feat_standardize_tail and both tails" grep -q "glad-score: error: record 'fabric/test/.*': 'feat_standardize_tail' is clip but the bank's images' tail was tanh" "$T/.stderr"
status 1 "tanh-tailed features against a clamped bank" glad-score --bank "$T/s8.safetensors" --bank-mode replace "$T/s8t.test.msgpack"
check "... says so" grep -q "'feat_standardize_tail' is tanh but the bank's images' tail was clip" "$T/.stderr"
cat "$T/s8.train.msgpack" "$T/s8t.train.msgpack" | glad-bank -o "$T/mixedt.safetensors" 2> "$T/err"; rc=$?
check "a bank of mixed tails refused: exit 1 naming feat_standardize_tail, no file" sh -c "test $rc = 1 && grep -q \"'feat_standardize_tail' is tanh but the first record's images' tail was clip\" '$T/err' && test ! -e '$T/mixedt.safetensors'"
glad-features --model "$T/m.model" --input image --layers 1 --standardize 0.8 "$T/s8t.test.msgpack" > "$T/s8again.msgpack"
check "features again with the clamp: feat_standardize_tail dropped" sh -c "! glad-info --json '$T/s8again.msgpack' | grep -q feat_standardize_tail"
status 2 "--standardize-tail without --standardize" glad-features --model "$T/m.model" --input image --layers 1 --standardize-tail tanh "$T/p1.train.msgpack"
status 2 "--standardize-tail soft" glad-features --model "$T/m.model" --input image --layers 1 --standardize 0.8 --standardize-tail soft "$T/p1.train.msgpack"
# --standardize-tail clip,tanh: both tails' features in one stream (tanh's as 1~tanh),
# banked as layers of their own; glad-score makes each tail's map as a stream of
# that tail alone would and takes their pixel-wise maximum
glad-encode "$T/demo" --split train | glad-features --model "$T/m.model" --input image --layers 1 --standardize 0.8 --standardize-tail clip,tanh > "$T/s8ct.train.msgpack"
glad-encode "$T/demo" --split test | glad-features --model "$T/m.model" --input image --layers 1 --standardize 0.8 --standardize-tail clip,tanh > "$T/s8ct.test.msgpack"
glad-bank --radius 0.5 -o "$T/s8ct.safetensors" "$T/s8ct.train.msgpack"
glad-bank --radius 0.5 -o "$T/s8r.safetensors" "$T/s8.train.msgpack"
glad-bank --radius 0.5 -o "$T/s8tr.safetensors" "$T/s8t.train.msgpack"
# tensor STREAM NAME [AS]: every record's summary of tensor NAME (glad-info --json), named AS
tensor() { glad-info --json "$1" | sed 1d | grep -o "\"$2\":{[^}]*}" | sed "s/^\"$2\"/\"${3:-$2}\"/"; }
# same_tensor A NAME_A B NAME_B: both streams' tensors alike in every record (and some)
same_tensor() { local x; x=$(tensor "$1" "$2" X); test -n "$x" && test "$x" = "$(tensor "$3" "$4" X)"; }
same_scores() { local x; x=$(sc "$1"); test -n "$x" && test "$x" = "$(sc "$2")"; }
check "clip,tanh: feat.image.1 as with the clamp alone" same_tensor "$T/s8ct.test.msgpack" feat.image.1 "$T/s8.test.msgpack" feat.image.1
check "clip,tanh: feat.image.1~tanh as feat.image.1 with tanh alone" same_tensor "$T/s8ct.test.msgpack" 'feat.image.1~tanh' "$T/s8t.test.msgpack" feat.image.1
check "clip,tanh: each record says feat_standardize_tail clip,tanh" every_record "$T/s8ct.test.msgpack" '"feat_standardize_tail":"clip,tanh"'
check "clip,tanh: the bank says standardize_tail clip,tanh" bank_meta "$T/s8ct.safetensors" '"standardize_tail":"clip,tanh"'
check "clip,tanh: the bank has layers 1 and 1~tanh" bank_meta "$T/s8ct.safetensors" '"layers":"1,1~tanh"'
# stat FILE NAME: every record's min, mean and max of tensor NAME, space-separated
stat3() { tensor "$1" "$2" | grep -o '"m[a-z]*":[-0-9.e]*' | cut -d: -f2 | tr '\n' ' '; }
# amap's max is the larger of the two maps' maxima, its mean at least either's
# and above both somewhere (else the maximum would be one tail's map)
max_of_tails() {
    awk -v a="$(stat3 "$1" amap)" -v c="$(stat3 "$2" amap)" -v t="$(stat3 "$3" amap)" 'BEGIN {
        n = split(a, A); split(c, C); split(t, U)
        if (n < 9 || n % 3) exit 1
        for (i = 1; i <= n; i += 3) {
            if (A[i+2] != (C[i+2] > U[i+2] ? C[i+2] : U[i+2]) || A[i+1] < C[i+1] - 1e-6 || A[i+1] < U[i+1] - 1e-6) exit 1
            if (A[i+1] > C[i+1] + 1e-6 && A[i+1] > U[i+1] + 1e-6) above++ }
        exit !above }'
}
for r in max topk-mean:20; do
    glad-score --bank "$T/s8ct.safetensors" --bank-mode replace --bank-norm ratio --image-score $r --keep-parts "$T/s8ct.test.msgpack" > "$T/ct.msgpack"
    glad-score --bank "$T/s8r.safetensors" --bank-mode replace --bank-norm ratio --image-score $r "$T/s8.test.msgpack" > "$T/c1.msgpack"
    glad-score --bank "$T/s8tr.safetensors" --bank-mode replace --bank-norm ratio --image-score $r "$T/s8t.test.msgpack" > "$T/t1.msgpack"
    check "clip,tanh ($r): amap.clip is the clamp's map alone" same_tensor "$T/ct.msgpack" amap.clip "$T/c1.msgpack" amap
    check "clip,tanh ($r): amap.tanh is tanh's map alone" same_tensor "$T/ct.msgpack" amap.tanh "$T/t1.msgpack" amap
    check "clip,tanh ($r): amap is their pixel-wise maximum (max, mean)" max_of_tails "$T/ct.msgpack" "$T/c1.msgpack" "$T/t1.msgpack"
done
check "clip,tanh (topk-mean): each score at least either tail's" awk -v a="$(sc "$T/ct.msgpack")" -v c="$(sc "$T/c1.msgpack")" -v t="$(sc "$T/t1.msgpack")" 'BEGIN {
    n = split(a, A); split(c, C); split(t, U); if (n < 3) exit 1
    for (i = 1; i <= n; i++) if (A[i] < C[i] - 1e-6 || A[i] < U[i] - 1e-6) exit 1 }'
glad-score --bank "$T/s8ct.safetensors" --bank-mode replace --bank-norm ratio --image-score max "$T/s8ct.test.msgpack" > "$T/ct.msgpack"
glad-score --bank "$T/s8r.safetensors" --bank-mode replace --bank-norm ratio --image-score max "$T/s8.test.msgpack" > "$T/c1.msgpack"
glad-score --bank "$T/s8tr.safetensors" --bank-mode replace --bank-norm ratio --image-score max "$T/s8t.test.msgpack" > "$T/t1.msgpack"
check "clip,tanh (max): each score is the larger of the two tails' scores" awk -v a="$(sc "$T/ct.msgpack")" -v c="$(sc "$T/c1.msgpack")" -v t="$(sc "$T/t1.msgpack")" 'BEGIN {
    n = split(a, A); split(c, C); split(t, U); if (n < 3) exit 1
    for (i = 1; i <= n; i++) if (A[i] != (C[i] > U[i] ? C[i] : U[i])) exit 1 }'
glad-score --bank "$T/s8ct.safetensors" --bank-mode replace --bank-norm ratio --image-score max --layers '1~tanh' "$T/s8ct.test.msgpack" > "$T/only-t.msgpack"
check "--layers 1~tanh: the tanh tail's map alone" same_scores "$T/only-t.msgpack" "$T/t1.msgpack"
status 1 "clip,tanh features against a bank of the clamp alone" glad-score --bank "$T/s8r.safetensors" --bank-mode replace "$T/s8ct.test.msgpack"
check "... names the record, feat_standardize_tail and both" grep -q "glad-score: error: record 'fabric/test/.*': 'feat_standardize_tail' is clip,tanh but the bank's images' tail was clip" "$T/.stderr"
# features again with the clamp alone over a clip,tanh stream: its feat.image.1~tanh is
# stale (feat_standardize_tail no longer lists tanh), refused rather than banked or scored
glad-features --model "$T/m.model" --input image --layers 1 --standardize 0.8 "$T/s8ct.train.msgpack" > "$T/stale.train.msgpack"
glad-features --model "$T/m.model" --input image --layers 1 --standardize 0.8 "$T/s8ct.test.msgpack" > "$T/stale.test.msgpack"
status 1 "glad-bank: a stale 1~tanh layer" glad-bank -o "$T/stale.safetensors" "$T/stale.train.msgpack"
check "... names the record, feat_standardize_tail and the layer; no file" sh -c "grep -q \"glad-bank: error: record 'fabric/train/.*': 'feat_standardize_tail' does not list the tail of layer '1~tanh'\" '$T/.stderr' && test ! -e '$T/stale.safetensors'"
glad-score --bank "$T/s8r.safetensors" --bank-mode replace --bank-norm ratio --image-score max "$T/stale.test.msgpack" > "$T/stale.scored.msgpack"
check "glad-score: a bank of the clamp alone scores it as the clamp's stream (the stale layer not the bank's)" same_scores "$T/stale.scored.msgpack" "$T/c1.msgpack"
status 1 "glad-score: a bank of both tails against it" glad-score --bank "$T/s8ct.safetensors" --bank-mode replace "$T/stale.test.msgpack"
check "... names the record, feat_standardize_tail and the layer" grep -q "glad-score: error: record 'fabric/test/.*': 'feat_standardize_tail' does not list the tail of layer '1~tanh'" "$T/.stderr"
status 2 "--standardize-tail tanh,tanh" glad-features --model "$T/m.model" --input image --layers 1 --standardize 0.8 --standardize-tail tanh,tanh "$T/p1.train.msgpack"
status 2 "--standardize-tail clip," glad-features --model "$T/m.model" --input image --layers 1 --standardize 0.8 --standardize-tail clip, "$T/p1.train.msgpack"
# more feature layers than a bank holds (48), without --layers: refused, not cut
if /usr/bin/python3 -c 'import msgpack_numpy' 2>/dev/null; then
    /usr/bin/python3 - "$T/many.msgpack" <<'PYEOF'
import sys, numpy as np
sys.path.insert(0, "formats/python")
from gladstream import write
r = {"id": "c/train/good/0", "class": "c", "split": "train", "label": 0, "defect": "good"}
for k in range(49):
    r[f"feat.image.{k}"] = np.ones((4, 2, 2), np.float32)
write(sys.argv[1], {"glad": 1, "history": []}, [r])
PYEOF
    status 1 "49 feature layers without --layers" glad-bank -o "$T/many.safetensors" "$T/many.msgpack"
    check "... says so, names the record, leaves no file" sh -c "grep -q \"c/train/good/0.*more than 48\" '$T/.stderr' && test ! -e '$T/many.safetensors'"
    glad-bank --layers 3,16 -o "$T/two.safetensors" "$T/many.msgpack"
    check "... two of them chosen with --layers: a bank" test -s "$T/two.safetensors"
    # a feat_pool or feat_standardize that glad-features cannot have written:
    # refused by glad-bank, naming the record and the field
    for kv in feat_pool=4 'feat_pool="3"' feat_standardize=0 feat_standardize=9 'feat_standardize="0.8"' 'feat_standardize_tail="soft"' feat_standardize_tail=1; do
        k=${kv%%=*} v=${kv#*=}
        /usr/bin/python3 - "$T/badfield.msgpack" "$k" "$v" <<'PYEOF'
import json, sys, numpy as np
sys.path.insert(0, "formats/python")
from gladstream import write
r = {"id": "c/train/good/0", "class": "c", "split": "train", "label": 0, "defect": "good",
     sys.argv[2]: json.loads(sys.argv[3]), "feat.image.1": np.ones((4, 2, 2), np.float32)}
write(sys.argv[1], {"glad": 1, "history": []}, [r])
PYEOF
        status 1 "$k $v refused by glad-bank" glad-bank -o "$T/badfield.safetensors" "$T/badfield.msgpack"
        check "... naming the record and $k, no file" sh -c "grep -q \"record 'c/train/good/0': '$k' is \" '$T/.stderr' && test ! -e '$T/badfield.safetensors'"
    done
else skip "python3-msgpack-numpy not installed: the 17-layer, feat_pool and feat_standardize refusals not checked"; fi
# radii (glad-bank --radius, glad-score --bank-norm): every vector's distance to
# the nearest vector of another training image, stored beside the bank and read
# by the norms; a training image against the bank that holds it scores 0 - r <= 0
# with diff (its nearest vector is itself), a test image differs from none
glad-bank --layers 1 --radius 1 -o "$T/r1.safetensors" "$T/train.f.msgpack"
glad-bank --layers 1 --radius 0.25 --seed 4 -o "$T/rq.safetensors" "$T/train.f.msgpack"
glad-bank --layers 1 --radius 0.25 --seed 4 -o "$T/rq2.safetensors" "$T/train.f.msgpack"
check "--radius 1: radius.1 F32 [1536], metadata radius 1" sh -c "head -c 800 '$T/r1.safetensors' | grep -aq '\"radius.1\":{\"dtype\":\"F32\",\"shape\":\[1536\]' && head -c 800 '$T/r1.safetensors' | grep -aq '\"radius\":\"1\"'"
check "radii are deterministic for a seed" cmp -s "$T/rq.safetensors" "$T/rq2.safetensors"
check "a bank without --radius has no radius tensor" sh -c "! head -c 800 '$T/s.safetensors' | grep -aq 'radius'"
glad-score --bank "$T/r1.safetensors" --bank-mode replace --layers 1 --sigma 0 --image-score max --bank-norm diff "$T/train.f.msgpack" > "$T/rd.msgpack"
check "diff: the training images score at most 0 against their own bank" awk -v s="$(field "$T/rd.msgpack" score)" 'BEGIN { n = split(s, S); if (n != 6) exit 1; for (i = 1; i <= n; i++) if (S[i] > 1e-6) exit 1 }'
for nm in none ratio diff; do
    glad-score --bank "$T/r1.safetensors" --bank-mode replace --layers 1 --image-score max --bank-norm $nm "$T/test.f.msgpack" > "$T/rn-$nm.msgpack"
done
check "none, ratio and diff give three different scores on the test images" awk -v a="$(field "$T/rn-none.msgpack" score)" -v b="$(field "$T/rn-ratio.msgpack" score)" -v c="$(field "$T/rn-diff.msgpack" score)" 'BEGIN {
    n = split(a, A); split(b, B); split(c, C); if (n < 3) exit 1
    for (i = 1; i <= n; i++) if (A[i] == B[i] || A[i] == C[i] || B[i] == C[i] || C[i] > A[i]) exit 1 }'
check "--bank-norm none is the bank as before" cmp -s <(glad-info --json "$T/rn-none.msgpack" | tail -n +2 | grep -o '"score":[-0-9.e]*') \
    <(glad-score --bank "$T/r1.safetensors" --bank-mode replace --layers 1 --image-score max "$T/test.f.msgpack" | glad-info --json - | tail -n +2 | grep -o '"score":[-0-9.e]*')
glad-score --bank "$T/r1.safetensors" --layers 1 --bank-mode add --bank-norm ratio --image-score max "$T/test.f.msgpack" > /dev/null
check "a norm with --bank-mode add scores" test $? = 0
status 2 "--bank-norm without --bank" glad-score --bank-norm ratio "$T/test.f.msgpack"
status 2 "--bank-norm with a bank without radii" glad-score --bank "$T/s.safetensors" --bank-mode replace --bank-norm diff "$T/test.f.msgpack"
check "... says so" grep -q "the bank .*s.safetensors has no radii (glad-bank --radius F)" "$T/.stderr"
status 2 "unknown --bank-norm" glad-score --bank "$T/r1.safetensors" --bank-mode replace --bank-norm rank "$T/test.f.msgpack"
status 2 "--radius 0" glad-bank --radius 0 -o "$T/x.safetensors" "$T/train.f.msgpack"
status 2 "--radius 2" glad-bank --radius 2 -o "$T/x.safetensors" "$T/train.f.msgpack"
glad-encode "$T/demo" --split train --shard 0/6 | glad-features --model "$T/m.model" --input image --layers 1 > "$T/one.f.msgpack"
check "one training image in the shard" sh -c "test \$(glad-info '$T/one.f.msgpack' | grep -vc '^#') = 1"
status 1 "--radius on one image's bank" glad-bank --layers 1 --radius 1 -o "$T/one-r.safetensors" "$T/one.f.msgpack"
check "... says why, no file" sh -c "grep -q \"error: .*layer '1': no reference vector of another image\" '$T/.stderr' && test ! -e '$T/one-r.safetensors'"
done_tests
