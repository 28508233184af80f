"""
CLIP features for mapper training: a COCO-format captions JSON plus its image folder become CLIP image embeddings,
stored as fp16 on disk, with every caption tokenised once. Batched, resumable, with a progress bar.

    /usr/bin/python3 -m model.features --captions annotations/captions_train2014.json --images train2014/ \\
        --clip ViT-B-32.pt --out data/coco-train-vitb32 [--batch-size 64] [--workers 4] [--device cuda]

Karpathy's split file works too: `--captions dataset_coco.json --karpathy-split test --images <COCO root>`.

`--clip` takes an OpenAI CLIP archive (ViT-B-32.pt, RN50x4.pt) or a Hugging Face CLIP file/directory; `--checkpoint`
takes a ClipCap checkpoint of ours instead and uses its image tower. Run it again with the same arguments after an
interruption and it continues where it stopped.

The output directory (what model/train_scale.py reads):
  embeddings.npy  float16 (N_images, D): row i is images.json[i]'s RAW CLIP embedding (the mapper config decides
                  about L2 normalisation, so one extraction serves both kinds of checkpoint)
  images.json     [{"id", "file_name"}] in row order
  captions.json   [{"image": row, "caption": str, "tokens": [GPT-2 ids]}], one entry per caption
  meta.json       {"count", "done", "dim", "vision": VisionConfig, "source", "skipped": [rows]}
                  `done` advances only after the rows before it are flushed to disk, so a crash loses one batch.
"""

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from typing import List, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .export import CLIP_MEAN, CLIP_STD
from .model import ModifiedResNet, VisionTransformer, load_checkpoint
from .official import load_clip_vision
from .preprocess import ImageDecodeError, load_image, preprocess
from .tokenizer import load_gpt2_tokenizer


def read_coco_captions(path: str):
    """(images [{"id", "file_name"}], annotations [{"image_id", "caption"}]) from a COCO captions JSON."""
    with open(path) as f:
        data = json.load(f)
    if not isinstance(data, dict) or "images" not in data or "annotations" not in data:
        raise ValueError(f"{path} is not a COCO-format captions file: it needs 'images' and 'annotations' lists")
    images = sorted(({"id": im["id"], "file_name": im["file_name"]} for im in data["images"]), key=lambda i: i["id"])
    known = {im["id"] for im in images}
    bad = [a.get("id") for a in data["annotations"] if a["image_id"] not in known]
    if bad:
        raise ValueError(f"{path}: {len(bad)} annotations name images not in 'images' (first: annotation {bad[0]})")
    return images, data["annotations"]


def read_karpathy(path: str, splits: Sequence[str]):
    """The same, from Karpathy's dataset_coco.json (the split ClipCap's COCO numbers use): the images whose
    `split` is in `splits` ("train,restval" to train, "test" for the published scores), file names
    `filepath/filename` relative to the COCO root, one annotation per `sentences[*].raw`."""
    with open(path) as f:
        data = json.load(f)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) or \
            (data["images"] and "sentences" not in data["images"][0]):
        raise ValueError(f"{path} is not Karpathy's dataset_*.json: it needs images with sentences")
    images, annotations = [], []
    for im in data["images"]:
        if im["split"] not in splits:
            continue
        image_id = im.get("cocoid", im["imgid"])
        images.append({"id": image_id, "file_name": os.path.join(im.get("filepath", ""), im["filename"])})
        for sent in im["sentences"]:
            annotations.append({"id": sent["sentid"], "image_id": image_id, "caption": sent["raw"].strip()})
    if not images:
        raise ValueError(f"{path} has no images in split(s) {', '.join(splits)}")
    images.sort(key=lambda i: i["id"])
    return images, annotations


def write_coco(images, annotations, path: str):
    """Write COCO-format captions JSON (for evaluate.py's references, or any other COCO tool)."""
    with open(path, "w") as f:
        json.dump({"images": images, "annotations": annotations}, f)


class ImageFolder(Dataset):
    def __init__(self, root: str, files: List[str], size: int, skip_bad: bool):
        self.root, self.files, self.size, self.skip_bad = root, files, size, skip_bad

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        path = os.path.join(self.root, self.files[i])
        try:
            px = preprocess(load_image(path), self.size, CLIP_MEAN, CLIP_STD)
            ok = True
        except (ImageDecodeError, FileNotFoundError) as e:
            if not self.skip_bad:
                raise ImageDecodeError(f"{path}: {e} (pass --skip-bad to leave such images out)") from e
            px, ok = np.zeros((3, self.size, self.size), np.float32), False
        return torch.from_numpy(px), ok


def progress(done: int, total: int, t0: float, start: int, width: int = 30):
    frac = done / max(1, total)
    rate = (done - start) / max(1e-9, time.time() - t0)
    eta = (total - done) / rate if rate > 0 else float("inf")
    bar = "#" * int(frac * width) + "." * (width - int(frac * width))
    eta_s = f"{int(eta // 60)}:{int(eta % 60):02d}" if eta != float("inf") else "?"
    sys.stderr.write(f"\r[{bar}] {done}/{total} images {rate:.1f} img/s eta {eta_s}  ")
    sys.stderr.flush()


def load_tower(clip: Optional[str], checkpoint: Optional[str]):
    """(VisionConfig, tower in eval mode, description of the source)."""
    assert (clip is None) != (checkpoint is None), "give exactly one of --clip or --checkpoint"
    if checkpoint:
        model = load_checkpoint(checkpoint)
        return model.cfg.vision, model.visual.eval(), os.path.basename(checkpoint)
    cfg, visual = load_clip_vision(clip)
    tower = VisionTransformer(cfg) if cfg.arch == "vit" else ModifiedResNet(cfg)
    tower.load_state_dict({k[len("visual."):]: v for k, v in visual.items()})
    return cfg, tower.eval(), os.path.basename(clip)


def extract(captions: str, images: str, out: str, clip: Optional[str] = None, checkpoint: Optional[str] = None,
            batch_size: int = 64, workers: int = 2, device: str = "auto", skip_bad: bool = False,
            show_progress: bool = True, karpathy_splits: Optional[Sequence[str]] = None) -> dict:
    """Write (or finish writing) a features directory; returns its meta.json. With karpathy_splits, `captions` is
    Karpathy's dataset_coco.json and only those splits are taken."""
    dev = torch.device("cuda" if device == "cuda" or (device == "auto" and torch.cuda.is_available()) else "cpu")
    cfg, tower, source = load_tower(clip, checkpoint)
    tower.to(dev)
    os.makedirs(out, exist_ok=True)
    meta_path = os.path.join(out, "meta.json")
    emb_path = os.path.join(out, "embeddings.npy")
    image_list, annotations = read_karpathy(captions, karpathy_splits) if karpathy_splits \
        else read_coco_captions(captions)
    if os.path.isfile(meta_path):
        with open(meta_path) as f:
            meta = json.load(f)
        if meta["count"] != len(image_list) or meta["vision"] != json.loads(json.dumps(asdict(cfg))):
            raise RuntimeError(f"{out} holds features of another dataset or CLIP model; choose a new --out")
        emb = np.load(emb_path, mmap_mode="r+")
    else:
        tok = load_gpt2_tokenizer()
        row = {im["id"]: i for i, im in enumerate(image_list)}
        caps = [{"image": row[a["image_id"]], "caption": a["caption"], "tokens": tok.encode(a["caption"].strip())}
                for a in annotations]
        with open(os.path.join(out, "images.json"), "w") as f:
            json.dump(image_list, f)
        with open(os.path.join(out, "captions.json"), "w") as f:
            json.dump(caps, f)
        emb = np.lib.format.open_memmap(emb_path, mode="w+", dtype=np.float16, shape=(len(image_list), cfg.output_dim))
        meta = {"count": len(image_list), "done": 0, "dim": cfg.output_dim, "vision": asdict(cfg), "source": source,
                "captions": os.path.abspath(captions), "images": os.path.abspath(images), "skipped": []}
        _write_json(meta_path, meta)
    start = meta["done"]
    files = [im["file_name"] for im in image_list[start:]]
    loader = DataLoader(ImageFolder(images, files, cfg.image_size, skip_bad), batch_size=batch_size,
                        num_workers=workers, shuffle=False)
    t0 = time.time()
    done = start
    with torch.no_grad():
        for px, ok in loader:
            e = tower(px.to(dev)).float().cpu().numpy()  # (B, D), raw
            emb[done:done + len(e)] = e.astype(np.float16)
            meta["skipped"] += [done + j for j in range(len(e)) if not bool(ok[j])]
            done += len(e)
            emb.flush()
            meta["done"] = done
            _write_json(meta_path, meta)
            if show_progress:
                progress(done, meta["count"], t0, start)
    if show_progress:
        sys.stderr.write("\n")
    if meta["skipped"]:  # drop the captions of images that could not be read
        skipped = set(meta["skipped"])
        with open(os.path.join(out, "captions.json")) as f:
            caps = [c for c in json.load(f) if c["image"] not in skipped]
        with open(os.path.join(out, "captions.json"), "w") as f:
            json.dump(caps, f)
    return meta


def _write_json(path: str, obj):
    with open(path + ".tmp", "w") as f:
        json.dump(obj, f)
    os.replace(path + ".tmp", path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--captions", required=True, help="COCO-format captions JSON")
    ap.add_argument("--images", required=True, help="folder the JSON's file_name entries are relative to")
    ap.add_argument("--out", required=True)
    ap.add_argument("--clip", help="OpenAI CLIP .pt or Hugging Face CLIP file/directory")
    ap.add_argument("--checkpoint", help="a ClipCap checkpoint of ours (its image tower is used)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2, help="image decoding processes")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--skip-bad", action="store_true", help="leave out images that fail to decode")
    ap.add_argument("--karpathy-split", help="--captions is Karpathy's dataset_coco.json: take these splits, "
                                             "e.g. train,restval or test (--images is then the COCO root)")
    a = ap.parse_args(argv)
    splits = a.karpathy_split.split(",") if a.karpathy_split else None
    meta = extract(a.captions, a.images, a.out, a.clip, a.checkpoint, a.batch_size, a.workers, a.device, a.skip_bad,
                   karpathy_splits=splits)
    print(f"{meta['done']} images -> {a.out} ({meta['dim']}-d fp16), {len(meta['skipped'])} skipped")


if __name__ == "__main__":
    main()
