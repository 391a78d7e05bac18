#!/usr/bin/python3
"""gauss_ref.py - writes tests/fixtures/gauss-lw.case.safetensors, the
reference for lib/score/gauss.c: scikit-learn's LedoitWolf on seeded
correlated vectors, two cases (n > C, and n < C where the sample covariance
is singular and the shrinkage makes it invertible).

  python3 tests/ref/gauss_ref.py tests/fixtures/gauss-lw.case.safetensors

Per case K (0, 1): K.X F32 [n, C] (fitted), K.Y F32 [m, C] (queried),
K.location F64 [C], K.precision F64 [C, C], K.shrinkage F64 [1],
K.maha F64 [m] (squared Mahalanobis distances of Y, unscaled) and K.scale
F64 [1] (numpy's median of X's own squared distances). Needs python3-numpy,
python3-sklearn.
"""
import json
import struct
import sys

import numpy as np
from sklearn.covariance import LedoitWolf


def case(rng, n, C, m):
    A = rng.normal(size=(C, C)) / np.sqrt(C)
    X = (rng.normal(size=(n, C)) @ A + rng.normal(size=C) * 3).astype(np.float32)
    Y = (rng.normal(size=(m, C)) @ A * 1.5 + X.mean(0)).astype(np.float32)
    lw = LedoitWolf().fit(X.astype(np.float64))
    P = lw.precision_

    def q(Z):
        d = Z.astype(np.float64) - lw.location_
        return np.einsum("ij,jk,ik->i", d, P, d)
    return {"X": X, "Y": Y, "location": lw.location_, "precision": P, "shrinkage": np.array([lw.shrinkage_]),
            "maha": q(Y), "scale": np.array([np.median(q(X))])}


def main(path):
    rng = np.random.default_rng(20261205)
    tensors = {}
    for k, (n, C, m) in enumerate([(40, 6, 7), (8, 12, 5)]):
        for name, a in case(rng, n, C, m).items():
            tensors["%d.%s" % (k, name)] = a
    head, off, blobs = {}, 0, []
    for name, a in tensors.items():
        dt = "F32" if a.dtype == np.float32 else "F64"
        b = np.ascontiguousarray(a.astype("<f4" if dt == "F32" else "<f8")).tobytes()
        head[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    head["__metadata__"] = {"source": "tests/ref/gauss_ref.py (sklearn.covariance.LedoitWolf)"}
    h = json.dumps(head).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


if __name__ == "__main__":
    main(sys.argv[1])
