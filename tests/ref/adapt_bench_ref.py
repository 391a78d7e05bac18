"""adapt_bench_ref.py - the PyTorch side of tests/bench/adapt.sh: the same
loss steps as tests/bench/adapt_bench.c, written as the official code runs
them (plain PyTorch, float32), on the weights and inputs adapt_bench wrote.

ddad  DDAD feature_extractor.py:75-98: fe in train(), a frozen copy in
      eval(), reconst_fe = fe(x0), target_fe = fe(target), the frozen net on
      both under no_grad, loss_fucntion (DLlambda 0.1) over layer1..3,
      zero_grad, backward, torch.optim.AdamW(lr 1e-4) step.
dino  GLAD train_dino.py:51-68, 99-101: only blocks.{2,5,8,11}.mlp train,
      the raw outputs of blocks 3,6,9,12 of the image and reconstruction
      batch, the frozen deepcopy under no_grad, the loss (lmd 0.01),
      backward, torch.optim.Adam(lr 3e-4) step.

usage: /usr/bin/python3 tests/ref/adapt_bench_ref.py ddad|dino WEIGHTS INPUTS STEPS THREADS
prints key=value lines: step_s (each step's wall time), step_cpu_s (its
process CPU time), loss0
"""
import copy
import json
import sys
import time

import torch

from adapt_ref import dino_loss, loss_fucntion
from resnet_fixture import build, features
from st import load_safetensors
from vit_ref import VisionTransformer


def main():
    kind, wpath, ipath, steps, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    torch.set_num_threads(threads)
    inp, _ = load_safetensors(ipath)
    a, b = inp["a"], inp["b"]
    if kind == "ddad":
        fe = build(wpath).train()
        frozen = build(wpath).eval()
        opt = torch.optim.AdamW(fe.parameters(), lr=1e-4)

        def step():
            reconst_fe = features(fe, a)
            target_fe = features(fe, b)
            with torch.no_grad():
                target_frozen_fe = features(frozen, b)
                reconst_frozen_fe = features(frozen, a)
            loss = loss_fucntion(reconst_fe, target_fe, target_frozen_fe, reconst_frozen_fe, 0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss.item()
    else:
        sd, meta = load_safetensors(wpath)
        m = VisionTransformer(json.loads(meta["config"]))
        m.load_state_dict(sd)
        blocks = [3, 6, 9, 12]
        for p in m.parameters():
            p.requires_grad = False
        for name, p in m.named_parameters():
            if any(("blocks.%d.mlp" % (k - 1)) in name for k in blocks):
                p.requires_grad = True
        frozen = copy.deepcopy(m)
        frozen.requires_grad_(False)
        opt = torch.optim.Adam([{"params": filter(lambda p: p.requires_grad, m.parameters()), "lr": 3e-4}])

        def step():
            ti, tr = m.blocks_out(a, blocks), m.blocks_out(b, blocks)
            with torch.no_grad():
                fi, fr = frozen.blocks_out(a, blocks), frozen.blocks_out(b, blocks)
            loss = dino_loss(ti, tr, fi, fr, 0.01)
            loss.backward()
            opt.step()
            opt.zero_grad()
            return loss.item()
    times, cpu, loss0 = [], [], None
    for s in range(steps):
        c0, t0 = time.process_time(), time.perf_counter()
        L = step()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        if loss0 is None:
            loss0 = L
    print("step_s=" + " ".join("%.3f" % t for t in times))
    print("step_cpu_s=" + " ".join("%.3f" % t for t in cpu))
    print("loss0=%.8g" % loss0)


if __name__ == "__main__":
    main()
