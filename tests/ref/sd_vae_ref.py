"""sd_vae_ref.py - Stable Diffusion's AutoencoderKL (diffusers v0.20.0)
re-implemented in plain PyTorch from ../shared/spec/latent-diffusion.md
sections 2 and 4 (no diffusers needed): encoder to the moments (quant_conv
included), decoder (post_quant_conv included), the mid-block attention as
torch 1.13 runs it in diffusers (AttnProcessor: one head, scores, softmax in
float32, bmm). Same block types and configs as lib/models/vae.c, same
state_dict names (the v0.20 attention names). Also the random SD-v1-4-shaped
model of tests/ref/sd_random_model.py.

  sd_vae_ref.py check WEIGHTS CASE
      loads a fixture (config from the weights' metadata) and prints the
      relative errors of the moments and of the decode (float64).
  sd_vae_ref.py bench THREADS REPS SIZE...
      an SD-v1-4-shaped VAE (hub vae/config.json) with random weights,
      batch-1 decode of a SIZE/8 x SIZE/8 latent to a SIZE x SIZE image:
      key=value lines decode_s_SIZE (fastest of REPS after a warm-up) and
      peak_rss_mb_SIZE, for tests/bench/vae.sh.
"""
import json
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

SD14_VAE = {"_class_name": "AutoencoderKL", "act_fn": "silu", "block_out_channels": [128, 256, 512, 512],
            "down_block_types": ["DownEncoderBlock2D"] * 4, "in_channels": 3, "latent_channels": 4,
            "layers_per_block": 2, "norm_num_groups": 32, "out_channels": 3, "sample_size": 512,
            "scaling_factor": 0.18215, "up_block_types": ["UpDecoderBlock2D"] * 4}


class Resnet(nn.Module):   # ResnetBlock2D without temb, GroupNorm eps 1e-6
    def __init__(self, cin, cout, groups):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin, eps=1e-6)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, cout, eps=1e-6)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.conv_shortcut(x) if self.conv_shortcut is not None else x) + h


class MidAttention(nn.Module):   # one head of dim C, q/k/v/out with bias, residual inside
    def __init__(self, ch, groups):
        super().__init__()
        self.group_norm = nn.GroupNorm(groups, ch, eps=1e-6)
        self.to_q, self.to_k, self.to_v = nn.Linear(ch, ch), nn.Linear(ch, ch), nn.Linear(ch, ch)
        self.to_out = nn.ModuleList([nn.Linear(ch, ch)])

    def forward(self, x):
        B, C, H, W = x.shape
        h = self.group_norm(x).view(B, C, H * W).transpose(1, 2)
        q, k, v = self.to_q(h), self.to_k(h), self.to_v(h)
        s = torch.baddbmm(torch.empty(B, H * W, H * W, dtype=q.dtype), q, k.transpose(1, 2), beta=0, alpha=C ** -0.5)
        p = s.float().softmax(dim=-1).to(q.dtype)
        o = self.to_out[0](torch.bmm(p, v))
        return o.transpose(1, 2).reshape(B, C, H, W) + x


class Mid(nn.Module):
    def __init__(self, ch, groups):
        super().__init__()
        self.resnets = nn.ModuleList([Resnet(ch, ch, groups), Resnet(ch, ch, groups)])
        self.attentions = nn.ModuleList([MidAttention(ch, groups)])

    def forward(self, x):
        return self.resnets[1](self.attentions[0](self.resnets[0](x)))


class Down(nn.Module):   # VAE encoder downsampler: zero-pad right/bottom by one, 3x3 stride 2 pad 0
    def __init__(self, ch):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, stride=2, padding=0)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Up(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Block(nn.Module):
    pass


class Encoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        boc, G, n = c["block_out_channels"], c.get("norm_num_groups", 32), c.get("layers_per_block", 2)
        self.conv_in = nn.Conv2d(c.get("in_channels", 3), boc[0], 3, padding=1)
        self.down_blocks = nn.ModuleList()
        ch = boc[0]
        for i, co in enumerate(boc):
            b = Block()
            b.resnets = nn.ModuleList()
            for j in range(n):
                b.resnets.append(Resnet(ch, co, G))
                ch = co
            b.downsamplers = nn.ModuleList([Down(ch)]) if i < len(boc) - 1 else None
            self.down_blocks.append(b)
        self.mid_block = Mid(ch, G)
        self.conv_norm_out = nn.GroupNorm(G, ch, eps=1e-6)
        self.conv_out = nn.Conv2d(ch, 2 * c.get("latent_channels", 4), 3, padding=1)

    def forward(self, x):
        h = self.conv_in(x)
        for b in self.down_blocks:
            for r in b.resnets:
                h = r(h)
            if b.downsamplers is not None:
                h = b.downsamplers[0](h)
        h = self.mid_block(h)
        return self.conv_out(F.silu(self.conv_norm_out(h)))


class Decoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        boc, G, n = c["block_out_channels"], c.get("norm_num_groups", 32), c.get("layers_per_block", 2)
        rev = list(reversed(boc))
        ch = rev[0]
        self.conv_in = nn.Conv2d(c.get("latent_channels", 4), ch, 3, padding=1)
        self.mid_block = Mid(ch, G)
        self.up_blocks = nn.ModuleList()
        for i, co in enumerate(rev):
            b = Block()
            b.resnets = nn.ModuleList()
            for j in range(n + 1):
                b.resnets.append(Resnet(ch, co, G))
                ch = co
            b.upsamplers = nn.ModuleList([Up(ch)]) if i < len(rev) - 1 else None
            self.up_blocks.append(b)
        self.conv_norm_out = nn.GroupNorm(G, ch, eps=1e-6)
        self.conv_out = nn.Conv2d(ch, c.get("out_channels", 3), 3, padding=1)

    def forward(self, z):
        h = self.mid_block(self.conv_in(z))
        for b in self.up_blocks:
            for r in b.resnets:
                h = r(h)
            if b.upsamplers is not None:
                h = b.upsamplers[0](h)
        return self.conv_out(F.silu(self.conv_norm_out(h)))


class VAE(nn.Module):
    def __init__(self, c):
        super().__init__()
        L = c.get("latent_channels", 4)
        self.encoder, self.decoder = Encoder(c), Decoder(c)
        self.quant_conv, self.post_quant_conv = nn.Conv2d(2 * L, 2 * L, 1), nn.Conv2d(L, L, 1)

    def moments(self, x):
        return self.quant_conv(self.encoder(x))

    def decode(self, z):
        return self.decoder(self.post_quant_conv(z))


def randomise(m, seed):
    """uniform +-1/sqrt(fan_in) for convolutions and linear layers (their
    biases too), GroupNorm gamma 1 beta 0: glad_vae_create_random's scales."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, (nn.Conv2d, nn.Linear)):
                a = mod.weight[0].numel() ** -0.5
                mod.weight.uniform_(-a, a, generator=g)
                if mod.bias is not None:
                    mod.bias.uniform_(-a, a, generator=g)
            elif isinstance(mod, nn.GroupNorm):
                mod.weight.fill_(1.0)
                mod.bias.zero_()
    return m


def check(weights, case):
    from st import load_safetensors
    w, meta = load_safetensors(weights)
    c, _ = load_safetensors(case)
    m = VAE(json.loads(meta["config"])).double()
    r = m.load_state_dict({k: v.double() for k, v in w.items()}, strict=True)
    assert not r.missing_keys and not r.unexpected_keys
    with torch.no_grad():
        mo = m.moments(c["x"].double())
        x = m.decode(c["dec.z"].double())
    ref_mo = c["enc.act.quant_conv"].double()
    ref_x = c["dec.x_f64"].double()
    print("moments rel err %.3g" % float((mo - ref_mo).abs().max() / ref_mo.abs().max()))
    print("decode rel err %.3g" % float((x - ref_x).abs().max() / ref_x.abs().max()))


def bench(threads, reps, sizes):
    torch.set_num_threads(threads)
    t0 = time.time()
    with torch.no_grad():
        m = randomise(VAE(SD14_VAE), 1).eval()
        print("params=%d\nbuild_s=%.2f" % (sum(p.numel() for p in m.parameters()), time.time() - t0))
        for size in sizes:
            g = torch.Generator().manual_seed(2)
            z = torch.rand(1, 4, size // 8, size // 8, generator=g) * 2 - 1
            m.decode(z)
            best = 1e30
            for _ in range(reps):
                t0 = time.time()
                m.decode(z)
                best = min(best, time.time() - t0)
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print("decode_s_%d=%.3f\npeak_rss_mb_%d=%.0f" % (size, best, size, rss), flush=True)


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "check":
        check(sys.argv[2], sys.argv[3])
    elif len(sys.argv) >= 5 and sys.argv[1] == "bench":
        bench(int(sys.argv[2]), int(sys.argv[3]), [int(s) for s in sys.argv[4:]])
    else:
        sys.exit(__doc__)
