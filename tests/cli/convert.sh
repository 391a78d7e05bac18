#!/bin/bash
# convert.sh - datasets/weights/convert.py (needs torch; skipped without it):
# official-style .pth checkpoints (wrapped and prefixed as the real ones are)
# become safetensors files the C loaders read; a converted torchvision ResNet
# gives torch's own layer outputs through glad-features; fetch.sh checks sums.
. "$(dirname "$0")/lib.sh"
CONV=$ROOT/datasets/weights/convert.py
FIX=$ROOT/tests/fixtures
PY=/usr/bin/python3
# fetch.sh without network: a file already present is only checked
if have_shared && [ -f "$SHARED/weights/mobilenet_v2_1.0_224_quant.tflite" ]; then
    mkdir -p "$T/w"
    cp "$SHARED/weights/"*.tflite "$T/w/"
    check "fetch.sh: present files with the right sha256" sh "$ROOT/datasets/weights/fetch.sh" --dir "$T/w" mobilenet
    printf 'x' >> "$T/w/mobilenet_v2_1.0_224_quant.tflite"
    status 1 "fetch.sh: a wrong sha256 fails" sh "$ROOT/datasets/weights/fetch.sh" --dir "$T/w" mobilenet
    check "fetch.sh: the bad file is removed" test ! -f "$T/w/mobilenet_v2_1.0_224_quant.tflite"
else skip "fetch.sh: ../shared/weights absent"; fi
status 2 "fetch.sh: unknown name" sh "$ROOT/datasets/weights/fetch.sh" --dir "$T/w" alexnet
# Stable Diffusion (convert.py sd / glad / embed): a diffusers-like folder
# made from the sd-unet / sd-vae fixtures (UNet as a pickled .bin, VAE as
# .safetensors under the pre-v0.20 attention names), converted back; the
# tensors must come out as the fixtures' and the VAE must give the fixture's
# outputs in C (test_vae on the converted file)
sd_tests() {
    local F=$SHARED/fixtures
    sd_folder "$T/sd" "$T/prompt.safetensors" bin || { fail "sd: making the diffusers folder"; return; }
    $PY - "$F" "$T/ck" <<'PY' || { fail "sd: making GLAD's checkpoints"; return; }
import sys, os, json, struct, numpy as np, torch
F, CK = sys.argv[1:]
b = open(F + "/sd-unet.weights.safetensors", "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n]); h.pop("__metadata__")
u = {k: np.frombuffer(b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], "<f4").reshape(v["shape"]).copy() for k, v in h.items()}
# GLAD's fine-tuned UNet: a plain state dict in checkpoint-N/pytorch_model.bin, weights changed
os.makedirs(f"{CK}/checkpoint-5", exist_ok=True)
torch.save({k: torch.from_numpy(a * 1.5) for k, a in u.items()}, f"{CK}/checkpoint-5/pytorch_model.bin")
bad = {k: torch.from_numpy(a) for k, a in u.items() if k != "conv_out.bias"}
torch.save(bad, f"{CK}/missing.bin")
PY
    # the comparison of converted files with the fixtures (scale: GLAD's checkpoint weights are 1.5x)
    cat > "$T/cmp.py" <<'PY'
import sys, json, struct, numpy as np
def rd(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n]); m = h.pop("__metadata__")
    return {k: np.frombuffer(b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], "<f4").reshape(v["shape"]) for k, v in h.items()}, m
got, gm = rd(sys.argv[1]); ref, rm = rd(sys.argv[2]); scale = float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
ok = set(got) == set(ref) and all(got[k].shape == ref[k].shape and np.array_equal(got[k], (ref[k] * np.float32(scale)).astype("<f4")) for k in ref)
ok = ok and json.loads(gm["config"]) == json.loads(rm["config"])
sys.exit(0 if ok else 1)
PY
    $PY "$CONV" sd "$T/sd" -o "$T/out" > /dev/null 2> "$T/err"
    check "sd: without transformers the networks are written" test -f "$T/out/unet.safetensors" -a -f "$T/out/vae.safetensors"
    check "sd: ... and it says how to give the prompt embeddings" grep -q -- "--embeddings" "$T/err"
    check "sd: ... no prompt file" test ! -f "$T/out/prompt.safetensors"
    check "sd: the converted UNet is the fixture's (names, shapes, values, config)" $PY "$T/cmp.py" "$T/out/unet.safetensors" "$F/sd-unet.weights.safetensors"
    check "sd: the converted VAE has the v0.20 attention names and the fixture's values" $PY "$T/cmp.py" "$T/out/vae.safetensors" "$F/sd-vae.weights.safetensors"
    check "sd: the scheduler config is in the UNet file" $PY -c "
import sys, json, struct; b = open(sys.argv[1], 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; m = json.loads(b[8:8 + n])['__metadata__']
sys.exit(0 if json.loads(m['scheduler'])['beta_schedule'] == 'scaled_linear' else 1)" "$T/out/unet.safetensors"
    if [ -x "$BUILD/tests/test_vae" ]; then
        check "sd: the converted VAE loads in C and gives the fixture's outputs" sh -c "'$BUILD/tests/test_vae' '$T/out/vae.safetensors' > '$T/tv.out' 2>&1"
    else skip "sd: $BUILD/tests/test_vae not built"; fi
    status 0 "sd: with --embeddings" $PY "$CONV" sd "$T/sd" -o "$T/out" --embeddings "$T/prompt.safetensors"
    check "sd: the prompt embeddings are written" $PY -c "
import sys, json, struct; b = open(sys.argv[1], 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n])
sys.exit(0 if h['ctx_uncond']['shape'] == [1, 77, 32] and h['ctx_text']['shape'] == [1, 77, 32] and h['__metadata__']['prompt'] == 'a photo of sks' else 1)" "$T/out/prompt.safetensors"
    # GLAD's checkpoint: the fine-tuned UNet with the base folder's config, VAE and embeddings
    status 0 "glad: convert a checkpoint folder" $PY "$CONV" glad "$T/ck/checkpoint-5" --base "$T/sd" -o "$T/g" --embeddings "$T/prompt.safetensors"
    check "glad: the UNet is the checkpoint's, with the base config" $PY "$T/cmp.py" "$T/g/unet.safetensors" "$F/sd-unet.weights.safetensors" 1.5
    check "glad: the VAE is the base's" $PY "$T/cmp.py" "$T/g/vae.safetensors" "$F/sd-vae.weights.safetensors"
    check "glad: the prompt embeddings are there" test -f "$T/g/prompt.safetensors"
    status 1 "glad: a checkpoint missing a tensor of the base UNet" $PY "$CONV" glad "$T/ck/missing.bin" --base "$T/sd" -o "$T/g2"
    check "glad: ... says which" grep -q "conv_out.bias" "$T/.stderr"
    status 1 "glad: a base that is not a diffusers folder" $PY "$CONV" glad "$T/ck/checkpoint-5" --base "$T/ck" -o "$T/g2"
    status 2 "glad: --base is required" $PY "$CONV" glad "$T/ck/checkpoint-5" -o "$T/g2"
    status 1 "embed: without transformers or a text encoder it says why" $PY "$CONV" embed "$T/sd" -o "$T/e.safetensors"
    # the CLIP path with a stand-in `transformers` module (Debian has none): the stub
    # records how it is called and embeds token ids deterministically, so what is checked
    # is convert.py's side -- GLAD's pipeline.py _encode_prompt call (padding to
    # model_max_length, truncation, no attention mask unless the config asks), "" and the
    # prompt, float32 [1,77,D] -- not CLIP itself
    mkdir -p "$T/stub/transformers" "$T/sd/text_encoder" "$T/sd/tokenizer"
    cat > "$T/stub/transformers/__init__.py" <<'PY'
import json, os, torch
LOG = os.environ["STUB_LOG"]
class _Out:
    def __init__(self, ids): self.input_ids = ids; self.attention_mask = torch.ones_like(ids)
class CLIPTokenizer:
    model_max_length = 77
    @classmethod
    def from_pretrained(cls, d): assert os.path.isdir(d); return cls()
    def __call__(self, texts, **kw):
        with open(LOG, "a") as f: f.write(json.dumps({"texts": texts, **kw}) + "\n")
        ids = [[49406] + [ord(c) for c in t][: kw["max_length"] - 2] + [49407] for t in texts]
        ids = [x + [49407] * (kw["max_length"] - len(x)) for x in ids]
        return _Out(torch.tensor(ids))
class _Cfg: use_attention_mask = False
class CLIPTextModel(torch.nn.Module):
    config = _Cfg()
    @classmethod
    def from_pretrained(cls, d): assert os.path.isdir(d); return cls()
    def forward(self, ids, attention_mask=None):
        assert attention_mask is None
        pos = torch.arange(ids.shape[1], dtype=torch.float64)[None, :, None]
        d = torch.arange(8, dtype=torch.float64)[None, None, :]
        return (torch.sin(ids[..., None].double() * 0.01 + pos * 0.1 + d), None)
PY
    rm -f "$T/stub.log"
    status 0 "embed: with a (stand-in) CLIP text encoder" env PYTHONPATH="$T/stub" STUB_LOG="$T/stub.log" \
        $PY "$CONV" embed "$T/sd" -o "$T/e.safetensors" --prompt "a photo of sks"
    check "embed: tokenised as GLAD's pipeline does (\"\" and the prompt, padded to 77, truncated)" $PY -c "
import json, sys
calls = [json.loads(l) for l in open('$T/stub.log')]
texts = sorted(c['texts'][0] for c in calls)
ok = texts == ['', 'a photo of sks'] and all(c['padding'] == 'max_length' and c['max_length'] == 77 and c['truncation'] for c in calls)
sys.exit(0 if ok else 1)"
    check "embed: ctx_uncond / ctx_text are the encoder's float32 [1,77,D] outputs of \"\" / the prompt" $PY -c "
import sys, numpy as np
sys.path.insert(0, '$ROOT/datasets/weights')
from convert import read_safetensors
t, meta = read_safetensors('$T/e.safetensors')
def ref(text):
    ids = [49406] + [ord(c) for c in text] + [49407]; ids += [49407] * (77 - len(ids))
    ids = np.array(ids, np.float64)[:, None]; pos = np.arange(77)[:, None]; d = np.arange(8)[None, :]
    return np.sin(ids * 0.01 + pos * 0.1 + d)[None]
u, c = t['ctx_uncond'], t['ctx_text']
ok = u.dtype == np.float32 and u.shape == (1, 77, 8) and c.shape == (1, 77, 8) and meta.get('prompt') == 'a photo of sks'
ok = ok and np.abs(u - ref('')).max() < 1e-6 and np.abs(c - ref('a photo of sks')).max() < 1e-6
sys.exit(0 if ok else 1)"
    rm -rf "$T/sd/text_encoder" "$T/sd/tokenizer"
}
if ! $PY -c 'import torch' 2>/dev/null; then skip "convert.py sd/glad: python3-torch not installed"
elif ! have_shared || [ ! -f "$SHARED/fixtures/sd-vae.weights.safetensors" ]; then skip "convert.py sd/glad: ../shared/fixtures/sd-* absent"
else sd_tests; fi
if ! $PY -c 'import torch, torchvision' 2>/dev/null; then
    skip "convert.py: python3-torch / python3-torchvision not installed"
    done_tests; exit
fi
status 2 "convert.py: usage" $PY "$CONV"
# DINO: the fixture's tensors saved as a teacher checkpoint with 'backbone.' keys
$PY - "$FIX/dino-vit.weights.safetensors" "$T/dino.pth" <<'PY'
import sys, json, struct, numpy as np, torch
b = open(sys.argv[1], "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n]); h.pop("__metadata__")
sd = {"backbone." + k: torch.from_numpy(np.frombuffer(b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], "<f4").reshape(v["shape"]).copy()) for k, v in h.items()}
torch.save({"teacher": sd, "epoch": 3}, sys.argv[2])
PY
# the fixture has 4 heads of 16 (released DINO models have heads of 64: the default)
$PY "$CONV" dino "$T/dino.pth" "$T/dino.safetensors" --heads 4 2>/dev/null
glad-encode --help >/dev/null
glad-synth --make-dataset "$T/demo" --classes fabric --size 32 --train 1 --test-good 1 --test-defect 1
glad-encode "$T/demo" --split test > "$T/test.msgpack"
glad-features --weights "$FIX/dino-vit.weights.safetensors" --input image "$T/test.msgpack" > "$T/a.msgpack"
glad-features --weights "$T/dino.safetensors" --input image "$T/test.msgpack" > "$T/b.msgpack" 2> "$T/err"
check "dino: converted weights give the fixture's features" cmp -s <(glad-info --json "$T/a.msgpack" | tail -n +2) <(glad-info --json "$T/b.msgpack" | tail -n +2)
# torchvision ResNet: convert, then glad-features against torch on the same image
$PY - "$T/rn.pth" "$T/x.npy" "$T/ref.npy" <<'PY'
import sys, numpy as np, torch, torchvision
torch.manual_seed(0)
m = torchvision.models.resnet.ResNet(torchvision.models.resnet.Bottleneck, [1, 1, 1, 1], width_per_group=16).eval()
for mod in m.modules():
    if isinstance(mod, torch.nn.BatchNorm2d):
        mod.running_mean.uniform_(-0.2, 0.2); mod.running_var.uniform_(0.5, 1.5); mod.weight.data.uniform_(0.5, 1.5); mod.bias.data.uniform_(-0.2, 0.2)
torch.save({"module." + k: v for k, v in m.state_dict().items()}, sys.argv[1])
x = np.random.default_rng(1).uniform(-1, 1, (3, 32, 32)).astype(np.float32)
np.save(sys.argv[2], x)
mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1); std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
t = ((torch.from_numpy(x) + 1) / 2 - mean) / std
with torch.no_grad():
    h = m.maxpool(m.relu(m.bn1(m.conv1(t[None])))); h = m.layer1(h); l2 = m.layer2(h); l3 = m.layer3(l2)
np.save(sys.argv[3], l3[0].numpy())
PY
$PY "$CONV" resnet "$T/rn.pth" "$T/rn.safetensors" 2>/dev/null
check "resnet: converted file is detected as resnet" sh -c "glad-features --weights '$T/rn.safetensors' --layers 3 --input image '$T/test.msgpack' > /dev/null"
# one record holding the same image, through glad-features, compared in Python
$PY - "$T/x.npy" "$T/img.msgpack" "$ROOT/formats/python" <<'PY'
import sys, numpy as np
sys.path.insert(0, sys.argv[3]); import gladstream
x = np.load(sys.argv[1])
gladstream.write(sys.argv[2], {"glad": 1, "history": []}, [{"id": "x/0", "image": x}])
PY
glad-features --weights "$T/rn.safetensors" --layers 3 --input image "$T/img.msgpack" > "$T/rnf.msgpack"
check "resnet: glad layer3 == torch layer3 (1e-4 of max-abs)" $PY - "$T/rnf.msgpack" "$T/ref.npy" "$ROOT/formats/python" <<'PY'
import sys, numpy as np
sys.path.insert(0, sys.argv[3]); import gladstream
rec = gladstream.read(sys.argv[1])[1][0]
a, r = np.asarray(rec["feat.image.3"], np.float64), np.load(sys.argv[2]).astype(np.float64)
err = np.abs(a - r).max() / np.abs(r).max()
print("resnet rel err", err, file=sys.stderr)
sys.exit(0 if a.shape == r.shape and err < 1e-4 else 1)
PY
# DDAD UNet: a glad-train model's tensors as a DataParallel state dict, converted
# with the architecture options, denoise exactly as the original model file
glad-encode "$T/demo" --split train | glad-train --preset tiny --steps 1 --batch 1 -o "$T/m.model" 2>/dev/null
$PY - "$T/m.model" "$T/ddad.pt" <<'PY'
import sys, json, struct, numpy as np, torch
b = open(sys.argv[1], "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n]); h.pop("__metadata__")
sd = {"module." + k: torch.from_numpy(np.frombuffer(b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], "<f4").reshape(v["shape"]).copy())
      for k, v in h.items() if v["dtype"] == "F32" and not k.startswith("adam.") and not k.startswith("ema.")}
torch.save(sd, sys.argv[2])
PY
$PY "$CONV" ddad "$T/ddad.pt" "$T/ddad.model" --img-size 32 --mults 1,2,2 --res-blocks 1 --attn 16 --heads 2 2>/dev/null
glad-denoise --model "$T/m.model" --steps 50 --skip 25 "$T/test.msgpack" > "$T/d1.msgpack"
glad-denoise --model "$T/ddad.model" --steps 50 --skip 25 "$T/test.msgpack" > "$T/d2.msgpack" 2> "$T/err"
check "ddad: the converted checkpoint reconstructs as the original" cmp -s <(glad-info --json "$T/d1.msgpack" | tail -n +2) <(glad-info --json "$T/d2.msgpack" | tail -n +2)
done_tests
