"""model/train_scale.py under DDP on CPU (gloo, launched with torchrun): 2 processes follow the 1-process loss
curve, and a run stopped after an epoch and resumed retraces the uninterrupted one. Tiny model, tiny data."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from model.model import load_checkpoint
from model.train_scale import resolve_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY_MODEL = {
    "vision": {"image_size": 32, "patch_size": 16, "width": 32, "layers": 1, "heads": 2, "output_dim": 16},
    "gpt2": {"vocab_size": 50257, "n_positions": 64, "n_embd": 32, "n_layer": 2, "n_head": 2},
    "mapper": {"type": "transformer", "prefix_length": 3, "clip_length": 2, "num_layers": 1, "num_heads": 2},
}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("ddp")
    feats = d / "features"
    feats.mkdir()
    rng = np.random.default_rng(0)
    n_images, n_caps = 12, 24
    np.save(feats / "embeddings.npy", rng.standard_normal((n_images, 16)).astype(np.float16))
    caps = [{"image": int(i % n_images), "caption": "", "tokens": rng.integers(0, 50000, rng.integers(2, 9)).tolist()}
            for i in range(n_caps)]  # uneven lengths: the per-rank token counts differ
    (feats / "captions.json").write_text(json.dumps(caps))
    (feats / "meta.json").write_text(json.dumps({"count": n_images, "done": n_images, "dim": 16}))
    cfg = {"features": str(feats), "model": TINY_MODEL, "finetune_gpt": True, "epochs": 3, "batch_size": 8,
           "lr": 3e-3, "warmup_steps": 2, "log_every": 1, "seed": 0, "device": "cpu", "val_features": str(feats)}
    (d / "cfg.json").write_text(json.dumps(cfg))
    return d


def _run(args, nproc=1):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT)
    # --redirects 1 --tee 1: torch 1.13 on Python 3.11 cannot parse the default "0" (enum.IntFlag no longer
    # iterates its zero member), so stdout goes through a file and is echoed; stderr stays on the console
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
                "--redirects", "1", "--tee", "1"] \
        if nproc > 1 else [sys.executable]
    r = subprocess.run(launcher + ["-m", "model.train_scale"] + args, cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=900)  # generous: the CI machine may be busy
    assert r.returncode == 0, f"train_scale failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout


def _losses(out_dir, key="loss"):
    with open(os.path.join(out_dir, "log.jsonl")) as f:
        return [row[key] for row in map(json.loads, f) if key in row]


def test_two_process_gloo_matches_one_process_and_resume_continues_the_curve(setup):
    cfg = str(setup / "cfg.json")
    one, two, resumed = (str(setup / n) for n in ("one", "two", "resumed"))
    _run(["--config", cfg, f"out_dir={one}"])
    out = _run(["--config", cfg, f"out_dir={two}"], nproc=2)
    assert "on 2 x cpu" in out
    a, b = _losses(one), _losses(two)
    assert len(a) == len(b) == 9  # 3 epochs x (24 captions // 8)
    assert a[-1] < a[0], "the loss should fall"
    np.testing.assert_allclose(b, a, rtol=2e-4, err_msg="2-process DDP should follow the 1-process loss curve")
    va, vb = _losses(one, "val_loss"), _losses(two, "val_loss")
    assert len(va) == 3 and va[-1] < va[0]
    np.testing.assert_allclose(vb, va, rtol=2e-4, err_msg="validation loss, sharded over 2 ranks, should agree")

    # stopped after epoch 1 and resumed (1 process each time: a torchrun launch costs ~15 s of startup here)
    _run(["--config", cfg, f"out_dir={resumed}", "--stop-after", "1"])
    assert len(_losses(resumed)) == 3 and not os.path.exists(os.path.join(resumed, "epoch-001.pt"))
    out = _run(["--config", cfg, f"out_dir={resumed}", "--resume", "auto"])
    assert "resumed from" in out and "epoch-000.pt" in out
    np.testing.assert_allclose(_losses(resumed), a, rtol=1e-6, err_msg="resuming should retrace the same curve")
    np.testing.assert_allclose(_losses(resumed, "val_loss"), va, rtol=1e-6)

    # checkpoints: one per epoch, each with its resolved config beside it, readable by model.load_checkpoint
    for e in range(3):
        saved = json.loads(open(os.path.join(two, f"epoch-{e:03d}.json")).read())
        assert saved["model"]["mapper"]["prefix_length"] == 3 and saved["out_dir"] == two
    final_one = load_checkpoint(os.path.join(one, "epoch-002.pt")).state_dict()
    final_two = load_checkpoint(os.path.join(two, "epoch-002.pt")).state_dict()
    final_resumed = load_checkpoint(os.path.join(resumed, "epoch-002.pt")).state_dict()
    for k in final_one:
        torch.testing.assert_close(final_resumed[k], final_one[k], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(final_two[k], final_one[k], rtol=1e-3, atol=1e-4)  # Adam amplifies ~0 grads


def test_config_file_and_overrides(tmp_path):
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"epochs": 2, "model": {"mapper": {"type": "transformer", "prefix_length": 40}}}))
    cfg = resolve_config(str(p), ["lr=1e-4", "model.mapper.clip_length=40", "out_dir=runs/x", "finetune_gpt=true"])
    assert (cfg.epochs, cfg.lr, cfg.out_dir, cfg.finetune_gpt) == (2, 1e-4, "runs/x", True)
    assert cfg.model["mapper"] == {**cfg.model["mapper"], "type": "transformer", "prefix_length": 40, "clip_length": 40}
    assert cfg.model["gpt2"]["n_layer"] == 12, "sections not named in the file keep their defaults"
    with pytest.raises(AssertionError, match="unknown config key"):
        resolve_config(None, ["learning_rate=1"])


@pytest.mark.parametrize("name,mapper,finetune,normalize", [
    ("coco_mlp.json", {"type": "mlp", "prefix_length": 10}, True, False),
    ("coco_transformer_rn50x4.json", {"type": "transformer", "prefix_length": 40, "clip_length": 40}, False, True),
])
def test_shipped_configs_reproduce_clipcap_recipes(name, mapper, finetune, normalize):
    cfg = resolve_config(os.path.join(ROOT, "model", "configs", name), [])
    assert {k: cfg.model["mapper"][k] for k in mapper} == mapper
    assert (cfg.finetune_gpt, cfg.model["normalize_prefix"]) == (finetune, normalize)
    assert (cfg.lr, cfg.warmup_steps, cfg.batch_size, cfg.epochs) == (2e-5, 5000, 40, 10)  # train.py's defaults
