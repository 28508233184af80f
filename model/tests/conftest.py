import os
import sys

import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def small_random_pack(tmp_path_factory):
    """A small random-weight pack (transformer mapper, L2-normalised embedding), built fresh for the session."""
    from model.random_pack import build

    out = str(tmp_path_factory.mktemp("packs") / "small-random")
    report = build("small", out, seed=1, precisions=["fp32"], max_tokens=12)
    return out, report


@pytest.fixture(scope="session")
def toy_pack():
    """The toy pack `npm run pack:toy` builds (the README's test command builds it first)."""
    d = os.path.join(REPO, "packs", "toy")
    if not os.path.exists(os.path.join(d, "report.json")):
        pytest.fail("packs/toy is missing: run `npm run pack:toy` (npm test does it first)")
    return d
