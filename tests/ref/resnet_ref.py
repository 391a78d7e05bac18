"""resnet_ref.py - torchvision wide_resnet50_2 (eval mode, layer1..layer3) for
make bench: loads the weights resnet_bench wrote (torchvision key names,
layer4/fc absent), times a batch-1 forward of the same input (fastest of 5) on the same
number of threads, and checks glad's features against its own.

usage: resnet_ref.py WEIGHTS.safetensors FEATURES.safetensors THREADS
"""
import sys
import time

import torch

import torchvision

from st import load_safetensors


def main():
    wpath, fpath, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    torch.set_num_threads(threads)
    m = torchvision.models.wide_resnet50_2()
    res = m.load_state_dict(load_safetensors(wpath)[0], strict=False)
    assert all(k.startswith(("layer4.", "fc.")) for k in res.missing_keys) and not res.unexpected_keys, res
    m.eval()
    glad = load_safetensors(fpath)[0]
    x = glad["x"]

    def features(x):
        h = m.maxpool(m.relu(m.bn1(m.conv1(x))))
        l1 = m.layer1(h)
        l2 = m.layer2(l1)
        return l1, l2, m.layer3(l2)

    with torch.no_grad():
        ref = features(x)
        s = cpu = 1e30
        for _ in range(5):  # the fastest of 5 and the thread's CPU time, as resnet_bench
            c0, t0 = time.thread_time(), time.perf_counter()
            features(x)
            s, cpu = min(s, time.perf_counter() - t0), min(cpu, time.thread_time() - c0)
    print("forward_b1_s=%.4f" % s)
    print("images_per_s=%.3f" % (1 / s))
    print("thread_cpu_s=%.4f" % cpu)
    for i, r in enumerate(ref):
        g = glad["layer%d" % (i + 1)]
        err = (g - r).abs().max().item() / r.abs().max().item()
        print("layer%d_rel_err=%.3g" % (i + 1, err))


if __name__ == "__main__":
    main()
