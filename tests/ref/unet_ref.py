"""unet_ref.py - the DDAD UNet in PyTorch (architectures.md section 1), for
make bench: loads the weights glad wrote (safetensors, official key names) and
times a batch-1 and a batch-4 forward, a batch-4 training step (Adam) and a DDIM-10
reconstruction on the same number of threads.

usage: unet_ref.py WEIGHTS.safetensors SIZE BASE HEADS THREADS
"""
import json
import math
import sys
import time

import numpy as np
import torch

import torch.nn as nn
import torch.nn.functional as F

from st import load_safetensors


def gn(ch):
    return nn.GroupNorm(32, ch)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, emb, up=False, down=False):
        super().__init__()
        self.in_layers = nn.Sequential(gn(cin), nn.SiLU(), nn.Conv2d(cin, cout, 3, padding=1))
        self.embed_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb, cout))
        self.out_layers = nn.Sequential(gn(cout), nn.SiLU(), nn.Dropout(0.0), nn.Conv2d(cout, cout, 3, padding=1))
        self.skip_connection = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()
        self.up, self.down = up, down

    def forward(self, x, e):
        if self.up or self.down:
            h = self.in_layers[1](self.in_layers[0](x))
            rs = (lambda t: F.interpolate(t, scale_factor=2, mode="nearest")) if self.up else (lambda t: F.avg_pool2d(t, 2))
            h, x = rs(h), rs(x)
            h = self.in_layers[2](h)
        else:
            h = self.in_layers(x)
        h = h + self.embed_layers(e)[:, :, None, None]
        return self.skip_connection(x) + self.out_layers(h)


class Attn(nn.Module):
    def __init__(self, ch, heads):
        super().__init__()
        self.norm, self.heads = gn(ch), heads
        self.to_qkv = nn.Conv1d(ch, 3 * ch, 1)
        self.proj_out = nn.Conv1d(ch, ch, 1)

    def forward(self, x):
        b, c, h, w = x.shape
        qkv = self.to_qkv(self.norm(x).reshape(b, c, -1))
        bs, width, length = qkv.shape
        ch = width // (3 * self.heads)
        q, k, v = qkv.reshape(bs * self.heads, ch * 3, length).split(ch, dim=1)
        scale = 1 / math.sqrt(math.sqrt(ch))
        wgt = torch.softmax(torch.einsum("bct,bcs->bts", q * scale, k * scale), dim=-1)
        a = torch.einsum("bts,bcs->bct", wgt, v).reshape(bs, -1, length)
        return x + self.proj_out(a).reshape(b, c, h, w)


class UNet(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        base, mults, nres = cfg["base_channels"], cfg["channel_mults"], cfg["num_res_blocks"]
        attn = [int(a) for a in str(cfg["attention_resolutions"]).split(",") if a]
        heads, cin, size = cfg["n_heads"], cfg["in_channels"], cfg["img_size"]
        self.base = base
        emb = 4 * base
        self.time_embedding = nn.Sequential(nn.Identity(), nn.Linear(base, emb), nn.SiLU(), nn.Linear(emb, emb))
        ch = int(mults[0] * base)
        self.down = nn.ModuleList([nn.Sequential(nn.Conv2d(cin, ch, 3, padding=1))])
        skips, ds = [ch], 1
        for lv, m in enumerate(mults):
            for _ in range(nres):
                layers = [ResBlock(ch, int(m * base), emb)]
                ch = int(m * base)
                if size // ds in attn:
                    layers.append(Attn(ch, heads))
                self.down.append(nn.Sequential(*layers))
                skips.append(ch)
            if lv != len(mults) - 1:
                self.down.append(nn.Sequential(ResBlock(ch, ch, emb, down=True)))
                ds *= 2
                skips.append(ch)
        self.middle = nn.Sequential(ResBlock(ch, ch, emb), Attn(ch, heads), ResBlock(ch, ch, emb))
        self.up = nn.ModuleList()
        for lv, m in list(enumerate(mults))[::-1]:
            for j in range(nres + 1):
                s = skips.pop()
                layers = [ResBlock(ch + s, int(m * base), emb)]
                ch = int(m * base)
                if size // ds in attn:
                    layers.append(Attn(ch, heads))
                if lv and j == nres:
                    layers.append(ResBlock(ch, ch, emb, up=True))
                    ds //= 2
                self.up.append(nn.Sequential(*layers))
        self.out = nn.Sequential(gn(ch), nn.SiLU(), nn.Conv2d(ch, cin, 3, padding=1))

    def forward(self, x, t):
        half = self.base // 2
        f = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
        e = self.time_embedding(torch.cat([torch.sin(t[:, None] * f), torch.cos(t[:, None] * f)], 1))
        hs, h = [], x
        for blk in self.down:
            for layer in blk:
                h = layer(h, e) if isinstance(layer, ResBlock) else layer(h)
            hs.append(h)
        for layer in self.middle:
            h = layer(h, e) if isinstance(layer, ResBlock) else layer(h)
        for blk in self.up:
            h = torch.cat([h, hs.pop()], 1)
            for layer in blk:
                h = layer(h, e) if isinstance(layer, ResBlock) else layer(h)
        return self.out(h)


def main():
    path, size, base, heads, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    torch.set_num_threads(threads)
    w, meta = load_safetensors(path)
    cfg = json.loads(meta["config"])
    model = UNet(cfg)
    missing = model.load_state_dict(w, strict=True)
    x = torch.from_numpy((np.arange(4 * 3 * size * size) * 7919 % 2000 / 1000.0 - 1).astype(np.float32).reshape(4, 3, size, size))
    t = torch.tensor([10.0, 200.0, 500.0, 900.0])
    it = 3 if size >= 256 else 6
    # the fastest of the repetitions, as unet_bench reports
    with torch.no_grad():
        model(x[:1], t[:1])
        fwd = 1e30
        for _ in range(it):
            t0 = time.perf_counter()
            model(x[:1], t[:1])
            fwd = min(fwd, time.perf_counter() - t0)
        print("forward_b1_s=%.4f" % fwd)
        model(x, t)
        fwd4 = 1e30
        for _ in range((it + 1) // 2):
            t0 = time.perf_counter()
            model(x, t)
            fwd4 = min(fwd4, time.perf_counter() - t0)
        print("forward_b4_s=%.4f" % fwd4)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    step = 1e30
    for r in range(it + 1):
        s0 = time.perf_counter()
        opt.zero_grad()
        out = model(x, t)
        (out * out).sum().backward()
        opt.step()
        if r:
            step = min(step, time.perf_counter() - s0)
    print("train_b4_s=%.4f" % step)
    betas = np.linspace(1e-4, 0.02, 1000)
    ab = np.cumprod(1 - betas)
    best = 1e30
    with torch.no_grad():
        for _ in range(2):
            t0 = time.perf_counter()
            xt = math.sqrt(ab[250]) * x + math.sqrt(1 - ab[250]) * torch.randn_like(x)
            for k in range(10):
                tt = 250 - 25 * k
                a, an = ab[tt], (ab[tt - 25] if tt - 25 > 0 else 1.0)
                e = model(xt, torch.full((4,), float(tt)))
                x0 = (xt - math.sqrt(1 - a) * e) / math.sqrt(a)
                xt = math.sqrt(an) * x0 + math.sqrt(1 - an) * e
            best = min(best, time.perf_counter() - t0)
        print("ddim10_images_per_s=%.3f" % (4 / best))


if __name__ == "__main__":
    main()
