"""The official-weights pipeline end to end on tiny synthetic files in the official formats:
features (COCO JSON + images -> fp16 CLIP embeddings, resumable) -> train_scale -> a checkpoint export reads; and
build_pack (OpenAI RN archive + ClipCap transformer checkpoint -> pack + golden.json, parity through
onnxruntime-node)."""
import json
import os

import numpy as np
import pytest
import torch

from model import model as M
from model import official as O
from model import toy_world as tw
from model.build_pack import build
from model.export import CLIP_MEAN, CLIP_STD
from model.evaluate import evaluate_features
from model.features import extract, read_karpathy
from model.golden import tensor_from_json
from model.preprocess import ImageDecodeError, load_image, preprocess
from model.tokenizer import load_gpt2_tokenizer
from model.train_scale import resolve_config, train

import official_specs as S


def _tiny_vit_clip(path, seed=0):
    spec = S.openai_vit(image=32, patch=16, width=64, layers=1, embed_dim=16, text_width=16, text_layers=1, vocab=10)
    S.write_torchscript(S.materialize(spec, dtype=torch.float16, random=True, seed=seed), str(path))


def _coco(tmp_path, n_images=5):
    img_dir = tmp_path / "images"
    img_dir.mkdir()
    specs = tw.sample_specs(n_images, seed=3, split="train")
    images, anns = [], []
    for i, s in enumerate(specs):
        name = f"{i:04d}.png"
        tw.render(s).save(img_dir / name)
        images.append({"id": 100 + i, "file_name": name})
        anns.append({"id": len(anns), "image_id": 100 + i, "caption": tw.caption(s)})
        anns.append({"id": len(anns), "image_id": 100 + i, "caption": "Another " + tw.caption(s)})
    p = tmp_path / "captions.json"
    p.write_text(json.dumps({"images": images, "annotations": anns}))
    return str(p), str(img_dir)


def test_features_are_batched_resumable_and_train_scale_reads_them(tmp_path):
    clip = tmp_path / "ViT-tiny.pt"
    _tiny_vit_clip(clip)
    captions, images = _coco(tmp_path)
    out = str(tmp_path / "feats")
    meta = extract(captions, images, out, clip=str(clip), batch_size=2, workers=0, show_progress=False)
    assert (meta["count"], meta["done"], meta["dim"]) == (5, 5, 16)
    emb = np.load(os.path.join(out, "embeddings.npy"))
    assert emb.dtype == np.float16 and emb.shape == (5, 16)
    # row 3 equals the tower's raw output on the reference preprocessing
    cfg, visual = O.load_clip_vision(str(clip))
    tower = M.VisionTransformer(cfg).eval()
    tower.load_state_dict({k[len("visual."):]: v for k, v in visual.items()})
    px = preprocess(load_image(os.path.join(images, "0003.png")), 32, CLIP_MEAN, CLIP_STD)
    with torch.no_grad():
        ref = tower(torch.from_numpy(px)[None])[0].numpy()
    np.testing.assert_allclose(emb[3].astype(np.float32), ref, rtol=2e-3, atol=2e-3)
    caps = json.loads(open(os.path.join(out, "captions.json")).read())
    assert len(caps) == 10 and caps[1]["image"] == 0
    assert caps[0]["tokens"] == load_gpt2_tokenizer().encode(caps[0]["caption"])

    # interrupted after 2 images: the rerun fills in the rest and reproduces the same rows
    m = json.loads(open(os.path.join(out, "meta.json")).read())
    m["done"] = 2
    open(os.path.join(out, "meta.json"), "w").write(json.dumps(m))
    mm = np.load(os.path.join(out, "embeddings.npy"), mmap_mode="r+")
    mm[2:] = 0
    mm.flush()
    del mm
    extract(captions, images, out, clip=str(clip), batch_size=2, workers=0, show_progress=False)
    np.testing.assert_array_equal(np.load(os.path.join(out, "embeddings.npy")), emb)
    other = tmp_path / "ViT-other.pt"
    S.write_torchscript(S.materialize(S.openai_vit(image=64, patch=16, width=64, layers=1, embed_dim=16,
                                                   text=False)), str(other))
    with pytest.raises(RuntimeError, match="another dataset or CLIP model"):
        extract(captions, images, out, clip=str(other), workers=0, show_progress=False)

    # train_scale on these features, in process, with the official CLIP file as the tower
    tiny = {"gpt2": {"n_positions": 64, "n_embd": 32, "n_layer": 1, "n_head": 2},
            "mapper": {"type": "mlp", "prefix_length": 2}}
    cfg = resolve_config(None, [f"features={out}", f"out_dir={tmp_path / 'run'}", f"clip={clip}", "epochs=2",
                                "batch_size=5", "lr=1e-2", "warmup_steps=1", "log_every=1",
                                "model=" + json.dumps(tiny)])
    lines = []
    losses = train(cfg, log=lines.append)
    assert len(losses) == 4 and losses[-1] < losses[0]
    model = M.load_checkpoint(str(tmp_path / "run" / "epoch-001.pt"))
    assert model.cfg.vision == cfg_vision(clip)
    assert torch.equal(model.state_dict()["visual.proj"], visual["visual.proj"]), "the official tower is kept as is"

    # evaluation on a COCO-format split: captions for each image, BLEU-4 and CIDEr-D against its references
    result = evaluate_features(model, out, strategy="greedy", max_tokens=5, limit=3)
    assert result["images"] == 3 and len(result["captions"]) == 3 and result["captions"][0]["file_name"] == "0000.png"
    assert 0.0 <= result["bleu4"] <= 100.0 and result["cider_d"] >= 0.0


def cfg_vision(clip):
    return O.load_clip_vision(str(clip))[0]


def test_features_bad_image(tmp_path):
    clip = tmp_path / "ViT-tiny.pt"
    _tiny_vit_clip(clip)
    captions, images = _coco(tmp_path, n_images=3)
    (tmp_path / "images" / "0001.png").write_bytes(b"not a png")
    with pytest.raises(ImageDecodeError, match="0001.png.*--skip-bad"):
        extract(captions, images, str(tmp_path / "f1"), clip=str(clip), workers=0, show_progress=False)
    meta = extract(captions, images, str(tmp_path / "f2"), clip=str(clip), workers=0, skip_bad=True,
                   show_progress=False)
    assert meta["skipped"] == [1]
    caps = json.loads(open(tmp_path / "f2" / "captions.json").read())
    assert len(caps) == 4 and all(c["image"] != 1 for c in caps)


def test_build_pack_from_official_format_files(tmp_path):
    """A tiny RN50x4-style archive + a tiny transformer-mapper ClipCap checkpoint -> a pack whose ONNX graphs
    (ResNet tower with attention pooling included) match PyTorch through onnxruntime-node."""
    rn = S.openai_resnet(image=64, width=16, layers=(1, 2, 1, 1), embed_dim=24, text_width=16, text_layers=1,
                         vocab=10)
    S.write_torchscript(S.materialize(rn, dtype=torch.float16, random=True, seed=2), str(tmp_path / "RN.pt"))
    ck = S.materialize(S.clipcap_transformer(prefix_length=4, clip_length=3, dim_clip=24, num_layers=2, n_embd=64,
                                             n_layer=2, n_pos=96), dtype=torch.float32, random=True, seed=3)
    with torch.no_grad():  # a wider token table, so logits have clear margins and parity is not decided by rounding
        ck["gpt.transformer.wte.weight"].mul_(30.0)
    torch.save(ck, tmp_path / "transformer.pt")
    out = str(tmp_path / "pack")
    report = build(str(tmp_path / "RN.pt"), str(tmp_path / "transformer.pt"), out, "fp32", preset="coco-transformer",
                   beams=3, max_tokens=8)
    manifest = json.loads(open(os.path.join(out, "pack.json")).read())
    assert manifest["id"] == "clipcap-coco-transformer"
    assert manifest["embedding"] == {"dim": 24, "l2Normalize": True}
    assert manifest["mapper"] == {"type": "transformer", "prefixLength": 4, "clipLength": 3}
    assert manifest["preprocess"]["imageSize"] == 64
    assert manifest["provenance"]["inputs"][0]["file"] == "RN.pt" and len(manifest["provenance"]["inputs"][0]["sha256"]) == 64
    golden = json.loads(open(os.path.join(out, "golden.json")).read())
    assert len(golden["images"]) == 3 and golden["images"][0]["greedy"]["tokenIds"]
    assert report["count"] == 3
    scale = max(float(np.abs(tensor_from_json(g["imageEmbeds"])).max()) for g in golden["images"])
    assert report["max_embeds_diff"] < 1e-5 * max(1.0, scale), (report["max_embeds_diff"], scale)
    assert report["max_prefix_diff"] < 1e-4
    assert report["greedy_identical"] == 3 and report["beam_identical"] == 3, report


def test_karpathy_split_reader(tmp_path):
    data = {"dataset": "coco", "images": [
        {"filepath": "val2014", "filename": "COCO_val2014_000000000042.jpg", "imgid": 0, "split": "test",
         "cocoid": 42, "sentences": [{"raw": "A dog. ", "sentid": 1, "imgid": 0, "tokens": ["a", "dog"]},
                                     {"raw": "A brown dog.", "sentid": 2, "imgid": 0, "tokens": ["a", "brown", "dog"]}]},
        {"filepath": "train2014", "filename": "COCO_train2014_000000000007.jpg", "imgid": 1, "split": "restval",
         "cocoid": 7, "sentences": [{"raw": "A cat.", "sentid": 3, "imgid": 1, "tokens": ["a", "cat"]}]}]}
    p = tmp_path / "dataset_coco.json"
    p.write_text(json.dumps(data))
    images, anns = read_karpathy(str(p), ["test"])
    assert images == [{"id": 42, "file_name": "val2014/COCO_val2014_000000000042.jpg"}]
    assert [a["caption"] for a in anns] == ["A dog.", "A brown dog."] and all(a["image_id"] == 42 for a in anns)
    images, anns = read_karpathy(str(p), ["train", "restval"])
    assert [i["id"] for i in images] == [7] and len(anns) == 1
    with pytest.raises(ValueError, match="no images in split"):
        read_karpathy(str(p), ["val"])
