"""st.py - the safetensors reader and writer of the PyTorch reference scripts
in tests/ref/ (they run as `python3 tests/ref/NAME.py`, so this module is on
their path). Tensors come back as torch tensors; this is test tooling, not the
format's definition (lib/io/safetensors.h is)."""
import json
import struct

import numpy as np
import torch

_DTYPES = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "I64": "<i8", "I32": "<i4", "U8": "u1"}


def load_safetensors(path):
    """Return ({name: tensor}, metadata dict)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = json.loads(f.read(n))
        data = f.read()
    meta = head.pop("__metadata__", {})
    out = {}
    for k, v in head.items():
        b, e = v["data_offsets"]
        out[k] = torch.from_numpy(np.frombuffer(data[b:e], dtype=_DTYPES[v["dtype"]]).reshape(v["shape"]).copy())
    return out, meta


def save_safetensors(path, tensors, meta):
    """Write {name: tensor} as float32 with string metadata."""
    head, off, blobs = {}, 0, []
    for k, t in tensors.items():
        a = np.ascontiguousarray(t.detach().numpy().astype("<f4"))
        head[k] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        off += a.nbytes
        blobs.append(a.tobytes())
    head["__metadata__"] = meta
    h = json.dumps(head).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
