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
# sd_folder DIR PROMPT [bin]: a tiny diffusers-like Stable Diffusion folder made
# from the sd-unet / sd-vae fixtures (DIR/unet, DIR/vae with config.json and
# diffusion_pytorch_model.*, DIR/scheduler) and glad-latent's two prompt
# embeddings (PROMPT, safetensors with ctx_uncond / ctx_text) for convert.py sd.
# Default: safetensors files (numpy only), the scheduler of glad-latent.case.
# "bin": as the SD-v1-4 hub folder was written before diffusers v0.20, the UNet
# as a pickled torch .bin and the VAE under the old attention names
# (query/key/value/proj_attn), the hub's scheduler_config.json (needs torch).
sd_folder() {
  /usr/bin/python3 - "$SHARED/fixtures" "$@" <<'PY'
import sys, os, json, struct, numpy as np
F, D, E = sys.argv[1:4]; old_style = sys.argv[4:] == ["bin"]
def rd(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n]); m = h.pop("__metadata__")
    dt = {"F32": "<f4", "F64": "<f8", "I64": "<i8"}
    return {k: np.frombuffer(b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], dt[v["dtype"]]).reshape(v["shape"]).copy() for k, v in h.items()}, m
def wr(p, t, meta=None):
    h, blobs, off = {}, [], 0
    for k, a in t.items():
        b = np.ascontiguousarray(a, "<f4").tobytes(); h[k] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}; blobs.append(b); off += len(b)
    if meta: h["__metadata__"] = meta
    js = json.dumps(h).encode()
    with open(p, "wb") as f: f.write(struct.pack("<Q", len(js)) + js + b"".join(blobs))
c, cm = rd(F + "/glad-latent.case.safetensors")
for part in ("unet", "vae"):
    t, m = rd(f"{F}/sd-{part}.weights.safetensors")
    os.makedirs(f"{D}/{part}", exist_ok=True)
    open(f"{D}/{part}/config.json", "w").write(m["config"])
    if not old_style:
        wr(f"{D}/{part}/diffusion_pytorch_model.safetensors", t)
    elif part == "unet":
        import torch
        torch.save({k: torch.from_numpy(a) for k, a in t.items()}, f"{D}/unet/diffusion_pytorch_model.bin")
    else:
        old = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}
        def oldname(k):
            for n, o in old.items():
                if f".attentions.0.{n}." in k: return k.replace(f".{n}.", f".{o}.")
            return k
        wr(f"{D}/vae/diffusion_pytorch_model.safetensors", {oldname(k): a for k, a in t.items()})
os.makedirs(f"{D}/scheduler", exist_ok=True)
if old_style:
    json.dump({"_class_name": "PNDMScheduler", "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
               "num_train_timesteps": 1000, "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1}, open(f"{D}/scheduler/scheduler_config.json", "w"))
else:
    json.dump(json.loads(cm["config"])["scheduler"], open(f"{D}/scheduler/scheduler_config.json", "w"))
wr(E, {"ctx_uncond": c["ctx_uncond"], "ctx_text": c["ctx_text"]}, {"prompt": "a photo of sks"})
PY
}
