"""The yardstick: a plain seed-style training loop against fastleaf's defaults, back to back.

    .venv/bin/python benchmarks/yardstick.py                       # shared leafsnap-fg176 >= 8k
    .venv/bin/python benchmarks/yardstick.py --data DIR --min-images 8000 --steps 200
    .venv/bin/python benchmarks/yardstick.py --model resnet18 --files 600 --min-images 600

Both sides read the same rows (the train CSV, or its first ``--files`` rows, repeated to
``--min-images``) on the same machine, with the same model (the paper CNN) at batch 50:

* plain: PIL decode + ``ToTensor`` + ``Normalize`` in a ``DataLoader`` with 2 workers, fp32,
  NCHW, eager, Adam -- the shape of the original training script, no augmentation;
* fastleaf: channels_last, bf16 autocast where the CPU has native bf16 kernels (``--amp`` to
  force), the training loop of ``fastleaf train``, loader workers and torch threads from
  ``plan_split``, and

  - ``cache-ram`` without augmentation (equal work: the headline of earlier results);
  - the kaggle augmentations on each CPU input path: ``cache-ram`` (OpenCV views in a thread
    pool) and the worker loader (albumentations, or torchvision where it cannot import);
  - ``synthetic`` batches: the compute-only ceiling of the same model and flags.

Printed and saved: images/sec of each loader alone and of each training loop, and the ratios
the goals name -- kaggle loader alone / plain loader, kaggle training / plain training, and
kaggle training / compute-only -- with the CPU's capability (AVX2, AVX512, native bf16).
Results go to ``benchmarks/results/yardstick-<date>.json``.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

import torch
import torch.nn as nn
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fastleaf.bench import Flags, machine_info  # noqa: E402
from fastleaf.bench.timing import Steps, batch_stream  # noqa: E402
from fastleaf.config import TrainConfig  # noqa: E402
from fastleaf.data.augment import IMAGENET_MEAN, IMAGENET_STD, AugmentSpec  # noqa: E402
from fastleaf.data.table import load_table  # noqa: E402
from fastleaf.loaders import LoaderOptions, create_loader  # noqa: E402
from fastleaf.loaders.cpu_split import plan_split  # noqa: E402
from fastleaf.utils.device import usable_cores  # noqa: E402
from fastleaf.train.precision import amp_is_fast  # noqa: E402
from fastleaf.train.loop import train_one_epoch  # noqa: E402
from fastleaf.train.precision import create_precision  # noqa: E402
from fastleaf.train.build import build_model  # noqa: E402
from fastleaf.utils.atomic import write_text_atomic  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "leafsnap-fg176"


class PlainDataset(Dataset):
    """The seed's dataset: open with PIL, convert to RGB, ToTensor, Normalize."""

    def __init__(self, samples):
        self.paths, self.labels = samples.paths, samples.labels
        self.transform = transforms.Compose([transforms.ToTensor(),
                                             transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        image = Image.open(self.paths[i]).convert("RGB")
        return self.transform(image), int(self.labels[i])


def timed(stream, steps: int, seconds: float, step=None) -> float:
    """img/s over up to ``steps`` batches (fewer once ``seconds`` have passed)."""
    images, start = 0, time.perf_counter()
    for i in range(steps):
        if i and time.perf_counter() - start > seconds:
            break
        x, y = next(stream)
        if step is not None:
            step(x, y)
        images += len(y)
    return images / (time.perf_counter() - start)


def endless(loader):
    while True:
        yield from loader


def plain_side(samples, num_classes: int, args) -> dict:
    """Seed-style loop: DataLoader(2 workers), fp32, NCHW, eager."""
    loader = DataLoader(PlainDataset(samples), batch_size=args.batch_size, shuffle=True,
                        num_workers=2, drop_last=True, persistent_workers=True)
    stream = endless(loader)
    next(stream)                                   # workers started, first batches queued
    loader_rate = timed(stream, args.steps, args.seconds)
    model = build_model(TrainConfig(model=args.model), num_classes, torch.device("cpu"))[1]
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
    loss_fn = nn.CrossEntropyLoss()
    model.train()

    def step(x, y):
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()

    for _ in range(args.warmup):
        step(*next(stream))
    return {"loader_img_per_s": loader_rate,
            "train_img_per_s": timed(stream, args.steps, args.seconds, step)}


def fastleaf_side(samples, num_classes: int, args, augment: str,
                  backend: str = "cache-ram") -> dict:
    """``backend`` + the device's default speed flags through fastleaf's own training loop."""
    device = torch.device("cpu")
    flags = Flags.defaults(device)
    amp = flags.amp if args.amp is None else args.amp
    split = plan_split(device, backend)
    split.apply()
    options = LoaderOptions(batch_size=args.batch_size, device=device, channels_last=True,
                            workers=split.workers, drop_last=True)
    start = time.perf_counter()
    loader = create_loader(samples, AugmentSpec.train_preset(224, augment), options, backend)
    setup_s = time.perf_counter() - start
    stream = batch_stream(loader)
    next(stream)
    loader_rate = timed(stream, args.steps, args.seconds)
    model = build_model(TrainConfig(model=args.model, channels_last=True), num_classes,
                        device)[1]
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
    precision = create_precision(amp, device)
    loss_fn = nn.CrossEntropyLoss()
    train_one_epoch(model, Steps(stream, args.warmup), optimizer, precision, loss_fn)
    steps = Steps(stream, args.steps, args.seconds)
    stats = train_one_epoch(model, steps, optimizer, precision, loss_fn)
    return {"loader_img_per_s": loader_rate, "train_img_per_s": stats.img_per_s,
            "decode_once_s": setup_s, "backend": loader.backend,
            "pipeline": getattr(loader, "pipeline", loader.backend), "augment": augment,
            "precision": precision.name, "channels_last": True, "split": split.describe()}


def kaggle_sides(samples, num_classes: int, args, plain: dict) -> dict:
    """The kaggle augmentations on each CPU input path, the compute-only ceiling, the ratios."""
    sides = {name: fastleaf_side(samples, num_classes, args, "kaggle", name)
             for name in ("cache-ram", "workers", "synthetic")}
    compute = sides["synthetic"]["train_img_per_s"]
    for name, side in sides.items():
        side["loader_vs_plain"] = side["loader_img_per_s"] / plain["loader_img_per_s"]
        side["train_vs_plain"] = side["train_img_per_s"] / plain["train_img_per_s"]
        side["train_vs_compute"] = side["train_img_per_s"] / compute
        print(f"kaggle {name:<11} ({side['pipeline']}): loader {side['loader_img_per_s']:.0f} "
              f"img/s ({side['loader_vs_plain']:.2f}x plain), train "
              f"{side['train_img_per_s']:.1f} img/s ({side['train_vs_plain']:.2f}x plain, "
              f"{side['train_vs_compute']:.0%} of compute-only); {side['split']}")
    return sides


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(DEFAULT_DATA), help="Kaggle-layout folder")
    p.add_argument("--model", default="cnn", help="model on both sides (cnn)")
    p.add_argument("--files", type=int, help="use only the first N train rows (slow models)")
    p.add_argument("--min-images", type=int, default=8000, help="repeat the train rows to this")
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--steps", type=int, default=200, help="timed steps per measurement")
    p.add_argument("--seconds", type=float, default=45.0, help="time budget per measurement")
    p.add_argument("--warmup", type=int, default=3, help="untimed training steps first")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction,
                   help="bf16 autocast on the fastleaf side (default: on where the CPU has "
                        "native bf16 kernels)")
    p.add_argument("--rounds", type=int, default=1, help="plain/fastleaf rounds; median ratio")
    p.add_argument("--no-augmented", action="store_true",
                   help="skip the fastleaf runs with the kaggle augmentations")
    p.add_argument("--out", help="result JSON (default benchmarks/results/yardstick-<date>.json)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    table = load_table(args.data, val_fraction=0.0)
    rows = table.all_train
    if args.files:
        rows = rows.subset(range(min(args.files, len(rows))))
    samples = rows.repeat(args.min_images)
    capability = (f"{torch.backends.cpu.get_cpu_capability()}, native bf16: "
                  f"{amp_is_fast(torch.device('cpu'))}")
    print(f"{len(samples)} images ({len(rows)} files), {table.num_classes} classes, model "
          f"{args.model}, batch {args.batch_size}; CPU {capability}")
    rounds = []
    for r in range(args.rounds):
        torch.set_num_threads(usable_cores())       # the plain loop: torch's own default
        plain = plain_side(samples, table.num_classes, args)
        fast = fastleaf_side(samples, table.num_classes, args, "none")
        rounds.append({"plain": plain, "fastleaf": fast,
                       "train_ratio": fast["train_img_per_s"] / plain["train_img_per_s"],
                       "loader_ratio": fast["loader_img_per_s"] / plain["loader_img_per_s"]})
        print(f"round {r + 1}: plain loader {plain['loader_img_per_s']:.0f} img/s, train "
              f"{plain['train_img_per_s']:.1f} img/s | fastleaf loader "
              f"{fast['loader_img_per_s']:.0f} img/s, train {fast['train_img_per_s']:.1f} img/s "
              f"({fast['precision']} + channels_last; decode once {fast['decode_once_s']:.1f} s)")
    result = {"machine": machine_info(), "cpu_capability": capability, "settings": vars(args),
              "rounds": rounds,
              "train_ratio": statistics.median(r["train_ratio"] for r in rounds),
              "loader_ratio": statistics.median(r["loader_ratio"] for r in rounds)}
    if not args.no_augmented:
        result["kaggle"] = kaggle_sides(samples, table.num_classes, args, rounds[-1]["plain"])
    print(f"training ratio fastleaf / plain: {result['train_ratio']:.2f}x   "
          f"loader ratio: {result['loader_ratio']:.2f}x (no augmentation on either side)")
    stamp = datetime.now().strftime("%Y%m%d-%H%M")
    out = Path(args.out or ROOT / "benchmarks" / "results" / f"yardstick-{stamp}.json")
    write_text_atomic(out, json.dumps(result, indent=1, default=str) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
