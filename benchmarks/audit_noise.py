"""The label audit measured on data with known noise: precision, recall and F1 against the
flipped rows, and what leaving the flagged rows out does to accuracy on clean labels.

    PYTHONPATH=. python benchmarks/audit_noise.py --out /tmp/audit-noise --json audit.json
    # the hard set (defaults): 30 synthetic classes x 24 training images at 128 px, 10 % of the
    # training labels flipped (seeded), the paper CNN for 8 epochs, 4 folds

Steps: ``make_synthetic`` draws the classes with 8 extra images per class, held out with their
true labels (``heldout.csv``); the rest is the training set, whose flipped copy of train.csv
lives in ``noisy/`` (images stay in ``synth/``: ``noisy/data.yaml`` points there).  Then
``fastleaf train --folds`` writes the out-of-fold probabilities, every rule of the audit and
plain disagreement (out-of-fold prediction != given label) are scored against the flipped rows
(``--variants``: also on the first run's probabilities with the flips TTA, and
temperature-scaled), and ``fastleaf audit`` writes audit.csv (``--repeats R``: R k-fold runs
with other seeds, their probabilities averaged; each run alone is scored too).  Last, final fits on every noisy
training row (plain, ``--exclude audit.csv``, ``--relabel audit.csv``, and for reference the
same with ``flipped.csv``, an audit.csv listing exactly the flipped rows with their true
labels: what a perfect audit would give) are scored on the clean held-out images, each the
mean of ``--fit-seeds`` seeds.  ``--reuse-folds`` keeps k-fold runs already in ``--out``
(the same arguments draw the same data).
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from fastleaf.audit import CLEANLAB_METHODS, DEFAULT_METHOD, METHODS
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
    truth = train["label"].copy()
    flipped = flip_labels(train, sorted(frame["label"].unique()), args)
    noisy = out / "noisy"
    noisy.mkdir(parents=True, exist_ok=True)
    train.to_csv(noisy / "train.csv", index=False)
    (noisy / "data.yaml").write_text(f"image_root: {synth.resolve()}\n")
    heldout.to_csv(out / "heldout.csv", index=False)
    pd.DataFrame({"image": train["image"][flipped], "csv": "train.csv", "line": flipped + 2,
                  "given_label": train["label"][flipped], "suggested_label": truth[flipped],
                  "score": 1.0, "reason": "flipped"}).to_csv(out / "flipped.csv", index=False)
    return noisy, out / "heldout.csv", set(flipped.tolist())


def flip_labels(train: pd.DataFrame, classes: list[str], args) -> np.ndarray:
    """Flip ``--noise`` of the labels in place (seeded); the flipped rows, sorted.

    ``uniform``: each to another class drawn uniformly.  ``pairs``: class-conditional noise,
    each class always to the same other class (the next one in a seeded cycle of the classes),
    as when two species are mixed up systematically."""
    rng = np.random.default_rng([args.seed, 2])
    flipped = np.sort(rng.choice(len(train), int(round(args.noise * len(train))), replace=False))
    cycle = [classes[i] for i in np.random.default_rng([args.seed, 3]).permutation(len(classes))]
    partner = dict(zip(cycle, cycle[1:] + cycle[:1]))
    for row in flipped:
        given = train.at[row, "label"]
        others = [c for c in classes if c != given]
        train.at[row, "label"] = partner[given] if args.noise_kind == "pairs" else \
            others[rng.integers(len(others))]
    return flipped


def train_args(args, data: Path) -> list[str]:
    return ["train", "--data", str(data), "--model", args.model, "--epochs", str(args.epochs),
            "--img-size", str(args.img_size), "--device", args.device, "--seed", str(args.seed),
            "--no-progress", "--no-tensorboard", "--overwrite", *args.train_flags]


def finder(method: str) -> str:
    return f"cleanlab {method}" if method in CLEANLAB_METHODS else method.replace("_", " ")


def detection(kfolds: list[Path], flipped: set[int]) -> dict[str, dict]:
    """Precision/recall/F1 of plain disagreement and of each rule, on the mean out-of-fold
    probabilities of the k-fold runs."""
    oof = load_out_of_fold(kfolds)
    assert oof.frame["image"].tolist() == pd.read_csv(kfolds[0].parent / "noisy" / "train.csv",
                                                      dtype=str)["image"].tolist()
    return scored(oof, flipped)


def scored(oof, flipped: set[int], methods=METHODS) -> dict[str, dict]:
    rows = len(oof.labels)      # the noisy folder has no other rows: oof row == train.csv row
    scores = {"plain disagreement": flipped_scores(plain_disagreement(oof), flipped, rows)}
    for method in methods:
        found, _, _ = label_issues(oof, method)
        scores[finder(method)] = flipped_scores(found, flipped, rows)
    scores["out-of-fold accuracy"] = {"acc": float((oof.probs.argmax(1) == oof.labels).mean())}
    return scores


def variants(args, kfold: Path, flipped: set[int]) -> dict[str, dict]:
    """The rules on other out-of-fold probabilities of one k-fold run: each fold's held-out
    rows predicted through the flips TTA (4 views averaged), and the plain ones
    temperature-scaled (one temperature fitted to the given labels by log loss)."""
    from fastleaf.predict.ensemble import PredictSettings, ensemble_probs, load_members

    oof = load_out_of_fold([kfold])
    index = {image: i for i, image in enumerate(oof.frame["image"])}
    flips = np.full_like(oof.probs, np.nan)
    settings = PredictSettings(tta="flips", batch_size=None, amp=None, amp_dtype=None,
                               channels_last=None, device=args.device)
    for checkpoint in sorted(kfold.glob("fold*/best.pt")):
        member = load_members([checkpoint])[0]
        val = member.run.table().val
        out = ensemble_probs([member], val, settings)["flips"]
        flips[[index[image] for image in val.images]] = out.probs.numpy()
    assert not np.isnan(flips).any()
    scaled, temperature = temperature_scaled(oof.probs, oof.labels)
    methods = (DEFAULT_METHOD, "low_self_confidence", "prune_by_noise_rate")
    return {"as trained": scored(oof, flipped, methods),
            "tta flips": scored(replace(oof, probs=flips), flipped, methods),
            f"temperature {temperature:.2f}": scored(replace(oof, probs=scaled), flipped,
                                                     methods)}


def temperature_scaled(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, float]:
    from scipy.optimize import minimize_scalar

    logits = np.log(np.clip(probs.astype(np.float64), 1e-12, 1.0))

    def scaled(t: float) -> np.ndarray:
        z = logits / t
        z = np.exp(z - z.max(1, keepdims=True))
        return z / z.sum(1, keepdims=True)

    def log_loss(t: float) -> float:
        return float(-np.log(scaled(t)[np.arange(len(labels)), labels] + 1e-12).mean())

    t = minimize_scalar(log_loss, bounds=(0.05, 20.0), method="bounded").x
    return scaled(t).astype(np.float32), float(t)


def clean_accuracy(args, out: Path, noisy: Path, heldout: Path, audit_csv: Path) -> dict:
    """Held-out accuracy (true labels) of final fits on the noisy rows: plain, with the
    audit's rows left out, with its labels taken, and both with the flipped rows themselves;
    one list per variant, a fit per ``--fit-seeds`` seed (one fit's accuracy on a few hundred
    images moves by a few points with the seed)."""
    flips = out / "flipped.csv"
    found = {}
    for name, extra in (("plain", []), ("--exclude", ["--exclude", str(audit_csv)]),
                        ("--relabel", ["--relabel", str(audit_csv)]),
                        ("--exclude flipped.csv", ["--exclude", str(flips)]),
                        ("--relabel flipped.csv", ["--relabel", str(flips)])):
        found[name] = []
        for seed in range(args.seed, args.seed + args.fit_seeds):
            run = out / f"fit-{name.strip('-').replace(' ', '-').replace('.csv', '')}-{seed}"
            assert fastleaf([*train_args(args, noisy), "--val-fraction", "0", "--seed",
                             str(seed), "--out", str(run), *extra]) == 0
            result = evaluate_checkpoints([run], tta="none", data_dir=out / "synth",
                                          csv=heldout)
            found[name].append(result.metrics["none"]["acc"])
    return found


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="work folder (data, runs, audit)")
    p.add_argument("--classes", type=int, default=30)
    p.add_argument("--train-per-class", type=int, default=24)
    p.add_argument("--heldout-per-class", type=int, default=8)
    p.add_argument("--img-size", type=int, default=128)
    p.add_argument("--noise", type=float, default=0.1, help="share of labels flipped (0.1)")
    p.add_argument("--noise-kind", choices=("uniform", "pairs"), default="uniform",
                   help="flip to a uniformly drawn class, or each class to one fixed other "
                        "class (uniform)")
    p.add_argument("--model", default="cnn")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--folds", type=int, default=4)
    p.add_argument("--repeats", type=int, default=1,
                   help="k-fold runs with seeds seed, seed+1, ...; the audit averages their "
                        "out-of-fold probabilities (1)")
    p.add_argument("--fit-seeds", type=int, default=1,
                   help="final fits per variant (plain, --exclude, --relabel), seeds seed, "
                        "seed+1, ...; their held-out accuracies are averaged; 0: none (1)")
    p.add_argument("--reuse-folds", action="store_true",
                   help="keep k-fold runs (kfold<r>/oof.csv) already in --out")
    p.add_argument("--variants", action="store_true",
                   help="also score the first k-fold run's probabilities with the flips TTA "
                        "and temperature-scaled")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--method", choices=METHODS, default=DEFAULT_METHOD,
                   help="the audit's rule for the audit.csv that --exclude/--relabel use")
    p.add_argument("--train-flags", nargs=argparse.REMAINDER, default=[],
                   help="further fastleaf train flags (last on the line)")
    p.add_argument("--json", help="write the figures here too")
    return p


def main(argv=None) -> dict:
    args = parser().parse_args(argv)
    out = Path(args.out)
    noisy, heldout, flipped = noisy_set(out, args)
    kfolds = [out / f"kfold{r}" for r in range(args.repeats)]
    for r, kfold in enumerate(kfolds):     # another seed: other folds and initial weights
        if not (args.reuse_folds and (kfold / "oof.csv").is_file()):
            assert fastleaf([*train_args(args, noisy), "--folds", str(args.folds), "--seed",
                             str(args.seed + r), "--out", str(kfold)]) == 0
    figures = {"detection": detection(kfolds, flipped)}
    if len(kfolds) > 1:
        figures["detection_per_seed"] = [detection([k], flipped) for k in kfolds]
    if args.variants:
        figures["variants"] = variants(args, kfolds[0], flipped)
    assert fastleaf(["audit", "--data", str(noisy), *map(str, kfolds), "--out",
                     str(out / "audit"), "--method", args.method]) == 0
    runs = clean_accuracy(args, out, noisy, heldout, out / "audit" / "audit.csv") \
        if args.fit_seeds else {}
    figures["heldout_acc"] = {name: float(np.mean(accs)) for name, accs in runs.items()}
    figures["heldout_acc_per_seed"] = runs
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
            mark = "  <- audit.csv" if name == finder(args.method) else ""
            print(f"{name:<32} {s['flagged']:>7} {s['precision']:>9.3f} {s['recall']:>7.3f} "
                  f"{s['f1']:>6.3f}{mark}")
    for r, single in enumerate(figures.get("detection_per_seed", [])):
        print(f"k-fold run {r} alone (out-of-fold accuracy "
              f"{single['out-of-fold accuracy']['acc']:.3f}): " + ", ".join(
                  f"{name} F1 {single[name]['f1']:.3f}" for name in
                  ("plain disagreement", finder(args.method))))
    for name, v in figures.get("variants", {}).items():
        print(f"k-fold run 0, {name} (out-of-fold accuracy "
              f"{v['out-of-fold accuracy']['acc']:.3f}): " +
              ", ".join(f"{k} F1 {s['f1']:.3f}" for k, s in v.items() if "f1" in s))
    if figures["heldout_acc"]:
        print(f"held-out accuracy (true labels) of final fits on the noisy rows, mean of "
              f"{args.fit_seeds} seed(s): " +
              ", ".join(f"{k} {v:.3f}" for k, v in figures["heldout_acc"].items()))


if __name__ == "__main__":
    main()
