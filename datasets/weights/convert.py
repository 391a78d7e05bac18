#!/usr/bin/env python3
"""convert.py - turn official PyTorch checkpoints into the safetensors files the
glad tools read (glad-features --weights, glad-denoise --ads-weights / --model).

Needs python3 with torch and numpy (Debian: python3-torch). It is for users who
have downloaded the checkpoints (see fetch.sh); glad itself never runs Python.

  convert.py dino   dino_vitbase8_pretrain.pth   vitb8.safetensors [--heads N]
  convert.py resnet wide_resnet101_2-32ee1156.pth wrn101.safetensors
  convert.py ddad   ddad_checkpoint.pt  ddad.model --img-size 256 [--mults 1,1,2,2,4,4]
                    [--res-blocks 2] [--attn 32,16,8] [--heads 4] [--dropout 0]
  convert.py sd     stable-diffusion-v1-4/ -o sd14/  [--prompt TEXT] [--embeddings FILE]
  convert.py glad   model/bottle_.../checkpoint-4000/pytorch_model.bin --base stable-diffusion-v1-4/
                    -o glad-bottle/ [--vae FILE] [--prompt TEXT] [--embeddings FILE]
  convert.py embed  stable-diffusion-v1-4/ -o prompt.safetensors [--prompt TEXT]

Tensor names stay the PyTorch state_dict keys (a "module." prefix from
DataParallel and DINO's "backbone." prefix are stripped); the network's
configuration goes into __metadata__["config"] as the C loaders expect.
Tensors are written as float32 little-endian. The output is written to a
temporary file and renamed, so an interrupted run never leaves a half file.

Latent diffusion (Stable Diffusion v1 as GLAD runs it, diffusers v0.20 names).
`sd` reads a diffusers folder (unet/, vae/ with their config.json and
diffusion_pytorch_model.safetensors or .bin, scheduler/scheduler_config.json,
text_encoder/ and tokenizer/) and writes the folder OUT with
  unet.safetensors    the UNet2DConditionModel; config = unet/config.json,
                      "scheduler" = scheduler/scheduler_config.json
  vae.safetensors     the AutoencoderKL; config = vae/config.json. The mid-block
                      attention is written under the v0.20 names
                      (to_q/to_k/to_v/to_out.0) whether the folder has those or
                      the older query/key/value/proj_attn.
  prompt.safetensors  ctx_uncond and ctx_text [1,77,768]: the CLIP text
                      encoder's last hidden state of "" and of the prompt
                      (default "a photo of sks", GLAD's), tokenised as GLAD's
                      pipeline does (padding to 77, truncation, no mask).
The prompt embeddings need python3 transformers and the folder's text_encoder/
and tokenizer/; without them the networks are written and convert.py says how
to make prompt.safetensors (`embed` on a machine with transformers, then
--embeddings FILE: a safetensors or torch file with ctx_uncond and ctx_text, or
one [2,77,768] tensor holding them in that order).
`glad` converts one of GLAD's fine-tuned per-class UNets (accelerate's
checkpoint-N/pytorch_model.bin: a pickled state dict with diffusers names and
no config; the folder checkpoint-N is accepted too) with the UNet config,
scheduler, VAE and prompt embeddings of the base SD folder; --vae takes the
VAE from a state-dict checkpoint instead (GLAD's PCB classes: a Lightning
checkpoint whose "state_dict" has diffusers names; keys with "loss" dropped).
"""
import argparse
import json
import os
import struct
import sys

import numpy as np


def load_state_dict(path):
    import torch
    obj = torch.load(path, map_location="cpu")
    # checkpoints wrap the state dict in different ways
    for key in ("state_dict", "model", "teacher", "student"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
            break
    if hasattr(obj, "state_dict"):
        obj = obj.state_dict()
    out = {}
    for k, v in obj.items():
        for pfx in ("module.", "backbone."):
            if k.startswith(pfx):
                k = k[len(pfx):]
        if hasattr(v, "numpy"):
            out[k] = v.detach().cpu().float().numpy() if v.is_floating_point() else v.detach().cpu().numpy()
    return out


def _st_array(name, a):
    a = np.asarray(a)
    if a.dtype.kind == "f":
        return a.astype("<f4", copy=False), "F32"
    if a.dtype.kind in "iu":
        return a.astype("<i8", copy=False), "I64"
    raise SystemExit(f"convert.py: {name}: unsupported dtype {a.dtype}")


def save_safetensors(path, tensors, meta):
    # the header first (shapes and sizes only), then one tensor at a time, so
    # a 3.4 GB UNet is never held twice in memory
    header, off = {}, 0
    for name in sorted(tensors):
        a = np.asarray(tensors[name])
        if a.dtype.kind not in "fiu":
            raise SystemExit(f"convert.py: {name}: unsupported dtype {a.dtype}")
        n = int(np.prod(a.shape, dtype=np.int64)) * (4 if a.dtype.kind == "f" else 8)
        header[name] = {"dtype": "F32" if a.dtype.kind == "f" else "I64", "shape": list(a.shape), "data_offsets": [off, off + n]}
        off += n
    header["__metadata__"] = {k: str(v) for k, v in meta.items()}
    js = json.dumps(header, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 8)          # the data section starts 8-aligned
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(js)))
            f.write(js)
            for name in sorted(tensors):
                a, _ = _st_array(name, tensors[name])
                f.write(np.ascontiguousarray(a).tobytes())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def need(sd, key, what):
    if key not in sd:
        raise SystemExit(f"convert.py: this is not a {what} checkpoint: key '{key}' missing")
    return sd[key]


def convert_dino(sd, heads):
    keep = {k: v for k, v in sd.items() if k in ("cls_token", "pos_embed", "norm.weight", "norm.bias")
            or k.startswith("patch_embed.") or k.startswith("blocks.")}
    pw = need(keep, "patch_embed.proj.weight", "DINO ViT")
    dim, patch = int(pw.shape[0]), int(pw.shape[2])
    depth = 1 + max(int(k.split(".")[1]) for k in keep if k.startswith("blocks."))
    n0 = int(need(keep, "pos_embed", "DINO ViT").shape[1]) - 1
    grid = int(round(n0 ** 0.5))
    if grid * grid != n0:
        raise SystemExit(f"convert.py: pos_embed holds {n0} patch positions, not a square grid")
    hidden = int(keep["blocks.0.mlp.fc1.weight"].shape[0])
    cfg = {"patch_size": patch, "embed_dim": dim, "depth": depth, "num_heads": heads or max(1, dim // 64),
           "mlp_ratio": hidden / dim, "qkv_bias": "blocks.0.attn.qkv.bias" in keep, "layernorm_eps": 1e-6,
           "pos_grid": grid}
    return keep, {"config": json.dumps(cfg), "source": "DINO VisionTransformer (convert.py)"}


def convert_resnet(sd):
    keep = {k: v for k, v in sd.items() if not k.startswith("fc.") and not k.endswith("num_batches_tracked")}
    need(keep, "conv1.weight", "torchvision ResNet")
    w1 = need(keep, "layer1.0.conv1.weight", "torchvision ResNet")
    if "layer1.0.conv3.weight" not in keep:
        raise SystemExit("convert.py: only Bottleneck ResNets (resnet50 and deeper, wide_resnet*) are supported")
    layers = []
    for L in range(1, 5):
        blocks = {int(k.split(".")[1]) for k in keep if k.startswith(f"layer{L}.")}
        if blocks:
            layers.append(max(blocks) + 1)
    # bottleneck width of layer1 = 64 * width_per_group / 64
    cfg = {"block": "bottleneck", "layers": layers, "width_per_group": int(w1.shape[0])}
    return keep, {"config": json.dumps(cfg), "source": "torchvision ResNet (convert.py)"}


def convert_ddad(sd, a):
    w = need(sd, "down.0.0.weight", "DDAD UNet")
    base, cin = int(w.shape[0]), int(w.shape[1])
    defaults = {512: "0.5,1,1,2,2,4,4", 256: "1,1,2,2,4,4", 128: "1,1,2,3,4"}
    mults = [float(m) for m in (a.mults or defaults.get(a.img_size, "1,2,3,4")).split(",")]
    cfg = {"img_size": a.img_size, "base_channels": base, "channel_mults": mults, "num_res_blocks": a.res_blocks,
           "attention_resolutions": a.attn, "n_heads": a.heads or 4, "in_channels": cin, "dropout": a.dropout}
    return dict(sd), {"config": json.dumps(cfg), "betas": "linear", "T": "1000", "source": "DDAD UNetModel (convert.py)"}


# ---- latent diffusion: Stable Diffusion v1 folders and GLAD's checkpoints ----

_ST_NP = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1", "U8": "u1"}


def read_safetensors(path):
    """(tensors, metadata) of a safetensors file; the tensors are views of a
    memory map (BF16 is widened to float32)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n))
    meta = h.pop("__metadata__", None) or {}
    size = os.path.getsize(path) - 8 - n
    mm = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n) if size > 0 else np.zeros(0, np.uint8)
    out = {}
    for k, v in h.items():
        b, e = v["data_offsets"]
        raw = mm[b:e]
        if v["dtype"] == "BF16":
            a = (raw.view("<u2").astype("<u4") << 16).view("<f4")
        elif v["dtype"] in _ST_NP:
            a = raw.view(_ST_NP[v["dtype"]])
        else:
            raise SystemExit(f"convert.py: {path}: tensor {k}: dtype {v['dtype']} not supported")
        out[k] = a.reshape(v["shape"])
    return out, meta


def load_weights(path):
    return read_safetensors(path)[0] if path.endswith(".safetensors") else load_state_dict(path)


def diffusers_part(folder, part, what):
    """(state dict, config.json text) of a diffusers model folder's subfolder"""
    d = os.path.join(folder, part)
    cfg = os.path.join(d, "config.json")
    if not os.path.isfile(cfg):
        raise SystemExit(f"convert.py: {d}/config.json missing: {folder} is not a diffusers folder with a {what}")
    with open(cfg) as f:
        text = f.read()
    json.loads(text)
    for name in ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin",
                 "diffusion_pytorch_model.fp16.safetensors", "diffusion_pytorch_model.fp16.bin"):
        p = os.path.join(d, name)
        if os.path.isfile(p):
            return load_weights(p), text
    raise SystemExit(f"convert.py: {d}: no diffusion_pytorch_model.safetensors or .bin")


def json_text(path, why):
    """The text of a JSON file, checked to parse (kept verbatim for the metadata)."""
    if not os.path.isfile(path):
        raise SystemExit(f"convert.py: {path} missing{why}")
    with open(path) as f:
        text = f.read()
    json.loads(text)
    return text


def read_config(folder, part, what):
    return json_text(os.path.join(folder, part, "config.json"),
                     f": {folder} is not a diffusers folder with a {what}")


def scheduler_config(folder):
    return json_text(os.path.join(folder, "scheduler", "scheduler_config.json"),
                     " (GLAD builds its DDIM scheduler from it)")


# diffusers' AttentionBlock names before v0.14 -> the Attention names v0.20 saves
_VAE_OLD = {"query": "to_q", "key": "to_k", "value": "to_v", "proj_attn": "to_out.0"}


def vae_state(sd):
    """the VAE under diffusers v0.20 names: older attention names renamed and
    their 1x1-conv weights squeezed (as _convert_deprecated_attention_blocks);
    Lightning's loss terms dropped"""
    if any(k.startswith("first_stage_model.") or ".mid.attn_1." in k for k in sd):
        raise SystemExit("convert.py: these are CompVis (LDM) VAE names; convert the .ckpt to a diffusers folder first "
                         "(diffusers' scripts/convert_original_stable_diffusion_to_diffusers.py)")
    out = {}
    for k, v in sd.items():
        if "loss" in k:
            continue
        parts = k.split(".")
        if len(parts) >= 3 and parts[-3] == "0" and parts[-2] in _VAE_OLD and "attentions" in parts:
            k = ".".join(parts[:-2] + [_VAE_OLD[parts[-2]], parts[-1]])
            if v.ndim == 4 and tuple(v.shape[2:]) == (1, 1):
                v = v.reshape(v.shape[:2])
        out[k] = v
    need(out, "encoder.conv_in.weight", "diffusers AutoencoderKL")
    need(out, "decoder.conv_in.weight", "diffusers AutoencoderKL")
    return out


def unet_state(sd, base=None):
    """the UNet's state dict, checked against the base model's names and shapes when given"""
    need(sd, "conv_in.weight", "diffusers UNet2DConditionModel")
    need(sd, "time_embedding.linear_1.weight", "diffusers UNet2DConditionModel")
    if base is not None:
        missing, extra = sorted(set(base) - set(sd)), sorted(set(sd) - set(base))
        if missing or extra:
            raise SystemExit(f"convert.py: the checkpoint's UNet differs from the base UNet: missing {missing[:3]}"
                             f"{' ...' if len(missing) > 3 else ''}, unexpected {extra[:3]}{' ...' if len(extra) > 3 else ''}")
        for k in sd:
            if tuple(sd[k].shape) != tuple(base[k].shape):
                raise SystemExit(f"convert.py: {k}: shape {tuple(sd[k].shape)} in the checkpoint, {tuple(base[k].shape)} in the base UNet")
    return dict(sd)


def clip_embeddings(sd_dir, prompt):
    """(tensors, None) with ctx_uncond, ctx_text as GLAD's pipeline encodes ""
    and the prompt, or (None, why not)"""
    te_dir, tok_dir = os.path.join(sd_dir, "text_encoder"), os.path.join(sd_dir, "tokenizer")
    if not os.path.isdir(te_dir) or not os.path.isdir(tok_dir):
        return None, f"{sd_dir} has no text_encoder/ and tokenizer/"
    try:
        import torch
        from transformers import CLIPTextModel, CLIPTokenizer
    except ImportError as e:
        return None, f"python3 transformers is not installed ({e})"
    tok = CLIPTokenizer.from_pretrained(tok_dir)
    te = CLIPTextModel.from_pretrained(te_dir).float().eval()

    def enc(text):
        # pipeline.py _encode_prompt: padding to model_max_length (77), truncation,
        # an attention mask only when the text encoder's config asks for one
        t = tok([text], padding="max_length", max_length=tok.model_max_length, truncation=True, return_tensors="pt")
        mask = t.attention_mask if getattr(te.config, "use_attention_mask", False) else None
        with torch.no_grad():
            return te(t.input_ids, attention_mask=mask)[0].float().numpy()
    return {"ctx_uncond": enc(""), "ctx_text": enc(prompt)}, None


def read_embeddings(path):
    if path.endswith(".safetensors"):
        t, meta = read_safetensors(path)
    else:
        import torch
        obj = torch.load(path, map_location="cpu")
        if hasattr(obj, "numpy"):
            a = obj.detach().float().numpy()
            if a.ndim != 3 or a.shape[0] != 2:
                raise SystemExit(f"convert.py: {path}: one tensor must be [2, L, D] (uncond, text); it is {list(a.shape)}")
            t = {"ctx_uncond": a[:1], "ctx_text": a[1:]}
        else:
            t = {k: v.detach().float().numpy() for k, v in obj.items() if hasattr(v, "numpy")}
        meta = {}
    out = {}
    for k in ("ctx_uncond", "ctx_text"):
        a = np.asarray(need(t, k, "prompt embedding"), np.float32)
        if a.ndim == 2:
            a = a[None]
        if a.ndim != 3 or a.shape[0] != 1 or not np.isfinite(a).all():
            raise SystemExit(f"convert.py: {path}: {k} must be a finite [1, L, D] tensor; it is {list(a.shape)}")
        out[k] = a
    if out["ctx_uncond"].shape != out["ctx_text"].shape:
        raise SystemExit(f"convert.py: {path}: ctx_uncond and ctx_text differ in shape")
    return out, meta.get("prompt")


def write_embeddings(out_dir, sd_dir, a):
    """prompt.safetensors from --embeddings or the CLIP text encoder; False when neither is available"""
    path = os.path.join(out_dir, "prompt.safetensors")
    if a.embeddings:
        t, prompt = read_embeddings(a.embeddings)
        src = f"convert.py --embeddings {os.path.basename(a.embeddings)}"
    else:
        t, why = clip_embeddings(sd_dir, a.prompt)
        if t is None:
            print(f"convert.py: prompt embeddings NOT written ({why}). glad needs {path} holding ctx_uncond and ctx_text,\n"
                  f"  the CLIP text encoder's [1,77,768] last hidden states of \"\" and of the prompt. Make them where python3\n"
                  f"  transformers is installed:   convert.py embed {sd_dir} -o prompt.safetensors --prompt '{a.prompt}'\n"
                  f"  then rerun this command with --embeddings prompt.safetensors (or copy that file to {path}).",
                  file=sys.stderr)
            return False
        prompt, src = a.prompt, "CLIP text encoder (convert.py)"
    meta = {"source": src}
    if prompt is not None:
        meta["prompt"] = prompt
    save_safetensors(path, t, meta)
    return True


def write_latent(out_dir, unet, unet_cfg, sched, vae, vae_cfg, src):
    os.makedirs(out_dir, exist_ok=True)
    save_safetensors(os.path.join(out_dir, "unet.safetensors"), unet,
                     {"config": unet_cfg, "scheduler": sched, "source": f"{src} UNet2DConditionModel (convert.py)"})
    save_safetensors(os.path.join(out_dir, "vae.safetensors"), vae,
                     {"config": vae_cfg, "source": f"{src} AutoencoderKL (convert.py)"})


def convert_sd(a):
    unet, ucfg = diffusers_part(a.input, "unet", "UNet")
    vae, vcfg = diffusers_part(a.input, "vae", "VAE")
    write_latent(a.output, unet_state(unet), ucfg, scheduler_config(a.input), vae_state(vae), vcfg, "Stable Diffusion")
    return write_embeddings(a.output, a.input, a), len(unet), len(vae)


def convert_glad(a):
    ck = a.input
    if os.path.isdir(ck):
        for name in ("pytorch_model.bin", "model.safetensors", "diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"):
            if os.path.isfile(os.path.join(ck, name)):
                ck = os.path.join(ck, name)
                break
        else:
            raise SystemExit(f"convert.py: {a.input}: no pytorch_model.bin in this checkpoint folder")
    ucfg = read_config(a.base, "unet", "UNet")
    base_unet = None
    for name in ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin",
                 "diffusion_pytorch_model.fp16.safetensors", "diffusion_pytorch_model.fp16.bin"):
        if os.path.isfile(os.path.join(a.base, "unet", name)):
            base_unet = load_weights(os.path.join(a.base, "unet", name))
            break
    unet = unet_state(load_weights(ck), base_unet)
    del base_unet
    if a.vae:
        vae, vcfg = load_weights(a.vae), read_config(a.base, "vae", "VAE")
    else:
        vae, vcfg = diffusers_part(a.base, "vae", "VAE")
    write_latent(a.output, unet, ucfg, scheduler_config(a.base), vae_state(vae), vcfg, "GLAD fine-tuned")
    return write_embeddings(a.output, a.base, a), len(unet), len(vae)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="kind", metavar="{dino,resnet,ddad,sd,glad,embed}")
    sub.required = True
    for kind in ("dino", "resnet", "ddad"):
        q = sub.add_parser(kind)
        q.add_argument("input")
        q.add_argument("output")
        q.add_argument("--img-size", type=int, default=256)
        q.add_argument("--mults", default=None)
        q.add_argument("--res-blocks", type=int, default=2)
        q.add_argument("--attn", default="32,16,8")
        q.add_argument("--heads", type=int, default=None, help="attention heads (dino: dim/64 as every released DINO; ddad: 4)")
        q.add_argument("--dropout", type=float, default=0.0)
    for kind, what in (("sd", "a diffusers Stable Diffusion folder"), ("glad", "GLAD's checkpoint-N/pytorch_model.bin (or the folder)"),
                       ("embed", "a diffusers Stable Diffusion folder with text_encoder/ and tokenizer/")):
        q = sub.add_parser(kind)
        q.add_argument("input", help=what)
        q.add_argument("-o", "--output", required=True, help="output folder (embed: output file)")
        q.add_argument("--prompt", default="a photo of sks", help="the conditioning prompt (GLAD's default)")
        if kind != "embed":
            q.add_argument("--embeddings", default=None, help="precomputed ctx_uncond / ctx_text (see the top of this file)")
        if kind == "glad":
            q.add_argument("--base", required=True, help="the diffusers SD folder the checkpoint was fine-tuned from")
            q.add_argument("--vae", default=None, help="a VAE state-dict checkpoint to use instead of the base VAE")
    a = p.parse_args(argv)
    if a.kind in ("sd", "glad"):
        ok, nu, nv = convert_sd(a) if a.kind == "sd" else convert_glad(a)
        print(f"convert.py: wrote {a.output}/unet.safetensors ({nu} tensors), vae.safetensors ({nv} tensors)"
              f"{', prompt.safetensors' if ok else ''}", file=sys.stderr)
        return
    if a.kind == "embed":
        t, why = clip_embeddings(a.input, a.prompt)
        if t is None:
            raise SystemExit(f"convert.py: cannot compute the prompt embeddings: {why}")
        save_safetensors(a.output, t, {"prompt": a.prompt, "source": "CLIP text encoder (convert.py)"})
        print(f"convert.py: wrote {a.output} (ctx_uncond, ctx_text {list(t['ctx_text'].shape)})", file=sys.stderr)
        return
    sd = load_state_dict(a.input)
    if a.kind == "dino":
        t, meta = convert_dino(sd, a.heads)
    elif a.kind == "resnet":
        t, meta = convert_resnet(sd)
    else:
        t, meta = convert_ddad(sd, a)
    save_safetensors(a.output, t, meta)
    print(f"convert.py: wrote {a.output} ({len(t)} tensors, {meta['config']})", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
