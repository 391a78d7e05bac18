"""resnet_fixture.py - makes tests/fixtures/wide-resnet-odd.case.safetensors
with torchvision: the shared wide-resnet fixture weights
(ResNet(Bottleneck,[1,2,1,1],width_per_group=16), layer4/fc omitted, eval
mode) on an odd-sized input x [1,3,65,63] -> layer1, layer2, layer3, and
MaxPool2d(3,2,1) alone on maxpool.x [2,3,9,8] -> maxpool.out.

usage: /usr/bin/python3 tests/ref/resnet_fixture.py WEIGHTS.safetensors OUT.safetensors
"""
import json
import sys

import torch

from torchvision.models.resnet import Bottleneck, ResNet

from st import load_safetensors, save_safetensors


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
