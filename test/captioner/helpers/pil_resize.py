"""Reference for test/captioner/preprocess.test.ts: PIL's BICUBIC resize of raw RGB bytes.

stdin: JSON list of cases {"w","h","ow","oh","b64"} (b64 = raw RGB bytes); stdout: JSON list of base64 RGB results.
"""
import base64
import json
import sys

from PIL import Image

cases = json.load(sys.stdin)
out = []
for c in cases:
    img = Image.frombytes("RGB", (c["w"], c["h"]), base64.b64decode(c["b64"]))
    out.append(base64.b64encode(img.resize((c["ow"], c["oh"]), Image.BICUBIC).tobytes()).decode())
json.dump(out, sys.stdout)
