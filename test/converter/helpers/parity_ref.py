"""Python references for test/converter/python-parity.test.ts, made with the project's own toolkit.

    export   --config toy|small --checkpoint PATH --published DIR --precision fp32|fp16 --out DIR
        the weights exactly as the published files hold them (OpenAI's archives store most vision weights in fp16),
        loaded into the model of that config and written by model/export.py's export_pack: what the converter
        must produce from those files, byte for byte
    checkpoint --config small --seed N --out FILE
        a model.save_checkpoint file of seeded random weights in which no two tensors are equal (model/template.py's
        random_model). `model.published --random` starts from a fresh ClipCap, whose LayerNorms are all ones and
        zeros: torch's exporter stores equal tensors once, so export_pack's graphs would not be the template's
        layout, and no converter could match them byte for byte (see model/template.py's docstring)
    resnet --out DIR
        a tiny CLIP ResNet ClipCap (BatchNorm folded into its convolutions by the exporter): its fp32 and fp16
        templates (DIR/templates/tiny-resnet-<precision>) and the published files of distinct random weights
        (DIR/published); `export --config tiny-resnet --published DIR/published` then writes the reference
    clip-fp32 --checkpoint PATH --out FILE
        a TorchScript CLIP archive like model/published.py writes, but with the vision weights left in fp32, so a
        conversion can be compared with the pack exported from the checkpoint itself (packs/toy)
"""
import argparse
import sys

import torch

from model.export import export_pack
from model.model import ClipCap, ClipCapConfig, GPT2Config, MapperConfig, VisionConfig, save_checkpoint
from model.official import read_state_dict
from model.published import RANDOM, write_published, write_torchscript_clip
from model.template import build_template, named_config, random_model

# model/tests/test_template.py's tiny ResNet: every code path of the RN50x4 template (stem, bottlenecks with
# downsample, attention pool) at a size that exports in seconds
TINY_RESNET = ClipCapConfig(
    vision=VisionConfig(image_size=64, width=8, heads=4, output_dim=16, arch="resnet", resnet_layers=(1, 2, 1, 1)),
    gpt2=GPT2Config(n_positions=64, n_embd=32, n_layer=1, n_head=2),
    mapper=MapperConfig(type="transformer", prefix_length=3, clip_length=2, num_layers=1, num_heads=4),
    normalize_prefix=True,
)
CONFIGS = {**RANDOM, "tiny-resnet": TINY_RESNET}


def _toy():
    from model.toy import TOY_CONFIG
    return TOY_CONFIG


def config_of(name, checkpoint):
    if checkpoint:
        cfg = ClipCapConfig.from_dict(torch.load(checkpoint, map_location="cpu")["config"])
        return cfg, named_config(name)[1] if name == "toy" else {}
    return CONFIGS[name], {}


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["export", "clip-fp32", "checkpoint", "resnet"])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--config")
    ap.add_argument("--checkpoint")
    ap.add_argument("--published")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)  # a shared 2-core machine
    if a.what == "checkpoint":
        save_checkpoint(random_model(_toy() if a.config == "toy" else CONFIGS[a.config], seed=a.seed), a.out)
        return
    if a.what == "resnet":
        for precision in ("fp32", "fp16"):
            build_template(TINY_RESNET, precision, f"{a.out}/templates/tiny-resnet-{precision}", f"tiny-resnet-{precision}",
                           seed=0, log=lambda *_: None)
        write_published(TINY_RESNET, random_model(TINY_RESNET, seed=a.seed).state_dict(), f"{a.out}/published")
        return
    if a.what == "clip-fp32":
        blob = torch.load(a.checkpoint, map_location="cpu")
        cfg = ClipCapConfig.from_dict(blob["config"])
        visual = {k: v for k, v in blob["state_dict"].items() if k.startswith("visual.")}
        write_torchscript_clip(visual, a.out, cfg.vision.image_size, cfg.vision.output_dim, fp16=False)
        return
    cfg, kw = config_of(a.config, a.checkpoint)
    model = ClipCap(cfg).eval()
    want = model.state_dict()
    given = {**read_state_dict(f"{a.published}/clip.pt"), **read_state_dict(f"{a.published}/clipcap.pt")}
    state = {k: given[k].to(v.dtype) if k in given else v for k, v in want.items()}
    missing = [k for k in want if k not in given and not k.endswith("num_batches_tracked")]
    assert not missing, f"the published files lack {missing[:5]}"
    model.load_state_dict(state)
    export_pack(model, a.out, "ref", "ref", a.precision, {"by": "parity_ref"}, **kw)


if __name__ == "__main__":
    main(sys.argv[1:])
