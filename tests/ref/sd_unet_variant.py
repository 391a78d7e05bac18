"""sd_unet_variant.py - writes tests/fixtures/sd-unet-variant.{weights,case}.safetensors:
a diffusers v0.20.0 UNet2DConditionModel whose config takes the options the
shared sd-unet fixture leaves at their SD-v1 values (three levels, per-block
head counts and transformer depths, use_linear_projection, flip_sin_to_cos
false, freq_shift 1, time_embedding_dim, mid_block_scale_factor 2, in 3 / out
5 channels, block types in a non-SD order, upcast_attention), so the paths of
lib/models/sdunet.c they select are checked against the official class.
Weights re-initialised as the shared fixtures are (norm affine 1+0.2N / 0.1N,
conv/linear N/sqrt(fan_in), biases 0.1N), rounded to float32; eps computed in
float64 by diffusers (AttnProcessor). Also checks tests/ref/sd_unet_ref.py
on it.

Needs diffusers v0.20.0 importable; it was run from the v0.20.0 source tree
(git archive v0.20.0 src) with small stand-ins for huggingface_hub, tqdm and
safetensors, which the model class imports but this script does not use:
  PYTHONPATH=STUBS:DIFFUSERS_SRC python3 tests/ref/sd_unet_variant.py OUTDIR
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from st import save_safetensors  # noqa: E402
from sd_unet_ref import UNet  # noqa: E402

CONFIG = {
    "sample_size": 16, "in_channels": 3, "out_channels": 5, "center_input_sample": False,
    "flip_sin_to_cos": False, "freq_shift": 1,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "mid_block_type": "UNetMidBlock2DCrossAttn",
    "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D", "CrossAttnUpBlock2D"],
    "block_out_channels": [8, 16, 16], "layers_per_block": 2, "downsample_padding": 1,
    "mid_block_scale_factor": 2.0, "act_fn": "silu", "norm_num_groups": 4, "norm_eps": 1e-5,
    "cross_attention_dim": 12, "transformer_layers_per_block": [1, 2, 1], "attention_head_dim": [1, 2, 2],
    "use_linear_projection": True, "upcast_attention": True, "time_embedding_dim": 40,
}


def main(out):
    from diffusers.models.unet_2d_condition import UNet2DConditionModel
    from diffusers.models.attention_processor import AttnProcessor
    torch.manual_seed(20)
    m = UNet2DConditionModel(**CONFIG).double().eval()
    m.set_attn_processor(AttnProcessor())
    sd = {}
    with torch.no_grad():
        for k, p in m.state_dict().items():
            if p.dim() == 1 and "norm" in k and k.endswith("weight"):
                v = 1 + 0.2 * torch.randn(p.shape, dtype=torch.float64)
            elif p.dim() == 1:
                v = 0.1 * torch.randn(p.shape, dtype=torch.float64)
            else:
                v = torch.randn(p.shape, dtype=torch.float64) / (p[0].numel() ** 0.5)
            sd[k] = v.float().double()
        m.load_state_dict(sd)
        g = torch.Generator().manual_seed(21)
        x = torch.randn(2, 3, 16, 16, generator=g, dtype=torch.float64).float().double()
        t = torch.tensor([3, 977])
        ctx = torch.randn(2, 5, 12, generator=g, dtype=torch.float64).float().double()
        eps = m(x, t, encoder_hidden_states=ctx).sample
        x1 = torch.randn(1, 3, 8, 24, generator=g, dtype=torch.float64).float().double()
        t1 = torch.tensor([500])
        c1 = torch.randn(1, 77, 12, generator=g, dtype=torch.float64).float().double()
        eps1 = m(x1, t1, encoder_hidden_states=c1).sample
        ref = UNet(dict(m.config)).double()
        ref.load_state_dict(sd)
        e0 = float((ref(x, t, ctx) - eps).abs().max() / eps.abs().max())
        e1 = float((ref(x1, t1, c1) - eps1).abs().max() / eps1.abs().max())
    print("sd_unet_ref.py against diffusers: %.3g %.3g" % (e0, e1))
    cfg = {"_class_name": "UNet2DConditionModel", "_diffusers_version": "0.20.0"}
    cfg.update({k: (list(v) if isinstance(v, tuple) else v) for k, v in dict(m.config).items() if not k.startswith("_")})
    save_safetensors(os.path.join(out, "sd-unet-variant.weights.safetensors"), {k: v.float() for k, v in sd.items()},
                     {"config": json.dumps(cfg, indent=1), "source": "tests/ref/sd_unet_variant.py: diffusers v0.20.0 "
                      "UNet2DConditionModel(**config), weights re-initialised, rounded to float32"})
    save_safetensors(os.path.join(out, "sd-unet-variant.case.safetensors"),
                     {"x": x.float(), "t": t.float(), "ctx": ctx.float(), "eps": eps.float(),
                      "l77.x": x1.float(), "l77.t": t1.float(), "l77.ctx": c1.float(), "l77.eps": eps1.float()},
                     {"note": "eps = UNet2DConditionModel(x, t, ctx).sample in float64 (AttnProcessor), stored as "
                      "float32; t integer-valued (int64 in the call); l77.* a batch of one at 8x24 with 77 tokens"})


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
