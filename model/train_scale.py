"""
Mapper training at scale: CLIP features on disk (model/features.py) -> a ClipCap checkpoint every epoch.

The same script runs on CPU, on one GPU, or on many, under PyTorch DDP:

    /usr/bin/python3 -m model.train_scale --config model/configs/coco_mlp.json features=data/coco-train out_dir=runs/x
    torchrun --standalone --nproc_per_node 8 -m model.train_scale --config model/configs/coco_mlp.json ...

* Config: a JSON file (TrainConfig's fields; `model` is a ClipCapConfig dict), then `key=value` overrides on the
  command line (dotted keys reach into `model`, e.g. `model.mapper.prefix_length=40`; values are JSON, else strings).
  The resolved config is written beside every checkpoint (epoch-003.pt + epoch-003.json) and to out_dir/config.json.
* Optimiser: AdamW, linear warmup, then linear decay to 0 (ClipCap's get_linear_schedule_with_warmup) or cosine.
* Checkpoints: out_dir/epoch-NNN.pt after every epoch, in model.save_checkpoint's format plus the optimiser and
  the step, so model.load_checkpoint and export.py read them as they are. `--resume` (a path, or `auto` for the
  newest in out_dir) continues the same run: the data order of every epoch is a function of (seed, epoch), so a
  resumed run retraces the loss curve of an uninterrupted one.
* GPT-2 fine-tuning (`finetune_gpt=true`) as ClipCap did for its MLP checkpoints; otherwise GPT-2 is frozen and the
  gradient flows through it into the mapper only (the transformer-mapper checkpoint's recipe).
* DDP: `batch_size` is the GLOBAL batch. Each step takes the same global batch a single process would, and rank r
  takes every world-th item of it. Each rank scales its token-mean loss by (its tokens x world / all tokens), so the
  averaged gradient is that of the global token-mean: 1 process and N processes follow the same curve.
  Backend: nccl on GPUs, gloo on CPU.
* Logging: rank 0 prints progress lines and appends every step's loss to out_dir/log.jsonl; with `val_features`,
  the validation split's caption loss follows every epoch.

The loss (ClipCap.caption_loss) and the caption padding (train.pad_captions) are the toy trainer's, imported.
"""

import argparse
import copy
import glob
import json
import os
import time
from dataclasses import asdict, dataclass, field
from typing import List, Optional

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn

from .model import ClipCap, ClipCapConfig, CheckpointError, check_state_dict
from .official import gpt2_config, gpt2_state, load_clip_vision, read_state_dict
from .train import lr_at, pad_captions


@dataclass
class TrainConfig:
    features: str = ""  # directory written by model/features.py: embeddings.npy (fp16) + captions.json
    val_features: Optional[str] = None  # the same for a validation split: its caption loss is logged every epoch
    out_dir: str = "runs/mapper"  # checkpoints, their configs, and log.jsonl
    clip: Optional[str] = None  # official CLIP file whose image tower goes into the checkpoints (so export works);
    #                             None: the tower of `model.vision`, randomly initialised (tests only)
    gpt2: Optional[str] = None  # Hugging Face GPT-2 (model.safetensors, pytorch_model.bin or the directory);
    #                             None: random initialisation (tests only)
    model: dict = field(default_factory=lambda: ClipCapConfig().to_dict())  # mapper type, prefix length, ...
    finetune_gpt: bool = False  # also train GPT-2 (ClipCap's MLP checkpoints) instead of freezing it
    epochs: int = 10  # ClipCap trained 10 epochs on COCO
    batch_size: int = 40  # GLOBAL batch, split evenly across DDP ranks; ClipCap used 40
    lr: float = 2e-5  # peak AdamW learning rate (ClipCap's)
    warmup_steps: int = 5000  # linear warmup steps (ClipCap's)
    schedule: str = "linear"  # after warmup: "linear" decay to 0 (ClipCap) or "cosine" (to 10%, as train.py)
    weight_decay: float = 0.0  # AdamW decoupled weight decay (ClipCap used transformers' AdamW default, 0)
    max_tokens: int = 67  # captions are cut to this many tokens before the appended <|endoftext|>
    seed: int = 0  # mapper initialisation and the data order of every epoch
    log_every: int = 50  # steps between progress lines
    device: str = "auto"  # "auto" (cuda if available), "cpu" or "cuda"


# -----------------------------------------------------------------------------
# Configuration: file + overrides


def _merge(dst: dict, src: dict) -> dict:
    """Deep-merge src into dst: a section given in part keeps the defaults of the keys it does not name."""
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            _merge(dst[k], v)
        else:
            dst[k] = v
    return dst


def _set_dotted(d: dict, key: str, value):
    *sections, leaf = key.split(".")
    for p in sections:
        assert isinstance(d.get(p), dict), f"override {key}: {p} is not a section"
        d = d[p]
    _merge(d, {leaf: value})


def resolve_config(config_path: Optional[str], overrides: List[str]) -> TrainConfig:
    """Defaults <- JSON file <- key=value overrides; unknown keys are errors, not silently ignored."""
    raw = asdict(TrainConfig())
    if config_path:
        with open(config_path) as f:
            loaded = json.load(f)
        unknown = sorted(set(loaded) - set(raw))
        assert not unknown, f"{config_path}: unknown config keys {unknown}; known: {sorted(raw)}"
        _merge(raw, loaded)  # so a file may give only the mapper section of `model`
    for o in overrides:
        assert "=" in o, f"override {o!r} must be key=value"
        key, text = o.split("=", 1)
        assert key.split(".")[0] in raw, f"unknown config key {key!r}; known: {sorted(raw)}"
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        _set_dotted(raw, key, value)
    cfg = TrainConfig(**raw)
    ClipCapConfig.from_dict(cfg.model)  # fail early on a bad model section
    assert cfg.schedule in ("linear", "cosine"), f"schedule must be linear or cosine, got {cfg.schedule!r}"
    return cfg


def learning_rate(step: int, total: int, cfg: TrainConfig) -> float:
    if cfg.schedule == "cosine":
        return lr_at(step, total, cfg)  # train.py's warmup + cosine
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    return cfg.lr * max(0.0, (total - step) / max(1, total - cfg.warmup_steps))


# -----------------------------------------------------------------------------
# Data


class Features:
    """embeddings.npy (N_images, D) fp16, memory-mapped, and captions.json [{image, caption, tokens}]."""

    def __init__(self, directory: str, max_tokens: int):
        meta_path = os.path.join(directory, "meta.json")
        if not os.path.isfile(meta_path):
            raise FileNotFoundError(f"{directory} has no meta.json: run model/features.py to create it")
        with open(meta_path) as f:
            self.meta = json.load(f)
        if self.meta.get("done") != self.meta.get("count"):
            raise RuntimeError(f"{directory}: feature extraction stopped at {self.meta.get('done')} of "
                               f"{self.meta.get('count')} images; run model/features.py again to finish it")
        self.embeds = np.load(os.path.join(directory, "embeddings.npy"), mmap_mode="r")
        with open(os.path.join(directory, "captions.json")) as f:
            caps = json.load(f)
        self.image = np.array([c["image"] for c in caps], dtype=np.int64)
        self.tokens = [c["tokens"][:max_tokens] for c in caps]
        assert len(self.tokens) > 0, f"{directory}: no captions"
        assert self.image.max() < self.embeds.shape[0], f"{directory}: a caption names an image past the embeddings"

    def __len__(self):
        return len(self.tokens)

    def batch(self, idx: np.ndarray):
        emb = torch.from_numpy(np.asarray(self.embeds[self.image[idx]], dtype=np.float32))  # (B, D)
        tokens, lengths = pad_captions([self.tokens[i] for i in idx])  # (B, L), (B,)
        return emb, tokens, lengths


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(n)


# -----------------------------------------------------------------------------
# Model


class CaptionLoss(nn.Module):
    """What DDP wraps: the mapper and GPT-2 (the image tower is not needed, features are precomputed)."""

    def __init__(self, model: ClipCap):
        super().__init__()
        self.clip_project, self.gpt = model.clip_project, model.gpt
        self._model = [model]  # a list, so the tower is not registered as a submodule

    def forward(self, embeds, tokens, lengths):
        return self._model[0].caption_loss(embeds, tokens, lengths)


def build_model(cfg: TrainConfig) -> ClipCap:
    """The model to train: official CLIP tower and GPT-2 when given (every key and shape checked), mapper new."""
    mcfg = ClipCapConfig.from_dict(copy.deepcopy(cfg.model))
    visual = gpt = None
    if cfg.clip:
        mcfg.vision, visual = load_clip_vision(cfg.clip)
    if cfg.gpt2:
        gpt = gpt2_state(read_state_dict(cfg.gpt2), cfg.gpt2)
        mcfg.gpt2 = gpt2_config(gpt, cfg.gpt2)
    torch.manual_seed(cfg.seed)
    model = ClipCap(mcfg)
    if visual is not None:
        part = {k[len("visual."):]: v for k, v in visual.items()}
        check_state_dict(model.visual, part, what=cfg.clip)
        model.visual.load_state_dict(part)
    if gpt is not None:
        part = {k[len("gpt."):]: v for k, v in gpt.items()}
        check_state_dict(model.gpt, part, what=cfg.gpt2)
        model.gpt.load_state_dict(part)
    return model


def latest_checkpoint(out_dir: str) -> Optional[str]:
    found = sorted(glob.glob(os.path.join(out_dir, "epoch-*.pt")))
    return found[-1] if found else None


# -----------------------------------------------------------------------------
# Training


def setup_distributed(cfg: TrainConfig):
    """(rank, world, device). torchrun sets RANK / WORLD_SIZE / LOCAL_RANK; a plain run is rank 0 of 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    use_cuda = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    if world > 1:
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return rank, world, device


def train(cfg: TrainConfig, resume: Optional[str] = None, stop_after: Optional[int] = None,
          log=print) -> List[float]:
    """Run (or continue) a training run; returns the global mean loss of every step run here."""
    rank, world, device = setup_distributed(cfg)
    assert cfg.batch_size % world == 0, f"batch_size {cfg.batch_size} must divide evenly across {world} ranks"
    data = Features(cfg.features, cfg.max_tokens)
    val = Features(cfg.val_features, cfg.max_tokens) if cfg.val_features else None
    model = build_model(cfg)
    if data.embeds.shape[1] != model.cfg.vision.output_dim:
        raise ValueError(f"{cfg.features} holds {data.embeds.shape[1]}-d embeddings, but the model's CLIP tower "
                         f"gives {model.cfg.vision.output_dim}-d ones")
    if cfg.clip and data.meta.get("vision") not in (None, json.loads(json.dumps(asdict(model.cfg.vision)))):
        raise ValueError(f"{cfg.features} was extracted with another CLIP tower ({data.meta['vision']}) than "
                         f"{cfg.clip}: the checkpoints would pair a mapper with the wrong image encoder")
    model.requires_grad_(False)
    model.clip_project.requires_grad_(True)
    if cfg.finetune_gpt:
        model.gpt.requires_grad_(True)
    start_epoch, step, blob = 0, 0, None
    if resume == "auto":
        resume = latest_checkpoint(cfg.out_dir)
    if resume:
        blob = torch.load(resume, map_location="cpu")
        if not isinstance(blob, dict) or "train" not in blob:
            raise CheckpointError(f"{resume} has no training state (optimizer, step): not written by train_scale")
        check_state_dict(model, blob["state_dict"], what=resume)
        model.load_state_dict(blob["state_dict"])
        start_epoch, step = blob["train"]["epoch"] + 1, blob["train"]["step"]
    model.to(device)  # before the optimiser, whose loaded state must live where the parameters do
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if blob is not None:
        opt.load_state_dict(blob["train"]["optimizer"])
        if rank == 0:
            log(f"resumed from {resume}: epoch {start_epoch + 1}, step {step}")
    loss_module = CaptionLoss(model).to(device)
    model.clip_project.train()
    model.gpt.train(cfg.finetune_gpt)  # GPT-2 has no dropout here; this only documents intent
    if world > 1:
        loss_module = nn.parallel.DistributedDataParallel(loss_module, device_ids=[device.index] if device.type == "cuda"
                                                          else None, broadcast_buffers=False)
    steps_per_epoch = len(data) // cfg.batch_size
    assert steps_per_epoch > 0, f"{len(data)} captions are fewer than one batch of {cfg.batch_size}"
    total = cfg.epochs * steps_per_epoch
    if rank == 0:
        os.makedirs(cfg.out_dir, exist_ok=True)
        with open(os.path.join(cfg.out_dir, "config.json"), "w") as f:
            json.dump(asdict(cfg), f, indent=2)
        truncate_log(os.path.join(cfg.out_dir, "log.jsonl"), step)  # drop steps logged after the resumed checkpoint
        log(f"training {sum(p.numel() for p in trainable) / 1e6:.1f}M parameters on {world} x {device.type}: "
            f"{len(data)} captions, {steps_per_epoch} steps/epoch, {cfg.epochs} epochs")
    losses: List[float] = []
    t0 = time.time()
    end_epoch = cfg.epochs if stop_after is None else min(cfg.epochs, start_epoch + stop_after)
    for epoch in range(start_epoch, end_epoch):
        order = epoch_order(len(data), cfg.seed, epoch)
        for b in range(steps_per_epoch):
            idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size][rank::world]
            emb, tokens, lengths = (t.to(device) for t in data.batch(idx))
            for group in opt.param_groups:
                group["lr"] = learning_rate(step, total, cfg)
            n_local = lengths.sum().to(torch.float64)
            n_global = n_local.clone()
            if world > 1:
                dist.all_reduce(n_global)
            loss = loss_module(emb, tokens, lengths)  # token mean over this rank's captions
            (loss * (n_local * world / n_global).to(loss.dtype)).backward()  # DDP averages: global token mean
            opt.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            report = (loss.detach().to(torch.float64) * n_local / n_global)
            if world > 1:
                dist.all_reduce(report)
            losses.append(float(report))
            if rank == 0 and (step % cfg.log_every == 0 or b == steps_per_epoch - 1):
                rate = (step - (start_epoch * steps_per_epoch)) / max(1e-9, time.time() - t0)
                eta = (total - step) / max(rate, 1e-9)
                log(f"epoch {epoch + 1}/{cfg.epochs} step {step}/{total} loss {losses[-1]:.4f} "
                    f"lr {opt.param_groups[0]['lr']:.2e} {rate:.2f} steps/s eta {eta / 60:.1f} min")
            if rank == 0:
                with open(os.path.join(cfg.out_dir, "log.jsonl"), "a") as f:
                    f.write(json.dumps({"epoch": epoch, "step": step, "loss": losses[-1]}) + "\n")
        if val is not None:
            val_loss = validation_loss(model, val, rank, world, device, cfg.batch_size // world)
            if rank == 0:
                log(f"epoch {epoch + 1}/{cfg.epochs} validation loss {val_loss:.4f}")
                with open(os.path.join(cfg.out_dir, "log.jsonl"), "a") as f:
                    f.write(json.dumps({"epoch": epoch, "step": step, "val_loss": val_loss}) + "\n")
        if rank == 0:
            save_epoch(model, opt, cfg, epoch, step)
            log(f"saved {os.path.join(cfg.out_dir, f'epoch-{epoch:03d}.pt')}")
        if world > 1:
            dist.barrier()
    if world > 1:
        dist.destroy_process_group()
    return losses


def validation_loss(model: ClipCap, val: Features, rank: int, world: int, device, batch_size: int) -> float:
    """Token-mean caption loss over a validation split; rank r scores every world-th caption."""
    total = torch.zeros(2, dtype=torch.float64, device=device)  # (sum of loss x tokens, tokens)
    mine = np.arange(len(val))[rank::world]
    with torch.no_grad():
        for s in range(0, len(mine), batch_size):
            emb, tokens, lengths = (t.to(device) for t in val.batch(mine[s:s + batch_size]))
            n = lengths.sum().to(torch.float64)
            total[0] += model.caption_loss(emb, tokens, lengths).to(torch.float64) * n
            total[1] += n
    if world > 1:
        dist.all_reduce(total)
    return float(total[0] / total[1])


def truncate_log(path: str, step: int):
    """Keep log lines up to `step`: a run that died mid-epoch logged steps its resumption will run again."""
    if not os.path.isfile(path):
        return
    with open(path) as f:
        keep = [line for line in f if line.strip() and json.loads(line)["step"] <= step]
    with open(path, "w") as f:
        f.writelines(keep)


def save_epoch(model: ClipCap, opt, cfg: TrainConfig, epoch: int, step: int):
    """epoch-NNN.pt (model.save_checkpoint's format + training state) and epoch-NNN.json (the resolved config)."""
    base = os.path.join(cfg.out_dir, f"epoch-{epoch:03d}")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    blob = {"config": model.cfg.to_dict(), "state_dict": state,
            "train": {"epoch": epoch, "step": step, "optimizer": opt.state_dict(), "config": asdict(cfg)}}
    torch.save(blob, base + ".pt.tmp")
    os.replace(base + ".pt.tmp", base + ".pt")  # never leave a half-written checkpoint under the real name
    with open(base + ".json", "w") as f:
        json.dump(asdict(cfg), f, indent=2)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", help="JSON file of TrainConfig fields")
    ap.add_argument("--resume", help="checkpoint to continue from, or 'auto' for the newest in out_dir")
    ap.add_argument("--stop-after", type=int, default=None, help="stop after this many epochs (the run can resume)")
    ap.add_argument("overrides", nargs="*", help="key=value, e.g. lr=1e-4 model.mapper.prefix_length=40")
    args = ap.parse_args(argv)
    cfg = resolve_config(args.config, args.overrides)
    assert cfg.features, "set features=<directory written by model/features.py>"

    def log(msg):
        print(msg, flush=True)

    train(cfg, resume=args.resume, stop_after=args.stop_after, log=log)


if __name__ == "__main__":
    main()
