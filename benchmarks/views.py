"""Per-image cost of each CPU view pipeline, one thread, interleaved rounds on the same JPEGs.

    .venv/bin/python benchmarks/views.py                  # shared leafsnap-fg176, 200 files
    .venv/bin/python benchmarks/views.py --files 100 --rounds 5

Pipelines (kaggle preset, 224 px): JPEG decode alone (OpenCV); decode + torchvision v2 on
uint8 (the fallback); decode + the albumentations transform (one warp + one table); decode +
the OpenCV view alone (what ``cache-ram`` renders, here with the decode for equal work); and
the batched ``grid_sample`` views of the earlier ``cache-ram`` on already decoded images.
Rounds alternate the pipelines so a busy machine slows them alike; the median img/s is printed.
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
from fastleaf.loaders.torchvision_backend import build_transform  # noqa: E402


def pipelines(spec: AugmentSpec, paths: list, decoded: torch.Tensor) -> dict:
    import cv2

    cv2.setNumThreads(1)
    tv, albu = build_transform(spec), build_views(spec, seed=0)
    rng, draws, batch = np.random.default_rng(0), spec.draws(), BatchAugment(spec)
    g = torch.Generator().manual_seed(0)
    return {
        "decode (OpenCV)": lambda: [decode_rgb_cv2(p) for p in paths],
        "decode + torchvision v2": lambda: [tv(load_image(p, spec.size)) for p in paths],
        "decode + albumentations": lambda: [albu(image=decode_rgb_cv2(p))["image"]
                                            for p in paths],
        "decode + OpenCV view": lambda: [render(decode_rgb_cv2(p),
                                                draw_view(draws, spec.size, rng), spec.size)
                                         for p in paths],
        "grid_sample batch (decoded)": lambda: [batch(decoded[i:i + 50], g)
                                                for i in range(0, len(decoded), 50)],
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "leafsnap-fg176"))
    p.add_argument("--files", type=int, default=200)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    spec = AugmentSpec.train_preset(224)
    paths = load_table(args.data, val_fraction=0.0).all_train.paths[:args.files]
    decoded = torch.stack([load_image(q, 224) for q in paths])
    rates: dict[str, list] = {}
    for _ in range(args.rounds):
        for name, run in pipelines(spec, paths, decoded).items():
            start = time.perf_counter()
            run()
            rates.setdefault(name, []).append(len(paths) / (time.perf_counter() - start))
    print(f"one thread, {len(paths)} files, {args.rounds} interleaved rounds, CPU "
          f"{torch.backends.cpu.get_cpu_capability()}")
    for name, values in rates.items():
        print(f"  {name:<30} {statistics.median(values):8.0f} img/s "
              f"({min(values):.0f}-{max(values):.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
