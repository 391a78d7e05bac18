"""mobilenet_ref.py - torchvision's MobileNetV2 (random weights, eval mode) for
make bench: times model.features[:18] (the first conv and the 17
inverted-residual blocks, what glad's mobilenet_bench times as "blocks") at
SIZE x SIZE and, at 224, the whole forward (classifier included), batch 1,
median of several runs after a warm-up, on THREADS threads.

usage: mobilenet_ref.py SIZE THREADS
"""
import sys
import time

import torch
import torchvision


def median_time(fn, reps):
    fn()
    t = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        t.append(time.perf_counter() - t0)
    t.sort()
    return t[len(t) // 2]


def main():
    size, threads = int(sys.argv[1]), int(sys.argv[2])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v2(weights=None).eval()
    x = torch.rand(1, 3, size, size) * 2 - 1
    reps = 15 if size <= 256 else 5
    blocks = model.features[:18]
    with torch.inference_mode():
        t = median_time(lambda: blocks(x), reps)
        print(f"blocks_s={t:.5f}\nblocks_images_per_s={1 / t:.3f}")
        if size == 224:
            t = median_time(lambda: model(x), reps)
            print(f"forward_s={t:.5f}\nforward_images_per_s={1 / t:.3f}")


if __name__ == "__main__":
    main()
