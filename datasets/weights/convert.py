#!/usr/bin/env python3
"""convert.py - turn official PyTorch checkpoints into the safetensors files the
glad tools read (glad-features --weights, glad-denoise --ads-weights / --model).

Needs python3 with torch and numpy (Debian: python3-torch). It is for users who
have downloaded the checkpoints (see fetch.sh); glad itself never runs Python.

  convert.py dino   dino_vitbase8_pretrain.pth   vitb8.safetensors [--heads N]
  convert.py resnet wide_resnet101_2-32ee1156.pth wrn101.safetensors
  convert.py ddad   ddad_checkpoint.pt  ddad.model --img-size 256 [--mults 1,1,2,2,4,4]
                    [--res-blocks 2] [--attn 32,16,8] [--heads 4] [--dropout 0]

Tensor names stay the PyTorch state_dict keys (a "module." prefix from
DataParallel and DINO's "backbone." prefix are stripped); the network's
configuration goes into __metadata__["config"] as the C loaders expect.
Tensors are written as float32 little-endian. The output is written to a
temporary file and renamed, so an interrupted run never leaves a half file.
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


def save_safetensors(path, tensors, meta):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        if a.dtype.kind == "f":
            a, dt = a.astype("<f4"), "F32"
        elif a.dtype.kind in "iu":
            a, dt = a.astype("<i64"), "I64"
        else:
            raise SystemExit(f"convert.py: {name}: unsupported dtype {a.dtype}")
        b = a.tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = {k: str(v) for k, v in meta.items()}
    js = json.dumps(header, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 8)          # the data section starts 8-aligned
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(js)))
        f.write(js)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


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


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", choices=["dino", "resnet", "ddad"])
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--img-size", type=int, default=256)
    p.add_argument("--mults", default=None)
    p.add_argument("--res-blocks", type=int, default=2)
    p.add_argument("--attn", default="32,16,8")
    p.add_argument("--heads", type=int, default=None, help="attention heads (dino: dim/64 as every released DINO; ddad: 4)")
    p.add_argument("--dropout", type=float, default=0.0)
    a = p.parse_args(argv)
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
