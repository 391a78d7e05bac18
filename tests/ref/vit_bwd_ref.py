"""vit_bwd_ref.py - PyTorch gradients of the DINO ViT fixture for
tests/test_vit_bwd.c (issue #21 item 1): the VisionTransformer of vit_ref.py
(DINO's layers) in float64 with the weights of
tests/fixtures/dino-vit.weights.safetensors (patch 8, dim 64, depth 4,
4 heads, pos_embed for a 4x4 grid), two fixed inputs:
  s32: 1 image 32x32 (the stored grid: pos_embed used as is)
  s48: 1 image 48x40 (a 6x5 grid: DINO's bicubic pos_embed interpolation)
and a fixed random linear loss of the raw outputs of blocks 1, 3 and 4
  L_case = sum_k <G_k, tokens_k>
(so dL/dtokens_k = G_k). Writes the case file (float32):
  <case>.x, <case>.g<k> (the G_k), <case>.loss, <case>.dx (input gradient),
  <case>.dpos (pos_embed gradient of that case alone),
  grad.<name>: every parameter's gradient of L_s32 + L_s48 (one set, so the
  file stays under 1 MB; norm.* are unused by block outputs and left out).

usage: python3 tests/ref/vit_bwd_ref.py [WEIGHTS] [OUT]
  defaults tests/fixtures/dino-vit.weights.safetensors,
  tests/fixtures/vit-bwd.case.safetensors
"""
import json
import sys

import torch

from st import load_safetensors, save_safetensors
from vit_ref import VisionTransformer

BLOCKS = [1, 3, 4]
CASES = [("s32", 1, 32, 32), ("s48", 1, 48, 40)]


def main():
    wpath = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/dino-vit.weights.safetensors"
    out = sys.argv[2] if len(sys.argv) > 2 else "tests/fixtures/vit-bwd.case.safetensors"
    sd, meta = load_safetensors(wpath)
    cfg = json.loads(meta["config"])
    m = VisionTransformer(cfg).double()
    m.load_state_dict({k: v.double() for k, v in sd.items()})
    gen = torch.Generator().manual_seed(21)
    res, total = {}, {}
    for name, B, H, W in CASES:
        x = torch.randn(B, 3, H, W, generator=gen, dtype=torch.float64).requires_grad_(True)
        toks = m.blocks_out(x, BLOCKS)
        gs = [torch.randn(t.shape, generator=gen, dtype=torch.float64) for t in toks]
        loss = sum((g * t).sum() for g, t in zip(gs, toks))
        m.zero_grad()
        loss.backward()
        res[f"{name}.x"] = x.detach()
        for k, g in zip(BLOCKS, gs):
            res[f"{name}.g{k}"] = g
        res[f"{name}.loss"] = loss.detach().reshape(1)
        res[f"{name}.dx"] = x.grad
        res[f"{name}.dpos"] = m.pos_embed.grad.clone()
        for pn, p in m.named_parameters():
            if not pn.startswith("norm."):
                total[pn] = total.get(pn, 0) + p.grad.clone()
        print(f"{name}: loss {loss.item():.6f}")
    for pn, g in total.items():
        res[f"grad.{pn}"] = g
    save_safetensors(out, res, {"source": "tests/ref/vit_bwd_ref.py (float64 PyTorch, DINO ViT layers)",
                                "blocks": ",".join(map(str, BLOCKS))})


if __name__ == "__main__":
    main()
