#!/usr/bin/python3
"""metrics_ref.py - Python reference for glad-auroc (tests and benchmark).

  metrics_ref.py make OUT [--n 100] [--size 256] [--classes 2] [--seed 0]
      write a scored glad stream: per record label, score, amap [1,H,W] f32,
      mask [1,H,W] u8 with random elliptic blobs (several per anomalous image).
  metrics_ref.py eval FILE... [--by class|none]
      per class: scikit-learn roc_auc_score / average_precision_score /
      precision_recall_curve F1max at image and pixel level, the official
      GLAD/RD4AD compute_pro loop (skimage.measure.label + regionprops inside
      the 200-threshold loop, as in the papers' code) as pro_compat, and an
      exact numpy AUPRO@0.3 (every distinct threshold, interpolated at 0.3,
      /0.3) as aupro. Prints JSON like `glad-auroc --format json`.
Needs python3-numpy, python3-sklearn, python3-skimage, python3-msgpack-numpy.
"""
import json
import sys

import msgpack
import msgpack_numpy
import numpy as np


def read_stream(paths):
    hdr = None
    for p in paths:
        with open(p, "rb") as f:
            up = msgpack.Unpacker(f, object_hook=msgpack_numpy.decode, raw=False, max_buffer_size=1 << 31)
            for obj in up:
                obj = {(k.decode() if isinstance(k, bytes) else k): v for k, v in obj.items()}
                if "glad" in obj and "history" in obj:
                    hdr = obj
                    continue
                yield obj


def write_stream(path, recs, history):
    with open(path, "wb") as f:
        f.write(msgpack.packb({"glad": 1, "history": history}, default=msgpack_numpy.encode))
        for r in recs:
            f.write(msgpack.packb(r, default=msgpack_numpy.encode))


def make(out, n=100, size=256, classes=2, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    recs = []
    for i in range(n):
        cls = "c%d" % (i % classes)
        label = int(rng.random() < 0.6)
        mask = np.zeros((size, size), np.uint8)
        amap = rng.normal(0, 0.25, (size, size)).astype(np.float32)
        if label:
            for _ in range(rng.integers(1, 4)):
                cy, cx = rng.uniform(0.15, 0.85, 2) * size
                ry, rx = rng.uniform(0.03, 0.12, 2) * size
                blob = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
                mask[blob] = 1
                amap += (rng.uniform(0.3, 1.2) * np.exp(-(((yy - cy) / (1.5 * ry)) ** 2 + ((xx - cx) / (1.5 * rx)) ** 2))).astype(np.float32)
        amap = amap.astype(np.float32)
        score = float(np.sort(amap.ravel())[-250:].mean())
        recs.append({"id": "%s/test/%s/%03d" % (cls, "blob" if label else "good", i), "class": cls, "split": "test",
                     "label": label, "defect": "blob" if label else "good", "score": score,
                     "amap": amap[None], "mask": mask[None]})
    write_stream(out, recs, [{"tool": "metrics_ref.py", "version": "0", "args": ["make", out]}])


def f1max(labels, scores):
    from sklearn.metrics import precision_recall_curve
    p, r, _ = precision_recall_curve(labels, scores)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = 2 * p * r / (p + r)
    f = f[np.isfinite(f)]
    return float(f.max()) if f.size else None


def compute_pro(masks, amaps, num_th=200):
    """GLAD utilize.compute_pro / RD4AD, with the DataFrame replaced by lists."""
    from skimage import measure
    from sklearn.metrics import auc
    binary_amaps = np.zeros_like(amaps, dtype=bool)
    min_th, max_th = amaps.min(), amaps.max()
    delta = (max_th - min_th) / num_th
    pros_l, fprs_l = [], []
    for th in np.arange(min_th, max_th, delta):
        binary_amaps[amaps <= th] = 0
        binary_amaps[amaps > th] = 1
        pros = []
        for binary_amap, mask in zip(binary_amaps, masks):
            for region in measure.regionprops(measure.label(mask)):
                tp_pixels = binary_amap[region.coords[:, 0], region.coords[:, 1]].sum()
                pros.append(tp_pixels / region.area)
        inverse_masks = 1 - masks
        fp_pixels = np.logical_and(inverse_masks, binary_amaps).sum()
        fpr = fp_pixels / inverse_masks.sum()
        pros_l.append(np.mean(pros))
        fprs_l.append(fpr)
    fprs = np.array(fprs_l); pros = np.array(pros_l)
    keep = fprs < 0.3
    fprs, pros = fprs[keep], pros[keep]
    fprs = fprs / fprs.max()
    return float(auc(fprs, pros))


def exact_aupro(masks, amaps, lim=0.3):
    """Every distinct score a threshold: PRO = mean over regions of TP/area."""
    from skimage import measure
    w = np.zeros(amaps.shape, np.float64)   # per-pixel contribution to PRO
    nreg = 0
    for i, m in enumerate(masks):
        lab = measure.label(m, connectivity=2)
        areas = np.bincount(lab.ravel())
        contrib = np.where(lab > 0, 1.0 / areas[lab], 0.0)
        w[i] = contrib
        nreg += lab.max()
    s = amaps.ravel().astype(np.float64); w = w.ravel(); neg = (masks.ravel() == 0)
    order = np.argsort(-s, kind="stable")
    s, w, neg = s[order], w[order], neg[order]
    fp = np.cumsum(neg) / neg.sum(); pro = np.cumsum(w) / nreg
    last = np.r_[np.nonzero(np.diff(s))[0], s.size - 1]   # end of each tie group
    x = np.r_[0.0, fp[last]]; y = np.r_[0.0, pro[last]]
    k = np.searchsorted(x, lim, side="left")               # first x >= lim
    xs, ys = x[:k], y[:k]
    if k < x.size:
        yl = y[k - 1] + (y[k] - y[k - 1]) * (lim - x[k - 1]) / (x[k] - x[k - 1]) if x[k] > x[k - 1] else y[k]
        xs, ys = np.r_[xs, lim], np.r_[ys, yl]
    return float(np.sum((xs[1:] - xs[:-1]) * (ys[1:] + ys[:-1]) / 2) / lim)


def metrics(recs):
    from sklearn.metrics import average_precision_score, roc_auc_score
    lab = np.array([r["label"] for r in recs]); sc = np.array([r["score"] for r in recs], np.float64)
    out = {"n": len(recs), "n_anomalous": int(lab.sum())}
    both = 0 < lab.sum() < len(lab)
    out["i_auroc"] = float(roc_auc_score(lab, sc)) if both else None
    out["i_ap"] = float(average_precision_score(lab, sc)) if lab.sum() else None
    out["i_f1max"] = f1max(lab, sc) if lab.sum() else None
    if "amap" in recs[0]:
        amaps = np.stack([np.asarray(r["amap"], np.float32).reshape(r["amap"].shape[-2:]) for r in recs])
        masks = np.stack([(np.asarray(r["mask"]).reshape(r["mask"].shape[-2:]) > 0).astype(np.uint8) for r in recs])
        gt = masks.ravel(); pr = amaps.ravel()
        ok = 0 < gt.sum() < gt.size
        out["p_auroc"] = float(roc_auc_score(gt, pr)) if ok else None
        out["p_ap"] = float(average_precision_score(gt, pr)) if ok else None
        out["p_f1max"] = f1max(gt, pr) if ok else None
        out["aupro"] = exact_aupro(masks, amaps) if ok else None
        out["pro_compat"] = compute_pro(masks, amaps) if ok else None
    return out


def main(argv):
    if len(argv) >= 2 and argv[0] == "make":
        opt = dict(n=100, size=256, classes=2, seed=0)
        a = argv[2:]
        for i in range(0, len(a), 2):
            opt[a[i].lstrip("-")] = int(a[i + 1])
        make(argv[1], **opt)
        return 0
    if len(argv) >= 2 and argv[0] == "eval":
        by = "class"
        files = []
        a = argv[1:]
        i = 0
        while i < len(a):
            if a[i] == "--by":
                by = a[i + 1]; i += 2
            else:
                files.append(a[i]); i += 1
        groups = {}
        for r in read_stream(files):
            groups.setdefault(r.get("class", "unknown") if by == "class" else "all", []).append(r)
        rows = []
        for name, recs in groups.items():
            m = metrics(recs)
            m["name"] = name
            rows.append(m)
        keys = ["i_auroc", "i_ap", "i_f1max", "p_auroc", "p_ap", "p_f1max", "aupro", "pro_compat"]
        mean = {}
        for k in keys:
            v = [r[k] for r in rows if r.get(k) is not None]
            mean[k] = float(np.mean(v)) if v else None
        print(json.dumps({"by": by, "rows": rows, "mean": mean}))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
