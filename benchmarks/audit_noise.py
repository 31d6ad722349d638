"""The label audit measured on data with known noise: precision, recall and F1 against the
flipped rows, and what leaving the flagged rows out does to accuracy on clean labels.

    PYTHONPATH=. python benchmarks/audit_noise.py --out /tmp/audit-noise --json audit.json
    # the hard set (defaults): 30 synthetic classes x 24 training images at 128 px, 10 % of the
    # training labels flipped (seeded), the paper CNN for 8 epochs, 4 folds

Steps: ``make_synthetic`` draws the classes with 8 extra images per class, held out with their
true labels (``heldout.csv``); the rest is the training set, whose flipped copy of train.csv
lives in ``noisy/`` (images stay in ``synth/``: ``noisy/data.yaml`` points there).  Then
``fastleaf train --folds`` writes the out-of-fold probabilities, every cleanlab rule and plain
disagreement (out-of-fold prediction != given label) are scored against the flipped rows, and
``fastleaf audit`` writes audit.csv (``--repeats R``: R k-fold runs with other seeds, their
probabilities averaged).  Last, three final fits on every noisy training row (plain,
``--exclude audit.csv``, ``--relabel audit.csv``) are scored on the clean held-out images.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from fastleaf.audit import DEFAULT_METHOD, METHODS
from fastleaf.audit.find import flipped_scores, label_issues, load_out_of_fold, plain_disagreement
from fastleaf.cli import main as fastleaf
from fastleaf.data.synth import make_synthetic
from fastleaf.predict.scoring import evaluate_checkpoints


def noisy_set(out: Path, args) -> tuple[Path, Path, set[int]]:
    """``(noisy data folder, clean held-out CSV, flipped 0-based train.csv rows)``."""
    synth = make_synthetic(out / "synth", num_classes=args.classes,
                           train_per_class=args.train_per_class + args.heldout_per_class,
                           test_per_class=0, size=args.img_size, seed=args.seed)
    frame = pd.read_csv(synth / "train.csv", dtype=str)
    held = frame.groupby("label", sort=False).head(args.heldout_per_class).index
    heldout, train = frame.loc[held], frame.drop(index=held).reset_index(drop=True)
    classes = sorted(frame["label"].unique())
    rng = np.random.default_rng([args.seed, 2])
    flipped = np.sort(rng.choice(len(train), int(round(args.noise * len(train))), replace=False))
    for row in flipped:       # a different class, uniformly
        others = [c for c in classes if c != train.at[row, "label"]]
        train.at[row, "label"] = others[rng.integers(len(others))]
    noisy = out / "noisy"
    noisy.mkdir(parents=True, exist_ok=True)
    train.to_csv(noisy / "train.csv", index=False)
    (noisy / "data.yaml").write_text(f"image_root: {synth.resolve()}\n")
    heldout.to_csv(out / "heldout.csv", index=False)
    pd.DataFrame({"line": flipped + 2}).to_csv(out / "flipped.csv", index=False)
    return noisy, out / "heldout.csv", set(flipped.tolist())


def train_args(args, data: Path) -> list[str]:
    return ["train", "--data", str(data), "--model", args.model, "--epochs", str(args.epochs),
            "--img-size", str(args.img_size), "--device", args.device, "--seed", str(args.seed),
            "--no-progress", "--no-tensorboard", "--overwrite", *args.train_flags]


def detection(kfolds: list[Path], flipped: set[int]) -> dict[str, dict]:
    """Precision/recall/F1 of plain disagreement and of each cleanlab rule, on the mean
    out-of-fold probabilities of the k-fold runs."""
    oof = load_out_of_fold(kfolds)
    rows = len(oof.labels)      # the noisy folder has no other rows: oof row == train.csv row
    scores = {"plain disagreement": flipped_scores(plain_disagreement(oof), flipped, rows)}
    for method in METHODS:
        found, _, _ = label_issues(oof, method)
        scores[f"cleanlab {method}"] = flipped_scores(found, flipped, rows)
    scores["out-of-fold accuracy"] = {"acc": oof.metrics["acc"]}
    return scores


def clean_accuracy(args, out: Path, noisy: Path, heldout: Path, audit_csv: Path) -> dict:
    """Held-out accuracy (true labels) of final fits on the noisy rows: plain, with the
    audit's rows left out, and with its labels taken."""
    found = {}
    for name, extra in (("plain", []), ("--exclude", ["--exclude", str(audit_csv)]),
                        ("--relabel", ["--relabel", str(audit_csv)])):
        run = out / f"fit-{name.strip('-')}"
        assert fastleaf([*train_args(args, noisy), "--val-fraction", "0", "--out", str(run),
                         *extra]) == 0
        result = evaluate_checkpoints([run], tta="none", data_dir=out / "synth", csv=heldout)
        found[name] = result.metrics["none"]["acc"]
    return found


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="work folder (data, runs, audit)")
    p.add_argument("--classes", type=int, default=30)
    p.add_argument("--train-per-class", type=int, default=24)
    p.add_argument("--heldout-per-class", type=int, default=8)
    p.add_argument("--img-size", type=int, default=128)
    p.add_argument("--noise", type=float, default=0.1, help="share of labels flipped (0.1)")
    p.add_argument("--model", default="cnn")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--folds", type=int, default=4)
    p.add_argument("--repeats", type=int, default=1,
                   help="k-fold runs with seeds seed, seed+1, ...; the audit averages their "
                        "out-of-fold probabilities (1)")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--method", choices=METHODS, default=DEFAULT_METHOD,
                   help="the audit's rule for the audit.csv that --exclude/--relabel use")
    p.add_argument("--train-flags", nargs=argparse.REMAINDER, default=[],
                   help="further fastleaf train flags (last on the line)")
    p.add_argument("--json", help="write the figures here too")
    args = p.parse_args(argv)
    out = Path(args.out)
    noisy, heldout, flipped = noisy_set(out, args)
    kfolds = [out / f"kfold{r}" for r in range(args.repeats)]
    for r, kfold in enumerate(kfolds):     # another seed: other folds and initial weights
        assert fastleaf([*train_args(args, noisy), "--folds", str(args.folds), "--seed",
                         str(args.seed + r), "--out", str(kfold)]) == 0
    figures = {"detection": detection(kfolds, flipped)}
    assert fastleaf(["audit", "--data", str(noisy), *map(str, kfolds), "--out",
                     str(out / "audit"), "--method", args.method]) == 0
    figures["heldout_acc"] = clean_accuracy(args, out, noisy, heldout, out / "audit" / "audit.csv")
    report(figures, args, len(flipped))
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), **figures}, indent=2))
    return figures


def report(figures: dict, args, flips: int) -> None:
    d = figures["detection"]
    print(f"\n{args.classes} classes x {args.train_per_class} images, {flips} labels flipped, "
          f"{args.model} {args.epochs} epochs, {args.folds} folds x {args.repeats} seed(s): "
          f"out-of-fold accuracy "
          f"{d['out-of-fold accuracy']['acc']:.3f}")
    print(f"{'finder':<32} {'flagged':>7} {'precision':>9} {'recall':>7} {'F1':>6}")
    for name, s in d.items():
        if "f1" in s:
            mark = "  <- audit.csv" if name == f"cleanlab {args.method}" else ""
            print(f"{name:<32} {s['flagged']:>7} {s['precision']:>9.3f} {s['recall']:>7.3f} "
                  f"{s['f1']:>6.3f}{mark}")
    print("held-out accuracy (true labels) of a final fit on the noisy rows: " +
          ", ".join(f"{k} {v:.3f}" for k, v in figures["heldout_acc"].items()))


if __name__ == "__main__":
    main()
