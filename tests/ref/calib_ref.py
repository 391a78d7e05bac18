#!/usr/bin/python3
"""calib_ref.py - Python reference for glad-auroc's calibrated decisions.

  calib_ref.py eval THRESHOLDS.json FILE
      per class: scikit-learn precision_score / recall_score / f1_score /
      accuracy_score of the image decisions (score > image_threshold) and of
      the pixel decisions (amap > pixel_threshold against the mask binarised
      at half its maximum), and their mean over the classes. Undefined
      figures (no flagged sample, no positive) are null. Prints JSON with the
      keys of `glad-auroc --threshold-file T --format json`.
  calib_ref.py check-fpr THRESHOLDS.json FILE
      the target-FPR rule, checked by its definition on the validation file
      with scikit-learn's roc_curve: the image threshold t lets at most
      target * n normal scores through (score > t) and no smaller normal
      score does (t is the smallest such value among the normal scores).
Needs python3-numpy, python3-sklearn, python3-msgpack-numpy.
"""
import json
import math
import sys

import numpy as np

from metrics_ref import read_stream


def figures(y, p, prefix):
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score
    y = np.asarray(y, np.uint8); p = np.asarray(p, np.uint8)
    out = {}
    out[prefix + "precision"] = float(precision_score(y, p, zero_division=0)) if p.sum() else None
    out[prefix + "recall"] = float(recall_score(y, p, zero_division=0)) if y.sum() else None
    out[prefix + "f1"] = float(f1_score(y, p, zero_division=0)) if (y.sum() or p.sum()) else None
    out[prefix + "accuracy"] = float(accuracy_score(y, p)) if y.size else None
    return out


def evaluate(thr_path, path):
    t = json.load(open(thr_path))
    it, pt = t["image_threshold"], t.get("pixel_threshold")
    by = {}
    for r in read_stream([path]):
        c = by.setdefault(r.get("class", "unknown"), {"y": [], "p": [], "py": [], "pp": []})
        c["y"].append(int(r["label"])); c["p"].append(int(float(r["score"]) > it))
        if pt is not None and "amap" in r:
            a = np.asarray(r["amap"], np.float64).reshape(-1)
            m = np.asarray(r["mask"], np.float64).reshape(-1) if "mask" in r else np.zeros_like(a)
            mx = m.max()
            c["py"].append((m * 2 >= mx) & (mx > 0)); c["pp"].append(a > pt)
    rows = []
    for name in sorted(by):
        c = by[name]
        row = {"name": name}
        row.update(figures(c["y"], c["p"], "i_"))
        if c["py"]:
            row.update(figures(np.concatenate(c["py"]), np.concatenate(c["pp"]), "p_"))
        rows.append(row)
    mean = {}
    for k in rows[0]:
        if k == "name": continue
        v = [r[k] for r in rows if r.get(k) is not None]
        mean[k] = sum(v) / len(v) if v else None
    print(json.dumps({"rows": rows, "mean": mean}))


def check_fpr(thr_path, path):
    from sklearn.metrics import roc_curve
    t = json.load(open(thr_path))
    target, thr = t["target_fpr"], t["image_threshold"]
    recs = list(read_stream([path]))
    y = np.array([int(r["label"]) for r in recs]); s = np.array([float(r["score"]) for r in recs])
    neg = np.sort(s[y == 0])
    n = neg.size
    # roc_curve flags score >= threshold; score > t is score >= the next value above t
    fpr, tpr, th = roc_curve(y, s, drop_intermediate=False) if (y == 1).any() else (None, None, None)
    achieved = float((neg > thr).sum()) / n
    ok = achieved <= target + 1e-12 and thr in neg
    smaller = neg[neg < thr]
    if smaller.size:   # the next smaller normal score would let too many through
        ok = ok and float((neg > smaller[-1]).sum()) / n > target
    if fpr is not None:
        above = th[th > thr]
        if above.size:  # the roc_curve point at the smallest threshold above t has the same FPR
            k = np.where(th == above.min())[0][0]
            ok = ok and abs(fpr[k] - achieved) < 1e-12
    print(json.dumps({"ok": bool(ok), "achieved_fpr": achieved, "n_normal": int(n)}))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("eval", "check-fpr"):
        sys.exit(__doc__)
    (evaluate if sys.argv[1] == "eval" else check_fpr)(sys.argv[2], sys.argv[3])
