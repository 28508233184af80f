"""Python references for test/converter/python-parity.test.ts, made with the project's own toolkit.

    export   --config toy|small --checkpoint PATH --published DIR --precision fp32|fp16 --out DIR
        the weights exactly as the published files hold them (OpenAI's archives store most vision weights in fp16),
        loaded into the model of that config and written by model/export.py's export_pack: what the converter
        must produce from those files, byte for byte
    checkpoint --config toy|small --seed N --out FILE
        a model.save_checkpoint file of seeded random weights in which no two tensors are equal (model/template.py's
        random_model). `model.published --random` starts from a fresh ClipCap, whose LayerNorms are all ones and
        zeros: torch's exporter stores equal tensors once, so export_pack's graphs would not be the template's
        layout, and no converter could match them byte for byte (see model/template.py's docstring). The configs
        are model/template.py's named ones: both have CLIP's text tower
    with-text --checkpoint PATH --seed N --out FILE
        the checkpoint with the toy template's text tower added, of distinct seeded random values, when it has none
        (the trained toy model before it learns CLIP); a checkpoint that has one is written unchanged
    resnet --out DIR
        a tiny CLIP ResNet ClipCap (BatchNorm folded into its convolutions by the exporter): its fp32 and fp16
        templates (DIR/templates/tiny-resnet-<precision>) and the published files of distinct random weights
        (DIR/published); `export --config tiny-resnet --published DIR/published` then writes the reference
    clip-fp32 --checkpoint PATH --out FILE
        a TorchScript CLIP archive like model/published.py writes, but with the vision weights left in fp32, so a
        conversion can be compared with the pack exported from the checkpoint itself (packs/toy); its text tower,
        if any, is written as OpenAI's (a random one otherwise, as model/published.py does)
    fill --template DIR --published DIR [--no-text] --out DIR
        model/template.py's fill_template of the published files (pack.json included, with the converter test's
        meta): the Python reference of a conversion, also with CLIP's text tower turned off
    mangle-text --published DIR --out FILE
        the published clip.pt as a safetensors file whose text tower is wrong: token_embedding.weight cut to 100
        rows, resblock 1 missing (a CLIP file of another text tower)
"""
import argparse
import sys

import torch

from model.export import export_pack
from model.model import ClipCap, ClipCapConfig, GPT2Config, MapperConfig, VisionConfig, load_checkpoint, save_checkpoint
from model.official import read_state_dict
from model.published import RANDOM, write_published, write_safetensors, write_torchscript_clip
from model.template import build_template, fill_template, input_key, named_config, random_model, text_manifest_of

# model/tests/test_template.py's tiny ResNet: every code path of the RN50x4 template (stem, bottlenecks with
# downsample, attention pool) at a size that exports in seconds
TINY_RESNET = ClipCapConfig(
    vision=VisionConfig(image_size=64, width=8, heads=4, output_dim=16, arch="resnet", resnet_layers=(1, 2, 1, 1)),
    gpt2=GPT2Config(n_positions=64, n_embd=32, n_layer=1, n_head=2),
    mapper=MapperConfig(type="transformer", prefix_length=3, clip_length=2, num_layers=1, num_heads=4),
    normalize_prefix=True,
)
CONFIGS = {**RANDOM, "tiny-resnet": TINY_RESNET}
# the meta python-parity.test.ts gives convertPack, so the pack.json files compare whole
META = {"id": "converted", "version": "1.0.0", "name": "Converted", "description": "",
        "provenance": {"by": "python-parity.test.ts"}}


def config_of(name, checkpoint):
    """(config, export_pack keywords): the checkpoint's config when given, else the named one; the text manifest
    (model/template.py's assumed one) exactly when the config has a text tower."""
    if checkpoint:
        cfg = ClipCapConfig.from_dict(torch.load(checkpoint, map_location="cpu")["config"])
    elif name in ("toy", "small"):
        cfg = named_config(name)[0]
    else:
        cfg = CONFIGS[name]
    kw = {k: v for k, v in named_config(name)[1].items() if k != "text_manifest"} if name == "toy" else {}
    return cfg, {**kw, **text_manifest_of(cfg)}


def with_text(checkpoint: str, seed: int) -> ClipCap:
    """The checkpoint's model with the toy template's text tower; the new tower's tensors distinct seeded values
    (model/template.py's random_model), the rest the checkpoint's."""
    model = load_checkpoint(checkpoint)
    if model.text is not None:
        return model
    cfg = named_config("toy")[0]
    new = random_model(ClipCapConfig(vision=model.cfg.vision, gpt2=model.cfg.gpt2, mapper=model.cfg.mapper,
                                     normalize_prefix=model.cfg.normalize_prefix, text=cfg.text), seed=seed)
    missing, unexpected = new.load_state_dict(model.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("text.") for k in missing), (missing, unexpected)
    return new


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["export", "clip-fp32", "checkpoint", "with-text", "fill", "mangle-text", "resnet"])
    ap.add_argument("--template")
    ap.add_argument("--no-text", action="store_true")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--config")
    ap.add_argument("--checkpoint")
    ap.add_argument("--published")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)  # a shared 2-core machine
    if a.what == "checkpoint":
        save_checkpoint(random_model(config_of(a.config, None)[0], seed=a.seed), a.out)
        return
    if a.what == "fill":
        published = {"clip": read_state_dict(f"{a.published}/clip.pt"),
                     "clipcap": read_state_dict(f"{a.published}/clipcap.pt")}
        fill_template(a.template, published, a.out, meta=META, text=not a.no_text)
        return
    if a.what == "mangle-text":
        sd = read_state_dict(f"{a.published}/clip.pt")
        sd = {k: v for k, v in sd.items() if not k.startswith("transformer.resblocks.1.")
              and k not in ("input_resolution", "context_length", "vocab_size")}
        sd["token_embedding.weight"] = sd["token_embedding.weight"][:100].clone()
        write_safetensors(sd, a.out)
        return
    if a.what == "with-text":
        save_checkpoint(with_text(a.checkpoint, a.seed), a.out)
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
        text = {k[len("text."):]: v for k, v in blob["state_dict"].items() if k.startswith("text.")}
        write_torchscript_clip(visual, a.out, cfg.vision.image_size, cfg.vision.output_dim, fp16=False,
                               text=text or None)
        return
    cfg, kw = config_of(a.config, a.checkpoint)
    model = ClipCap(cfg).eval()
    want = model.state_dict()
    given = {**read_state_dict(f"{a.published}/clip.pt"), **read_state_dict(f"{a.published}/clipcap.pt")}
    key = {k: input_key(k)[1] for k in want}  # our name -> the published files' (the text tower has no "text.")
    state = {k: given[key[k]].to(v.dtype) if key[k] in given else v for k, v in want.items()}
    missing = [k for k in want if key[k] not in given and not k.endswith("num_batches_tracked")]
    assert not missing, f"the published files lack {missing[:5]}"
    model.load_state_dict(state)
    export_pack(model, a.out, "ref", "ref", a.precision, {"by": "parity_ref"}, **kw)


if __name__ == "__main__":
    main(sys.argv[1:])
