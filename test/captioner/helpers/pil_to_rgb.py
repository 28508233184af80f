"""Reference for test/captioner/preprocess.test.ts: model/preprocess.py's to_rgb (transparency over white).

stdin: JSON list of cases {"w","h","b64"} (b64 = raw RGBA bytes); stdout: JSON list of base64 RGB results.
"""
import base64
import json
import os
import sys

from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", ".."))
from model.preprocess import to_rgb  # noqa: E402

cases = json.load(sys.stdin)
out = [base64.b64encode(to_rgb(Image.frombytes("RGBA", (c["w"], c["h"]), base64.b64decode(c["b64"]))).tobytes()).decode() for c in cases]
json.dump(out, sys.stdout)
