"""sd_random_model.py - a random Stable-Diffusion-v1-4-shaped model written the
way the hub and DINO publish theirs, without diffusers: for
tests/bench/sd-roundtrip.sh, which puts it through datasets/weights/convert.py
and glad-denoise (a user's path, at full size).

  sd_random_model.py OUT
writes
  OUT/sd/unet/config.json + diffusion_pytorch_model.safetensors
        UNet2DConditionModel, the hub config (860 M parameters), random weights
        at the scales of glad's random model (sd_unet_ref.randomise)
  OUT/sd/vae/config.json + diffusion_pytorch_model.safetensors
        AutoencoderKL, the hub config (84 M parameters), sd_vae_ref.randomise
  OUT/sd/scheduler/scheduler_config.json   the hub's (PNDMScheduler values)
  OUT/prompt.safetensors   ctx_uncond, ctx_text [1,77,768], random (what
        convert.py embed computes with CLIP on a machine with transformers)
  OUT/dino_vitbase8_pretrain.pth   a DINO ViT-B/8 teacher checkpoint ("teacher",
        "backbone." keys as Meta's file has them; 224 px position grid), random
Tensors are the models' state_dict keys (diffusers v0.20 names), float32,
written tensor by tensor (no second copy of the 3.4 GB UNet in memory).
"""
import json
import os
import struct
import sys

import numpy as np
import torch

from sd_unet_ref import SD14, UNet, randomise as randomise_unet
from sd_vae_ref import SD14_VAE, VAE, randomise as randomise_vae
from vit_ref import VisionTransformer

UNET_CONFIG = dict(SD14, _class_name="UNet2DConditionModel", _diffusers_version="0.20.0", act_fn="silu",
                   center_input_sample=False, downsample_padding=1, mid_block_scale_factor=1, sample_size=64)
SCHEDULER = {"_class_name": "PNDMScheduler", "_diffusers_version": "0.7.0.dev0", "beta_end": 0.012,
             "beta_schedule": "scaled_linear", "beta_start": 0.00085, "num_train_timesteps": 1000,
             "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None,
             "clip_sample": False}


def write_st(path, named, meta=None):
    """safetensors, float32, streamed tensor by tensor"""
    named = list(named)
    head, off = {}, 0
    for k, t in named:
        n = t.numel() * 4
        head[k] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + n]}
        off += n
    if meta:
        head["__metadata__"] = meta
    h = json.dumps(head).encode()
    h += b" " * (-len(h) % 8)
    with open(path + ".part", "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for _, t in named:
            f.write(np.ascontiguousarray(t.detach().numpy(), "<f4").tobytes())
    os.replace(path + ".part", path)


def main(out):
    torch.manual_seed(0)
    for d in ("sd/unet", "sd/vae", "sd/scheduler"):
        os.makedirs(os.path.join(out, d), exist_ok=True)
    with torch.no_grad():
        u = UNet(SD14)
        randomise_unet(u, 1)
        json.dump(UNET_CONFIG, open(os.path.join(out, "sd/unet/config.json"), "w"), indent=2)
        write_st(os.path.join(out, "sd/unet/diffusion_pytorch_model.safetensors"), u.state_dict().items())
        print("unet_params=%d" % sum(p.numel() for p in u.parameters()), flush=True)
        del u
        v = randomise_vae(VAE(SD14_VAE), 2)
        json.dump(dict(SD14_VAE, _diffusers_version="0.20.0"), open(os.path.join(out, "sd/vae/config.json"), "w"), indent=2)
        write_st(os.path.join(out, "sd/vae/diffusion_pytorch_model.safetensors"), v.state_dict().items())
        print("vae_params=%d" % sum(p.numel() for p in v.parameters()), flush=True)
        del v
        json.dump(SCHEDULER, open(os.path.join(out, "sd/scheduler/scheduler_config.json"), "w"), indent=2)
        g = torch.Generator().manual_seed(3)
        write_st(os.path.join(out, "prompt.safetensors"),
                 [("ctx_uncond", torch.randn(1, 77, 768, generator=g)), ("ctx_text", torch.randn(1, 77, 768, generator=g))],
                 {"prompt": "a photo of sks", "note": "random, not CLIP's"})
        vit = VisionTransformer({"patch_size": 8, "embed_dim": 768, "depth": 12, "num_heads": 12, "mlp_ratio": 4,
                                 "qkv_bias": True, "layernorm_eps": 1e-6, "pos_grid": 28})
        for name, p in vit.named_parameters():   # DINO's init: trunc-normal 0.02 weights, zero biases, LN 1/0
            if name.endswith("bias"):
                p.zero_()
            elif "norm" in name:
                p.fill_(1.0)
            else:
                p.normal_(0, 0.02, generator=g).clamp_(-0.04, 0.04)
        torch.save({"teacher": {"backbone." + k: t for k, t in vit.state_dict().items()}, "epoch": 100},
                   os.path.join(out, "dino_vitbase8_pretrain.pth"))
        print("dino_params=%d" % sum(p.numel() for p in vit.parameters()), flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
