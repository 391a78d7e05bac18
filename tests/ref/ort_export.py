"""ort_export.py - ONNX files for ONNX Runtime in make bench (tests/bench/ort_run.js
runs them): the reference DDAD UNet of unet_ref.py on the weights glad wrote,
or torchvision's MobileNetV2 (random weights, eval). torch.onnx.export, opset
14, the batch axis dynamic so one file serves batch 1 and batch 4. Test
tooling: the benchmark's bar to beat, not a converter of model files.

usage: ort_export.py unet WEIGHTS.safetensors OUT.onnx
       ort_export.py mobilenet OUT.onnx [blocks]   (blocks: model.features[:18] only)
"""
import json
import sys

import torch

from st import load_safetensors


def export(model, args, names, path, spatial=False):
    dyn = {n: {0: "batch"} for n in names + ["out"]}
    if spatial:   # MobileNetV2 runs at 224 and 512 from one file
        dyn["x"] = {0: "batch", 2: "h", 3: "w"}
    with torch.no_grad():
        torch.onnx.export(model, args, path, opset_version=14, input_names=names, output_names=["out"], dynamic_axes=dyn,
                          do_constant_folding=True)


def main():
    kind = sys.argv[1]
    torch.manual_seed(0)
    if kind == "unet":
        from unet_ref import UNet
        w, meta = load_safetensors(sys.argv[2])
        cfg = json.loads(meta["config"])
        model = UNet(cfg).eval()
        model.load_state_dict(w, strict=True)
        s = cfg["img_size"]
        export(model, (torch.zeros(1, cfg["in_channels"], s, s), torch.tensor([10.0])), ["x", "t"], sys.argv[3])
    elif kind == "mobilenet":
        import torchvision
        model = torchvision.models.mobilenet_v2(weights=None).eval()
        if len(sys.argv) > 3 and sys.argv[3] == "blocks":
            model = model.features[:18]
        export(model, (torch.zeros(1, 3, 224, 224),), ["x"], sys.argv[2], spatial=True)
    else:
        sys.exit("usage: ort_export.py unet WEIGHTS OUT.onnx | mobilenet OUT.onnx [blocks]")


if __name__ == "__main__":
    main()
