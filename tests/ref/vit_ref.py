"""vit_ref.py - the DINO VisionTransformer in PyTorch (architectures.md section 2,
the layers of DINO's vision_transformer.py), for make bench: loads the weights
glad wrote (safetensors, DINO key names, config in __metadata__), checks glad's
outputs for the same input (OUT_PREFIX<SIZE>.safetensors written by
vit_bench) and times batch-1 forwards returning the same blocks on the same
number of threads.

usage: vit_ref.py WEIGHTS.safetensors OUT_PREFIX THREADS SIZE...
prints key=value lines: s<SIZE>_images_per_s, s<SIZE>_rel_err
"""
import json
import math
import sys
import time

import torch
import torch.nn as nn

from st import load_safetensors


class Mlp(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(d, h), nn.GELU(), nn.Linear(h, d)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Attention(nn.Module):
    def __init__(self, d, heads, qkv_bias):
        super().__init__()
        self.num_heads = heads
        self.scale = (d // heads) ** -0.5
        self.qkv = nn.Linear(d, 3 * d, bias=qkv_bias)
        self.proj = nn.Linear(d, d)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(B, N, C))


class Block(nn.Module):
    def __init__(self, d, heads, hidden, qkv_bias, eps):
        super().__init__()
        self.norm1 = nn.LayerNorm(d, eps=eps)
        self.attn = Attention(d, heads, qkv_bias)
        self.norm2 = nn.LayerNorm(d, eps=eps)
        self.mlp = Mlp(d, hidden)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, p, d):
        super().__init__()
        self.patch_size = p
        self.proj = nn.Conv2d(3, d, kernel_size=p, stride=p)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class VisionTransformer(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, g = c["embed_dim"], c["pos_grid"]
        eps = c.get("layernorm_eps", 1e-6)
        self.patch_embed = PatchEmbed(c["patch_size"], d)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + g * g, d))
        hidden = int(d * c.get("mlp_ratio", 4))
        self.blocks = nn.ModuleList([Block(d, c["num_heads"], hidden, c.get("qkv_bias", True), eps) for _ in range(c["depth"])])
        self.norm = nn.LayerNorm(d, eps=eps)

    def interpolate_pos_encoding(self, x, w, h):   # DINO's, verbatim in substance
        npatch = x.shape[1] - 1
        N = self.pos_embed.shape[1] - 1
        if npatch == N and w == h:
            return self.pos_embed
        class_pos_embed = self.pos_embed[:, 0]
        patch_pos_embed = self.pos_embed[:, 1:]
        dim = x.shape[-1]
        w0 = w // self.patch_embed.patch_size
        h0 = h // self.patch_embed.patch_size
        w0, h0 = w0 + 0.1, h0 + 0.1
        patch_pos_embed = nn.functional.interpolate(
            patch_pos_embed.reshape(1, int(math.sqrt(N)), int(math.sqrt(N)), dim).permute(0, 3, 1, 2),
            scale_factor=(w0 / math.sqrt(N), h0 / math.sqrt(N)), mode="bicubic")
        patch_pos_embed = patch_pos_embed.permute(0, 2, 3, 1).view(1, -1, dim)
        return torch.cat((class_pos_embed.unsqueeze(0), patch_pos_embed), dim=1)

    def blocks_out(self, x, want):
        B, nc, w, h = x.shape
        x = self.patch_embed(x)
        x = torch.cat((self.cls_token.expand(B, -1, -1), x), dim=1)
        x = x + self.interpolate_pos_encoding(x, w, h)
        out = []
        for i, blk in enumerate(self.blocks[:max(want)]):
            x = blk(x)
            if i + 1 in want:
                out.append(x)
        return out


def main():
    wpath, prefix, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    torch.set_num_threads(threads)
    sd, meta = load_safetensors(wpath)
    cfg = json.loads(meta["config"])
    m = VisionTransformer(cfg).eval()
    m.load_state_dict(sd)
    want = [3, 6, 9, 12] if cfg["depth"] >= 12 else [cfg["depth"]]
    with torch.no_grad():
        for s in sys.argv[4:]:
            S = int(s)
            case, cmeta = load_safetensors(f"{prefix}{S}.safetensors")
            x = case["x"]
            ref = m.blocks_out(x, [int(cmeta["block"])])[-1]
            err = (ref - case["tokens"]).abs().max().item() / ref.abs().max().item()
            if S < 384:
                m.blocks_out(x, want)   # warm-up (the parity run above warms the large sizes)
            dt = 1e30
            for _ in range(2 if S >= 384 else 8):   # best of, as vit_bench
                t0 = time.perf_counter()
                m.blocks_out(x, want)
                dt = min(dt, time.perf_counter() - t0)
            print(f"s{S}_images_per_s={1 / dt:.4f}\ns{S}_rel_err={err:.3g}")


if __name__ == "__main__":
    main()
