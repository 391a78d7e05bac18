"""resnet_fixture.py - makes tests/fixtures/wide-resnet-odd.case.safetensors
with torchvision: the shared wide-resnet fixture weights
(ResNet(Bottleneck,[1,2,1,1],width_per_group=16), layer4/fc omitted, eval
mode) on an odd-sized input x [1,3,65,63] -> layer1, layer2, layer3, and
MaxPool2d(3,2,1) alone on maxpool.x [2,3,9,8] -> maxpool.out.

usage: /usr/bin/python3 tests/ref/resnet_fixture.py WEIGHTS.safetensors OUT.safetensors
"""
import json
import struct
import sys

import numpy as np
import torch
from torchvision.models.resnet import Bottleneck, ResNet


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = json.loads(f.read(n))
        data = f.read()
    meta = head.pop("__metadata__", {})
    dt = {"F32": "<f4", "I64": "<i8", "F16": "<f2", "F64": "<f8"}
    out = {}
    for k, v in head.items():
        b, e = v["data_offsets"]
        out[k] = torch.from_numpy(np.frombuffer(data[b:e], dtype=dt[v["dtype"]]).reshape(v["shape"]).copy())
    return out, meta


def save_safetensors(path, tensors, meta):
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


def build(weights):
    w, meta = load_safetensors(weights)
    cfg = json.loads(meta["config"])
    m = ResNet(Bottleneck, cfg["layers"], width_per_group=cfg["width_per_group"]).eval()
    res = m.load_state_dict(w, strict=False)
    assert all(k.startswith(("layer4.", "fc.")) for k in res.missing_keys), res.missing_keys
    assert not res.unexpected_keys, res.unexpected_keys
    return m


def features(m, x):
    h = m.maxpool(m.relu(m.bn1(m.conv1(x))))
    l1 = m.layer1(h)
    l2 = m.layer2(l1)
    return l1, l2, m.layer3(l2)


def main():
    torch.manual_seed(0)
    m = build(sys.argv[1])
    x = torch.randn(1, 3, 65, 63)
    px = torch.randn(2, 3, 9, 8)
    with torch.no_grad():
        l1, l2, l3 = features(m, x)
        po = torch.nn.MaxPool2d(3, 2, 1)(px)
    save_safetensors(sys.argv[2], {"x": x, "layer1": l1, "layer2": l2, "layer3": l3, "maxpool.x": px, "maxpool.out": po},
                     {"source": "torchvision %s ResNet(Bottleneck,[1,2,1,1],width_per_group=16) eval, weights "
                                "wide-resnet.weights.safetensors; torch.nn.MaxPool2d(3,2,1)" % __import__("torchvision").__version__,
                      "made_by": "tests/ref/resnet_fixture.py"})


if __name__ == "__main__":
    main()
