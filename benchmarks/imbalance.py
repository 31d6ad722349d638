"""Class imbalance: macro-F1 of plain training, --class-weights balanced and --sampler balanced
on a deliberately skewed set, side by side.

    PYTHONPATH=. python benchmarks/imbalance.py --out /tmp/imbalance [--epochs 8] [--json F]

The set: ``fastleaf synth`` classes of which every other one is cut to ``--rare`` training
images (5 by default); the validation split is a fixed balanced one (``val/`` of a
folder-per-class tree), so macro-F1 weighs every class alike.  Each variant trains the paper
CNN from the same seed.
"""
from __future__ import annotations

import argparse
import csv
import json
import shutil
from pathlib import Path


def skewed_tree(src: Path, out: Path, rare: int, val_per_class: int) -> Path:
    """``out/train/<class>/`` with every other class cut to ``rare`` images, ``out/val``
    holding ``val_per_class`` of each class."""
    rows = list(csv.DictReader(open(src / "train.csv")))
    classes = sorted({r["label"] for r in rows})
    taken: dict[str, int] = {}
    for row in rows:
        label = row["label"]
        n = taken[label] = taken.get(label, 0) + 1
        if n <= val_per_class:
            split = "val"
        elif classes.index(label) % 2 == 1 and n > val_per_class + rare:
            continue
        else:
            split = "train"
        folder = out / split / label
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / row["image"], folder / f"{n}.jpg")
    return out


def main(argv=None) -> dict:
    from fastleaf.config import resolve_config
    from fastleaf.data.synth import make_synthetic
    from fastleaf.train.trainer import fit

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--per-class", type=int, default=50, help="images per class before the cut")
    p.add_argument("--rare", type=int, default=5)
    p.add_argument("--val-per-class", type=int, default=10)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--img-size", type=int, default=112)
    p.add_argument("--json")
    args = p.parse_args(argv)
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    src = make_synthetic(out / "synth", num_classes=args.classes,
                         train_per_class=args.per_class, test_per_class=1,
                         size=args.img_size, seed=0)
    data = skewed_tree(src, out / "skewed", args.rare, args.val_per_class)
    results = {}
    for name, extra in (("plain", {}), ("class-weights", {"class_weights": "balanced"}),
                        ("sampler", {"sampler": "balanced"})):
        cfg = resolve_config(data=str(data), model="cnn", img_size=args.img_size,
                             epochs=args.epochs, batch_size=16, device="cpu", progress=False,
                             tensorboard=False, out=str(out / "runs" / name), eval_metric="f1_macro",
                             **extra)
        result = fit(cfg)
        results[name] = {k: round(float(result.best[k]), 4) for k in ("acc", "f1_macro")}
        results[name]["best_epoch"] = result.best_epoch
        print(f"{name:14s} best macro-F1 {results[name]['f1_macro']:.4f} "
              f"(acc {results[name]['acc']:.4f}, epoch {result.best_epoch})")
    if args.json:
        Path(args.json).write_text(json.dumps({"settings": vars(args), "results": results},
                                              indent=1))
    return results


if __name__ == "__main__":
    main()
