"""Run exported ONNX graphs from Python through onnxruntime-node (Python has no onnxruntime on this platform).

    with NodeORT() as ort:
        vision = ort.load("packs/toy/vision.onnx")
        out = ort.run(vision, {"pixel_values": x})["image_embeds"]

`onnx_step` turns a loaded decoder into the step function model.greedy_search / model.beam_search take, so the
reference search runs unchanged over the exported graph.
"""

import base64
import json
import os
import subprocess
from typing import Dict, Optional

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNNER = os.path.join(REPO, "model", "node", "ort_runner.mjs")


class NodeRuntimeError(RuntimeError):
    """onnxruntime-node is missing or a graph failed to run; the message carries ORT's own words."""


def _enc(a: np.ndarray) -> dict:
    a = np.ascontiguousarray(a)
    dtype = {np.dtype("float32"): "float32", np.dtype("int64"): "int64", np.dtype("int32"): "int32"}[a.dtype]
    return {"dtype": dtype, "shape": list(a.shape), "b64": base64.b64encode(a.tobytes()).decode()}


def _dec(t: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(t["b64"]), dtype=np.dtype(t["dtype"])).reshape(t["shape"]).copy()


class NodeORT:
    def __init__(self, threads: int = 2):
        if not os.path.isdir(os.path.join(REPO, "node_modules", "onnxruntime-node")):
            raise NodeRuntimeError("onnxruntime-node is not installed: run `npm ci` in the repository root")
        self.threads = threads
        self.proc: Optional[subprocess.Popen] = None

    def __enter__(self):
        self.proc = subprocess.Popen(["node", RUNNER], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1)
        return self

    def __exit__(self, *exc):
        if self.proc:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
            self.proc = None

    def _call(self, req: dict) -> dict:
        assert self.proc is not None, "use NodeORT as a context manager"
        self.proc.stdin.write(json.dumps(req) + "\n")
        line = self.proc.stdout.readline()
        if not line:
            raise NodeRuntimeError("the onnxruntime-node runner exited unexpectedly")
        reply = json.loads(line)
        if "error" in reply:
            raise NodeRuntimeError(f"{reply['error']['name']}: {reply['error']['message']}")
        return reply

    def load(self, path: str) -> int:
        return self._call({"op": "load", "path": os.path.abspath(path), "threads": self.threads})["id"]

    def free(self, sid: int):
        self._call({"op": "free", "id": sid})

    def run(self, sid: int, feeds: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        out = self._call({"op": "run", "id": sid, "feeds": {k: _enc(v) for k, v in feeds.items()}})
        return {k: _dec(v) for k, v in out["outputs"].items()}


def onnx_step(ort: NodeORT, decoder: int, n_layer: int, n_head: int, head_dim: int):
    """The exported decoder (a session id from ort.load) as a model.StepFn (torch tensors in and out)."""

    def step(ids, embeds, mask, past):
        B = embeds.shape[0]
        feeds = {"input_ids": ids.numpy().astype(np.int64), "inputs_embeds": embeds.numpy().astype(np.float32),
                 "attention_mask": mask.numpy().astype(np.int64)}
        for i in range(n_layer):
            if past is None:
                k = v = np.zeros((B, n_head, 0, head_dim), np.float32)
            else:
                k, v = past[i][0].numpy(), past[i][1].numpy()
            feeds[f"past_key_values.{i}.key"], feeds[f"past_key_values.{i}.value"] = k, v
        out = ort.run(decoder, feeds)
        present = [(torch.from_numpy(out[f"present.{i}.key"]), torch.from_numpy(out[f"present.{i}.value"]))
                   for i in range(n_layer)]
        return torch.from_numpy(out["logits"]), present

    return step
