"""Per-image CPU cost of each CPU view pipeline and of a training step, interleaved rounds.

    .venv/bin/python benchmarks/views.py                  # shared leafsnap-fg176, 200 files
    .venv/bin/python benchmarks/views.py --files 100 --rounds 5 --model resnet18

Pipelines (kaggle preset, 224 px): JPEG decode alone (OpenCV); decode + torchvision v2 on
uint8 (the fallback); decode + the albumentations transform (one warp + one table); the
OpenCV view alone (what ``cache-ram`` renders from its decoded set); the batched
``grid_sample`` views of the earlier ``cache-ram``; and one training step of ``--model``
(fp32 or bf16 as ``fastleaf train`` picks, channels_last) on ready batches.

Everything runs on ONE thread and is timed in CPU seconds (``time.process_time``), not wall
time, so other jobs on a shared machine barely move the figures.  The budget line follows:
with every core busy, a loader costing ``L`` CPU-ms per image next to a model costing ``M``
leaves the model ``M / (M + L)`` of its compute-only rate -- the goal is >= 0.9.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fastleaf.data.augment import AugmentSpec  # noqa: E402
from fastleaf.data.batch_augment import BatchAugment  # noqa: E402
from fastleaf.data.imageio import load_image  # noqa: E402
from fastleaf.data.table import load_table  # noqa: E402
from fastleaf.loaders.albu_views import build_views  # noqa: E402
from fastleaf.loaders.cv_augment import decode_rgb_cv2, draw_view, render  # noqa: E402
from fastleaf.loaders.workers_backend import build_transform  # noqa: E402


def pipelines(spec: AugmentSpec, paths: list, decoded: torch.Tensor) -> dict:
    import cv2

    cv2.setNumThreads(1)
    tv, albu = build_transform(spec), build_views(spec, seed=0)
    rng, draws, batch = np.random.default_rng(0), spec.draws(), BatchAugment(spec)
    g = torch.Generator().manual_seed(0)
    hwc = decoded.permute(0, 2, 3, 1).contiguous().numpy()
    return {
        "decode (OpenCV)": lambda: [decode_rgb_cv2(p) for p in paths],
        "decode + torchvision v2": lambda: [tv(load_image(p, spec.size)) for p in paths],
        "decode + albumentations": lambda: [albu(image=decode_rgb_cv2(p))["image"]
                                            for p in paths],
        "OpenCV view (cache-ram)": lambda: [render(x, draw_view(draws, spec.size, rng),
                                                   spec.size) for x in hwc],
        "grid_sample batch views": lambda: [batch(decoded[i:i + 50], g)
                                            for i in range(0, len(decoded), 50)],
    }


def train_step(model_name: str, images: int):
    """One timed pass of ``images`` through fastleaf's training step on ready batches."""
    import torch.nn as nn

    from fastleaf.config import TrainConfig
    from fastleaf.train.precision import create_precision, default_speed_flags
    from fastleaf.train.build import build_model

    device = torch.device("cpu")
    amp, _ = default_speed_flags(device)
    model = build_model(TrainConfig(model=model_name, channels_last=True), 176, device)[1]
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
    precision, loss_fn = create_precision(amp, device), nn.CrossEntropyLoss()
    x = torch.randn(min(images, 50), 3, 224, 224).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 176, (len(x),))

    def run():
        for _ in range(max(1, images // len(x))):
            optimizer.zero_grad(set_to_none=True)
            with precision.autocast():
                loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
    run()                                      # warm-up: allocations and kernel choice
    return run, max(1, images // len(x)) * len(x), precision.name


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "leafsnap-fg176"))
    p.add_argument("--files", type=int, default=200)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--model", default="cnn", help="model of the training step (cnn)")
    p.add_argument("--step-images", type=int, default=100, help="images per timed training pass")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    spec = AugmentSpec.train_preset(224)
    paths = load_table(args.data, val_fraction=0.0).all_train.paths[:args.files]
    decoded = torch.stack([load_image(q, 224) for q in paths])
    step, step_images, precision = train_step(args.model, args.step_images)
    ms: dict[str, list] = {}
    for _ in range(args.rounds):
        jobs = {name: (run, len(paths)) for name, run in pipelines(spec, paths, decoded).items()}
        jobs[f"train step {args.model} ({precision})"] = (step, step_images)
        for name, (run, n) in jobs.items():
            start = time.process_time()
            run()
            ms.setdefault(name, []).append(1000 * (time.process_time() - start) / n)
    print(f"one thread, CPU ms per image (median of {args.rounds} interleaved rounds), "
          f"{len(paths)} files, CPU {torch.backends.cpu.get_cpu_capability()}")
    cost = {name: statistics.median(values) for name, values in ms.items()}
    for name, value in cost.items():
        print(f"  {name:<32} {value:7.2f} ms  ({1000 / value:6.0f} img per CPU-second)")
    model = cost[f"train step {args.model} ({precision})"]
    for name in ("decode + albumentations", "OpenCV view (cache-ram)", "decode + torchvision v2",
                 "grid_sample batch views"):
        print(f"  budget with {name:<26}: the model keeps {model / (model + cost[name]):.0%} "
              f"of compute-only")
    return 0


if __name__ == "__main__":
    sys.exit(main())
