"""adapt_ref.py - makes tests/fixtures/adapt.case.safetensors, the PyTorch
reference of one adaptation step of each procedure of lib/models/adapt.h
(tests/test_adapt.c, issue #21 item 4), with the official losses:

ddad.*  DDAD's domain adaptation (DDAD feature_extractor.py:13-23, 75-98) on
        the wide-resnet fixture (ResNet(Bottleneck,[1,2,1,1],width 16)):
        fe in train() mode, a frozen copy in eval(); x0 and target [2,3,64,64]
        (already ImageNet-normalised; the reconstruction itself is the
        sampler's, tested elsewhere); reconst_fe = fe(x0), target_fe =
        fe(target) (two forwards, each with its batch statistics, the running
        statistics moving twice), loss_fucntion with DLlambda 0.1 over
        layer1..3, backward, one torch.optim.AdamW(lr 1e-4) step.
dino.*  GLAD's DINO fine-tuning (train_dino.py:51-68, 99-101) on the dino-vit
        fixture (depth 4, so the feature blocks are 1..4 and blocks.{0..3}.mlp
        train): image and reconstruction [2,3,32,32], loss_fucntion with lmd
        0.01 over the raw outputs (cls included) of the 4 blocks, a frozen
        deepcopy, backward, one torch.optim.Adam(lr 3e-4) step over the
        trainable parameters.
Both in float64 (the reference is exact well below the test's 1e-4).

Stored per case: the inputs, loss [1]; per trained tensor grad.NAME in full
when it has at most 4096 values, else gsample.NAME (512 values at indices
floor(k n / 512)) and gproj.NAME [5] (sum_i g_i r_j(i), r_j(i) = 2 u - 1,
u = glad_rng_uniform_at(j + 1, i); then the L2 norm), as
tests/ref/resnet_bwd_ref.py; upd.NAME: (p_after - p_before) / lr at those
same 512 (or all) indices; ddad: the running statistics after the step.

usage: /usr/bin/python3 tests/ref/adapt_ref.py [RESNET_WEIGHTS VIT_WEIGHTS OUT]
  defaults tests/fixtures/wide-resnet.weights.safetensors,
  tests/fixtures/dino-vit.weights.safetensors, tests/fixtures/adapt.case.safetensors
"""
import copy
import json
import sys

import torch

from resnet_bwd_ref import uniform_at
from resnet_fixture import build, features
from st import load_safetensors, save_safetensors
from vit_ref import VisionTransformer

SAMPLES = 512
NPROJ = 4
FULL = 4096
DDAD_LAMBDA = 0.1
DINO_LAMBDA = 0.01


def loss_fucntion(a, b, c, d, lmd):
    """DDAD feature_extractor.py:13-23 (and train_dino.py:51-68 with i=a, r=b, fi=c, fr=d reordered by the caller)"""
    cos_loss = torch.nn.CosineSimilarity()
    loss1 = loss2 = loss3 = 0
    for item in range(len(a)):
        loss1 += torch.mean(1 - cos_loss(a[item].view(a[item].shape[0], -1), b[item].view(b[item].shape[0], -1)))
        loss2 += torch.mean(1 - cos_loss(b[item].view(b[item].shape[0], -1), c[item].view(c[item].shape[0], -1))) * lmd
        loss3 += torch.mean(1 - cos_loss(a[item].view(a[item].shape[0], -1), d[item].view(d[item].shape[0], -1))) * lmd
    return loss1 + loss2 + loss3


def dino_loss(i, r, fi, fr, lmd):
    """train_dino.py:51-68"""
    cos_loss = torch.nn.CosineSimilarity()
    loss1 = loss2 = loss3 = 0
    for item in range(len(i)):
        loss1 += torch.mean(1 - cos_loss(i[item].view(i[item].shape[0], -1), r[item].view(r[item].shape[0], -1)))
        loss2 += torch.mean(1 - cos_loss(i[item].view(i[item].shape[0], -1), fi[item].view(fi[item].shape[0], -1))) * lmd
        loss3 += torch.mean(1 - cos_loss(r[item].view(r[item].shape[0], -1), fr[item].view(fr[item].shape[0], -1))) * lmd
    return loss1 + loss2 + loss3


def store(out, pre, named, before, lr):
    for name, p in named:
        if p.grad is None:
            continue
        g = p.grad.detach().reshape(-1)
        u = ((p.detach() - before[name]) / lr).reshape(-1)
        n = g.numel()
        if n <= FULL:
            out[pre + "grad." + name] = g
        else:
            idx = torch.tensor([k * n // SAMPLES for k in range(SAMPLES)])
            out[pre + "gsample." + name] = g[idx]
            proj = [float((g.numpy() * (2 * uniform_at(j + 1, n) - 1)).sum()) for j in range(NPROJ)]
            out[pre + "gproj." + name] = torch.tensor(proj + [float(g.norm())], dtype=torch.float64)
        if n > SAMPLES:
            u = u[torch.tensor([k * n // SAMPLES for k in range(SAMPLES)])]
        out[pre + "upd." + name] = u


def ddad(wpath, out, gen):
    fe = build(wpath).double().train()
    frozen = build(wpath).double().eval()
    x0 = torch.randn(2, 3, 64, 64, generator=gen, dtype=torch.float64).float().double()
    target = (0.8 * x0 + 0.6 * torch.randn(2, 3, 64, 64, generator=gen, dtype=torch.float64)).float().double()
    before = {n: p.detach().clone() for n, p in fe.named_parameters()}
    opt = torch.optim.AdamW(fe.parameters(), lr=1e-4)
    reconst_fe = features(fe, x0)
    target_fe = features(fe, target)
    with torch.no_grad():
        target_frozen_fe = features(frozen, target)
        reconst_frozen_fe = features(frozen, x0)
    loss = loss_fucntion(reconst_fe, target_fe, target_frozen_fe, reconst_frozen_fe, DDAD_LAMBDA)
    opt.zero_grad()
    loss.backward()
    opt.step()
    out["ddad.x0"], out["ddad.y"], out["ddad.loss"] = x0, target, loss.detach().reshape(1)
    store(out, "ddad.", fe.named_parameters(), before, 1e-4)
    for name, b in fe.named_buffers():
        if not name.startswith(("layer4.", "fc.")):
            out["ddad." + name] = b.detach().double().reshape(-1) if b.dim() == 0 else b.detach().double()
    print("ddad: loss %.8f" % loss.item())


def dino(wpath, out, gen):
    sd, meta = load_safetensors(wpath)
    cfg = json.loads(meta["config"])
    m = VisionTransformer(cfg).double()
    m.load_state_dict({k: v.double() for k, v in sd.items()})
    depth = cfg["depth"]
    blocks = []
    for q in range(1, 5):   # every quarter of the depth (3,6,9,12 of 12)
        b = (depth * q + 2) // 4
        if b >= 1 and (not blocks or b > blocks[-1]):
            blocks.append(b)
    for p in m.parameters():
        p.requires_grad = False
    for name, p in m.named_parameters():
        if any(("blocks.%d.mlp" % (b - 1)) in name for b in blocks):
            p.requires_grad = True
    frozen = copy.deepcopy(m)
    frozen.requires_grad_(False)
    image = torch.randn(2, 3, 32, 32, generator=gen, dtype=torch.float64).float().double()
    recon = (0.9 * image + 0.45 * torch.randn(2, 3, 32, 32, generator=gen, dtype=torch.float64)).float().double()
    before = {n: p.detach().clone() for n, p in m.named_parameters()}
    opt = torch.optim.Adam([{"params": filter(lambda p: p.requires_grad, m.parameters()), "lr": 3e-4}])
    ti, tr = m.blocks_out(image, blocks), m.blocks_out(recon, blocks)
    with torch.no_grad():
        fi, fr = frozen.blocks_out(image, blocks), frozen.blocks_out(recon, blocks)
    loss = dino_loss(ti, tr, fi, fr, DINO_LAMBDA)
    loss.backward()
    opt.step()
    out["dino.xi"], out["dino.xr"], out["dino.loss"] = image, recon, loss.detach().reshape(1)
    store(out, "dino.", m.named_parameters(), before, 3e-4)
    print("dino: loss %.8f, blocks %s" % (loss.item(), blocks))


def main():
    a = sys.argv[1:] + [None] * 3
    rw = a[0] or "tests/fixtures/wide-resnet.weights.safetensors"
    vw = a[1] or "tests/fixtures/dino-vit.weights.safetensors"
    op = a[2] or "tests/fixtures/adapt.case.safetensors"
    gen = torch.Generator().manual_seed(2104)
    out = {}
    ddad(rw, out, gen)
    dino(vw, out, gen)
    save_safetensors(op, out, {"source": "torch %s, float64: one DDAD domain-adaptation step (AdamW) on the wide-resnet "
                                         "fixture, one GLAD DINO fine-tuning step (Adam) on the dino-vit fixture, "
                                         "the official losses" % torch.__version__,
                               "made_by": "tests/ref/adapt_ref.py", "samples": str(SAMPLES), "projections": str(NPROJ),
                               "full_max": str(FULL), "ddad_lambda": str(DDAD_LAMBDA), "dino_lambda": str(DINO_LAMBDA)})


if __name__ == "__main__":
    main()
