"""resnet_bwd_ref.py - makes tests/fixtures/resnet-bwd.case.safetensors, the
PyTorch reference of glad_resnet_train (tests/test_resnet_bwd.c): the
wide-resnet fixture network (ResNet(Bottleneck,[1,2,1,1],width_per_group=16),
layer4/fc omitted) in train() mode -- batch-statistics BatchNorm, running
statistics updated by the forward -- on a fixed input x [2,3,64,64], with
DDAD's feature loss between the two records (feature_extractor.py:13-23):
loss = sum over layer1..3 of 1 - cos(flatten(f_l[0]), flatten(f_l[1])).
Run in float64, so the reference is exact to well below the test's 1e-4.

The file stays small (every gradient in full would be 3.7 MB):
  x, loss [1], dx (the input gradient, in full);
  grad.NAME for every trained tensor of at most 4096 values (BatchNorm
    weight and bias: all of them);
  gsample.NAME (512 values at indices floor(k n / 512)) and gproj.NAME [5]
    (sum_i g_i r_j(i) for j = 0..3 with r_j(i) = 2 u - 1,
    u = glad_rng_uniform_at(j + 1, i) of lib/core/rng, then the L2 norm) for
    every larger one (the conv weights), so every element takes part;
  NAME.running_mean / NAME.running_var / NAME.num_batches_tracked (as
    float) of every BatchNorm after the forward.
The same again prefixed "two." for DDAD's own pattern (feature_extractor.py:
reconst_fe = fe(x0); target_fe = fe(target)): record 0 and record 1 in two
forwards of one record each, each normalised with its own statistics (the
running statistics move twice), one backward of the same loss.

usage: /usr/bin/python3 tests/ref/resnet_bwd_ref.py WEIGHTS.safetensors OUT.safetensors
"""
import sys

import numpy as np
import torch

from resnet_fixture import build, features
from st import save_safetensors

SAMPLES = 512
NPROJ = 4
FULL = 4096
M64 = (1 << 64) - 1


def uniform_at(seed, n):
    """glad_rng_uniform_at(seed, i) for i in 0..n-1 (splitmix64, uint64 wrap-around)."""
    with np.errstate(over="ignore"):
        i = np.arange(n, dtype=np.uint64)
        z = np.uint64(seed) + np.uint64(0x9E3779B97F4A7C15) * i + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def ddad_loss(feats):
    loss = 0
    for f in feats:
        a, b = f[0].reshape(-1), f[1].reshape(-1)
        loss = loss + 1 - torch.nn.functional.cosine_similarity(a, b, dim=0)
    return loss


def case(m, x, two, out, pre):
    xg = x.clone().requires_grad_(True)
    if two:
        f0, f1 = features(m, xg[0:1]), features(m, xg[1:2])
        feats = [torch.cat([a, b]) for a, b in zip(f0, f1)]
    else:
        feats = features(m, xg)
    loss = ddad_loss(feats)
    loss.backward()
    out[pre + "loss"] = loss.detach().reshape(1)
    out[pre + "dx"] = xg.grad
    grads(m, out, pre)


def main():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    x = x.float().double()  # the float32 input the C test reads
    out = {"x": x}
    for two in (0, 1):
        case(build(sys.argv[1]).double().train(), x, two, out, "two." if two else "")
    save_safetensors(sys.argv[2], out,
                     {"source": "torch %s torchvision %s, float64, train() mode, weights wide-resnet.weights.safetensors, "
                                "DDAD cosine loss of layer1..3 between the two records (one forward; two forwards)"
                                % (torch.__version__, __import__("torchvision").__version__),
                      "made_by": "tests/ref/resnet_bwd_ref.py",
                      "samples": str(SAMPLES), "projections": str(NPROJ), "full_max": str(FULL)})


def grads(m, out, pre):
    for name, p in m.named_parameters():
        if name.startswith(("layer4.", "fc.")):
            continue
        g = p.grad.detach().reshape(-1)
        n = g.numel()
        if n <= FULL:
            out[pre + "grad." + name] = g.reshape(p.shape)
            continue
        idx = torch.tensor([k * n // SAMPLES for k in range(SAMPLES)])
        out[pre + "gsample." + name] = g[idx]
        proj = [float((g.numpy() * (2 * uniform_at(j + 1, n) - 1)).sum()) for j in range(NPROJ)]
        out[pre + "gproj." + name] = torch.tensor(proj + [float(g.norm())], dtype=torch.float64)
    for name, b in m.named_buffers():
        if not name.startswith(("layer4.", "fc.")):
            out[pre + name] = b.detach().double().reshape(-1) if b.dim() == 0 else b.detach().double()


if __name__ == "__main__":
    main()
