"""Shared fixtures: small synthetic data sets made on the fly (no ../shared needed)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("MPLBACKEND", "Agg")
torch.set_num_threads(min(2, os.cpu_count() or 1))

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "leafsnap-fg176"


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        # the marker itself: ``"gpu" in item.keywords`` also matches a checkout folder named gpu
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """6 classes x 12 train + 3 test images, 128 px: enough for a quick CNN run."""
    from fastleaf.data.synth import make_synthetic

    return make_synthetic(tmp_path_factory.mktemp("tiny") / "data", num_classes=6,
                          train_per_class=12, test_per_class=3, size=128, seed=0)


@pytest.fixture(scope="session")
def tiny_run(tiny_data, tmp_path_factory) -> Path:
    """One finished run on ``tiny_data`` (1 epoch of the paper CNN at 112 px, bf16 autocast and
    channels_last), trained once for every test that reads a run back; its folder is the only
    one in its parent."""
    from fastleaf.config import resolve_config
    from fastleaf.train.trainer import fit

    out = tmp_path_factory.mktemp("tiny-run") / "run"
    cfg = resolve_config(data=str(tiny_data), model="cnn", img_size=112, epochs=1, batch_size=8,
                         lr=1e-3, augment="none", workers=0, amp=True, channels_last=True,
                         device="cpu", tensorboard=False, progress=False, out=str(out))
    return fit(cfg).run_dir


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "train.csv").is_file():
        pytest.skip("shared leafsnap-fg176 data not present")
    return SHARED_DATA
