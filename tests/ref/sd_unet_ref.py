"""sd_unet_ref.py - Stable Diffusion's UNet2DConditionModel (diffusers v0.20.0)
re-implemented in plain PyTorch from ../shared/spec/latent-diffusion.md
sections 2-3 (no diffusers needed), with the attention as torch 1.13 runs it
in diffusers (AttnProcessor: baddbmm scores, softmax, bmm). Same block types
and configs as lib/models/sdunet.c, same state_dict names.

  sd_unet_ref.py check WEIGHTS CASE
      loads a fixture (config from the weights' metadata) and prints the
      relative error of eps for the case's two contexts (float64).
  sd_unet_ref.py bench THREADS REPS SIZE...
      an SD-v1-4-shaped UNet (hub unet/config.json) with random weights,
      batch-2 forward at each SIZE x SIZE latents with a 77-token context:
      key=value lines forward_b2_s_SIZE (fastest of REPS after a warm-up)
      and peak_rss_mb_SIZE, for tests/bench/sdunet.sh.
"""
import json
import math
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

SD14 = {"attention_head_dim": 8, "block_out_channels": [320, 640, 1280, 1280], "cross_attention_dim": 768,
        "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"], "flip_sin_to_cos": True, "freq_shift": 0,
        "in_channels": 4, "layers_per_block": 2, "norm_eps": 1e-5, "norm_num_groups": 32, "out_channels": 4,
        "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3}


def per_block(v, n):
    return list(v) if isinstance(v, (list, tuple)) else [v] * n


class Resnet(nn.Module):
    def __init__(self, cin, cout, temb, groups, eps, scale=1.0):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin, eps=eps)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.time_emb_proj = nn.Linear(temb, cout)
        self.norm2 = nn.GroupNorm(groups, cout, eps=eps)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None
        self.scale = scale

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        s = self.conv_shortcut(x) if self.conv_shortcut is not None else x
        return (s + h) / self.scale


class Attention(nn.Module):
    def __init__(self, dim, ctx_dim, heads):
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(ctx_dim, dim, bias=False)
        self.to_v = nn.Linear(ctx_dim, dim, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(dim, dim)])

    def split(self, t):
        b, n, c = t.shape
        return t.reshape(b, n, self.heads, c // self.heads).permute(0, 2, 1, 3).reshape(b * self.heads, n, c // self.heads)

    def forward(self, x, ctx=None):
        c = x if ctx is None else ctx
        q, k, v = self.split(self.to_q(x)), self.split(self.to_k(c)), self.split(self.to_v(c))
        scale = q.shape[-1] ** -0.5
        s = torch.baddbmm(torch.empty(q.shape[0], q.shape[1], k.shape[1], dtype=q.dtype), q, k.transpose(-1, -2), beta=0, alpha=scale)
        o = torch.bmm(s.softmax(dim=-1), v)
        b = x.shape[0]
        o = o.reshape(b, self.heads, o.shape[1], o.shape[2]).permute(0, 2, 1, 3).reshape(b, o.shape[1], -1)
        return self.to_out[0](o)


class GEGLU(nn.Module):
    def __init__(self, dim, inner):
        super().__init__()
        self.proj = nn.Linear(dim, 2 * inner)

    def forward(self, x):
        a, g = self.proj(x).chunk(2, dim=-1)
        return a * F.gelu(g)


class FF(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.net = nn.ModuleList([GEGLU(dim, 4 * dim), nn.Dropout(0.0), nn.Linear(4 * dim, dim)])

    def forward(self, x):
        return self.net[2](self.net[0](x))


class TBlock(nn.Module):
    def __init__(self, dim, ctx_dim, heads):
        super().__init__()
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn1 = Attention(dim, dim, heads)
        self.attn2 = Attention(dim, ctx_dim, heads)
        self.ff = FF(dim)

    def forward(self, h, ctx):
        h = self.attn1(self.norm1(h)) + h
        h = self.attn2(self.norm2(h), ctx) + h
        return self.ff(self.norm3(h)) + h


class Transformer2D(nn.Module):
    def __init__(self, dim, ctx_dim, heads, groups, layers, linear):
        super().__init__()
        self.norm = nn.GroupNorm(groups, dim, eps=1e-6)
        self.linear = linear
        self.proj_in = nn.Linear(dim, dim) if linear else nn.Conv2d(dim, dim, 1)
        self.transformer_blocks = nn.ModuleList([TBlock(dim, ctx_dim, heads) for _ in range(layers)])
        self.proj_out = nn.Linear(dim, dim) if linear else nn.Conv2d(dim, dim, 1)

    def forward(self, x, ctx):
        b, c, hh, ww = x.shape
        h = self.norm(x)
        if not self.linear:
            h = self.proj_in(h)
        h = h.permute(0, 2, 3, 1).reshape(b, hh * ww, c)
        if self.linear:
            h = self.proj_in(h)
        for blk in self.transformer_blocks:
            h = blk(h, ctx)
        if self.linear:
            h = self.proj_out(h)
        h = h.reshape(b, hh, ww, c).permute(0, 3, 1, 2).contiguous()
        if not self.linear:
            h = self.proj_out(h)
        return h + x


class Sampler(nn.Module):
    def __init__(self, ch, down):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, stride=2 if down else 1, padding=1)
        self.down = down

    def forward(self, x):
        return self.conv(x if self.down else F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Block(nn.Module):
    pass


class UNet(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        boc = cfg["block_out_channels"]
        nb = len(boc)
        lpb = per_block(cfg.get("layers_per_block", 2), nb)
        heads = per_block(cfg.get("attention_head_dim", 8), nb)
        tl = per_block(cfg.get("transformer_layers_per_block", 1), nb)
        X, G, eps = cfg["cross_attention_dim"], cfg.get("norm_num_groups", 32), cfg.get("norm_eps", 1e-5)
        lin = cfg.get("use_linear_projection", False)
        te = cfg.get("time_embedding_dim") or 4 * boc[0]
        self.cfg = cfg
        self.conv_in = nn.Conv2d(cfg.get("in_channels", 4), boc[0], 3, padding=1)
        self.time_embedding = nn.Module()
        self.time_embedding.linear_1 = nn.Linear(boc[0], te)
        self.time_embedding.linear_2 = nn.Linear(te, te)
        self.down_blocks = nn.ModuleList()
        ch = boc[0]
        for i, kind in enumerate(cfg["down_block_types"]):
            b = Block()
            b.cross = kind == "CrossAttnDownBlock2D"
            b.resnets = nn.ModuleList()
            b.attentions = nn.ModuleList()
            for j in range(lpb[i]):
                b.resnets.append(Resnet(ch, boc[i], te, G, eps))
                ch = boc[i]
                if b.cross:
                    b.attentions.append(Transformer2D(ch, X, heads[i], G, tl[i], lin))
            b.downsamplers = nn.ModuleList([Sampler(ch, True)]) if i < nb - 1 else None
            self.down_blocks.append(b)
        self.mid_block = None
        if cfg.get("mid_block_type", "UNetMidBlock2DCrossAttn") is not None:
            msf = cfg.get("mid_block_scale_factor", 1)
            self.mid_block = Block()
            self.mid_block.resnets = nn.ModuleList([Resnet(ch, ch, te, G, eps, msf), Resnet(ch, ch, te, G, eps, msf)])
            self.mid_block.attentions = nn.ModuleList([Transformer2D(ch, X, heads[-1], G, tl[-1], lin)])
        self.up_blocks = nn.ModuleList()
        for i, kind in enumerate(cfg["up_block_types"]):
            r = nb - 1 - i
            b = Block()
            b.cross = kind == "CrossAttnUpBlock2D"
            b.resnets = nn.ModuleList()
            b.attentions = nn.ModuleList()
            inp = boc[max(r - 1, 0)]
            for j in range(lpb[r] + 1):
                skip = inp if j == lpb[r] else boc[r]
                b.resnets.append(Resnet((ch if j == 0 else boc[r]) + skip, boc[r], te, G, eps))
                if b.cross:
                    b.attentions.append(Transformer2D(boc[r], X, heads[r], G, tl[r], lin))
            ch = boc[r]
            b.upsamplers = nn.ModuleList([Sampler(ch, False)]) if i < nb - 1 else None
            self.up_blocks.append(b)
        self.conv_norm_out = nn.GroupNorm(G, ch, eps=eps)
        self.conv_out = nn.Conv2d(ch, cfg.get("out_channels", 4), 3, padding=1)

    def time_proj(self, t, dtype):
        half = self.cfg["block_out_channels"][0] // 2
        e = -math.log(10000) * torch.arange(0, half, dtype=torch.float32) / (half - self.cfg.get("freq_shift", 0))
        a = t[:, None].float() * torch.exp(e)[None, :]
        emb = torch.cat([torch.sin(a), torch.cos(a)], dim=-1)
        if self.cfg.get("flip_sin_to_cos", True):
            emb = torch.cat([emb[:, half:], emb[:, :half]], dim=-1)
        return emb.to(dtype)

    def forward(self, x, t, ctx):
        temb = self.time_proj(t, x.dtype)
        temb = self.time_embedding.linear_2(F.silu(self.time_embedding.linear_1(temb)))
        h = self.conv_in(x)
        skips = [h]
        for b in self.down_blocks:
            for j, r in enumerate(b.resnets):
                h = r(h, temb)
                if b.cross:
                    h = b.attentions[j](h, ctx)
                skips.append(h)
            if b.downsamplers is not None:
                h = b.downsamplers[0](h)
                skips.append(h)
        if self.mid_block is not None:
            h = self.mid_block.resnets[0](h, temb)
            h = self.mid_block.attentions[0](h, ctx)
            h = self.mid_block.resnets[1](h, temb)
        for b in self.up_blocks:
            for j, r in enumerate(b.resnets):
                h = r(torch.cat([h, skips.pop()], dim=1), temb)
                if b.cross:
                    h = b.attentions[j](h, ctx)
            if b.upsamplers is not None:
                h = b.upsamplers[0](h)
        return self.conv_out(F.silu(self.conv_norm_out(h)))


def check(weights, case):
    from st import load_safetensors
    w, meta = load_safetensors(weights)
    c, _ = load_safetensors(case)
    m = UNet(json.loads(meta["config"])).double()
    missing = m.load_state_dict({k: v.double() for k, v in w.items()}, strict=True)
    assert not missing.missing_keys and not missing.unexpected_keys
    with torch.no_grad():
        for p in ["", "l77."]:
            eps = m(c[p + "x"].double(), c[p + "t"], c[p + "ctx"].double())
            ref = c[p + "eps_f64"]
            print("%seps rel err %.3g" % (p, float((eps - ref).abs().max() / ref.abs().max())))


def randomise(m, seed):
    """the scales of glad's random model (sdunet.h), uniform, in place;
    returns the generator (bench draws its inputs from it next)"""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if p.dim() >= 2:
                a = p[0].numel() ** -0.5
            else:
                a = 0.1 if not name.endswith("weight") or "norm" not in name else 0.2
            p.uniform_(-a * 3 ** 0.5, a * 3 ** 0.5, generator=g)
            if p.dim() == 1 and "norm" in name and name.endswith("weight"):
                p.add_(1.0)
    return g


def bench(threads, reps, sizes):
    torch.set_num_threads(threads)
    t0 = time.time()
    with torch.no_grad():
        m = UNet(SD14).eval()
        g = randomise(m, 1)
        print("params=%d\nbuild_s=%.2f" % (sum(p.numel() for p in m.parameters()), time.time() - t0))
        for size in sizes:
            B, L = 2, 77
            x = torch.rand(B, 4, size, size, generator=g) * 2 - 1
            ctx = torch.rand(B, L, 768, generator=g) * 2 - 1
            t = torch.tensor([601, 601])
            m(x, t, ctx)
            best = 1e30
            for _ in range(reps):
                t0 = time.time()
                m(x, t, ctx)
                best = min(best, time.time() - t0)
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print("forward_b2_s_%d=%.3f\npeak_rss_mb_%d=%.0f" % (size, best, size, rss), flush=True)


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "check":
        check(sys.argv[2], sys.argv[3])
    elif len(sys.argv) >= 5 and sys.argv[1] == "bench":
        bench(int(sys.argv[2]), int(sys.argv[3]), [int(s) for s in sys.argv[4:]])
    else:
        sys.exit(__doc__)
