"""Recipes judged on several data sets: validation accuracy per set and each recipe's mean rank.

A recipe tuned on one set can fail on another (a short run where the weight average trailed
the raw model was one such case), so a change to the shipped ``finetune`` recipe should win
across sets, not on one.  Each recipe trains once per set with the same model and seed; the
score is the best epoch's validation accuracy (``--eval-metric acc``).

    # the real comparison (hours on a 2-core CPU; minutes on a GPU)
    PYTHONPATH=$PWD python benchmarks/recipes.py --model tf_efficientnet_lite0 --pretrained \\
        --sets leafsnap,leafsnap-few,leafsnap-grey,synth-40
    # a toy run that only proves the script works (about 2 CPU minutes)
    PYTHONPATH=$PWD python benchmarks/recipes.py --toy

Sets (built under ``--work``; the leafsnap ones need ../shared/data/leafsnap-fg176):

* ``leafsnap``: leafsnap-fg176 itself (176 species, 6-19 photos each);
* ``leafsnap-few``: ``--few`` photos of each of its ``--species`` largest species;
* ``leafsnap-grey``: the same rows in greyscale, each photo resized to a random side of
  96-320 px (images unlike ImageNet's colour photos);
* ``synth-N``: ``fastleaf synth`` with N classes (drawn leaves, not photos).

The table goes to ``benchmarks/results/recipes-<date>[-toy].md`` and ``.json``.
"""
from __future__ import annotations

import argparse
import csv
import json
import platform
import random
import shutil
import time
from collections import defaultdict
from datetime import date
from pathlib import Path

import yaml

from fastleaf.config import resolve_config
from fastleaf.data.synth import make_synthetic
from fastleaf.train.trainer import fit

LEAFSNAP = Path(__file__).resolve().parents[2] / "shared" / "data" / "leafsnap-fg176"
RESULTS = Path(__file__).resolve().parent / "results"

# name -> (built-in recipe or None, options on top of it)
RECIPES = {
    "finetune": ("finetune", {}),
    "finetune-no-ema": ("finetune", {"model_ema": False}),
    "finetune-no-freeze": ("finetune", {"freeze_epochs": 0}),
    "finetune-no-augment": ("finetune", {"augment": "none"}),
    "finetune-flat-lr": ("finetune", {"backbone_lr": 1.0}),
    "finetune-no-regularise": ("finetune", {"drop_path": 0.0, "label_smoothing": 0.0}),
    # the learning-rate range test picks --lr on each set instead of the recipe's fixed rate
    "finetune-lr-auto": ("finetune", {"lr": "auto"}),
    # one optimizer, one rate for every layer, cosine: nothing else
    "adamw-cosine": (None, {"optimizer": "adamw", "lr": 1e-3, "scheduler": "cosine",
                            "warmup_epochs": 1, "augment": "none", "drop_path": 0.0}),
}


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_set(out: Path, rows: list[dict], image_of) -> Path:
    """A Kaggle-layout folder: ``train.csv`` of ``rows`` and each row's image from
    ``image_of(row, target)``; ``test.csv`` lists the same images (the runs only validate)."""
    (out / "images").mkdir(parents=True, exist_ok=True)
    for row in rows:
        image_of(row, out / row["image"])
    with open(out / "train.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["image", "label"])
        writer.writeheader()
        writer.writerows({"image": r["image"], "label": r["label"]} for r in rows)
    (out / "test.csv").write_text("image\n" + "".join(f"{r['image']}\n" for r in rows))
    return out


def leafsnap_rows(species: int, few: int, seed: int = 0) -> list[dict]:
    """``few`` rows of each of the ``species`` species with the most photos."""
    by_label = defaultdict(list)
    for row in read_csv(LEAFSNAP / "train.csv"):
        by_label[row["label"]].append(row)
    largest = sorted(by_label, key=lambda k: (-len(by_label[k]), k))[:species]
    pick = random.Random(seed)
    return [r for label in largest for r in pick.sample(by_label[label], min(few,
                                                                           len(by_label[label])))]


def copy_image(row: dict, target: Path) -> None:
    # a copy: the table refuses image paths that leave the data folder through a link
    if not target.exists():
        shutil.copyfile(LEAFSNAP / row["image"], target)


def grey_image(row: dict, target: Path) -> None:
    from PIL import Image

    if target.exists():
        return
    side = random.Random(row["image"]).randint(96, 320)
    with Image.open(LEAFSNAP / row["image"]) as img:
        img.convert("L").resize((side, side)).convert("RGB").save(target, quality=90)


def build_set(name: str, work: Path, args) -> Path:
    out = work / name
    if (out / "train.csv").is_file():
        return out
    if name == "leafsnap":
        return LEAFSNAP
    if name.startswith("synth-"):
        return make_synthetic(out, num_classes=int(name.split("-")[1]),
                              train_per_class=args.synth_per_class, test_per_class=1,
                              size=args.synth_size, seed=0)
    rows = leafsnap_rows(args.species, args.few)
    if name == "leafsnap-few":
        return write_set(out, rows, copy_image)
    if name == "leafsnap-grey":
        return write_set(out, rows, grey_image)
    raise SystemExit(f"unknown set {name!r}")


def run_recipe(recipe: str, data: Path, out: Path, args) -> dict:
    """``recipe`` trained on ``data``: the best epoch's validation accuracy, that epoch,
    whether best.pt kept the weight average, the rate it trained with and its minutes."""
    source, options = RECIPES[recipe]
    common = dict(data=str(data), model=args.model, pretrained=args.pretrained,
                  epochs=args.epochs, img_size=args.img_size, batch_size=args.batch_size,
                  eval_metric="acc", seed=0, out=str(out), overwrite=True, progress=False,
                  tensorboard=False, check_data=False, device=args.device)
    start = time.perf_counter()
    result = fit(resolve_config(source, **{**common, **options}))
    lr = yaml.safe_load((result.run_dir / "config.yaml").read_text())["lr"]
    return {"acc": float(result.best["acc"]), "epoch": result.best_epoch,
            "ema": bool(result.best.get("ema", False)), "lr": float(lr),
            "minutes": round((time.perf_counter() - start) / 60, 2)}


def mean_ranks(scores: dict[str, dict[str, float]]) -> dict[str, float]:
    """Each recipe's rank on each set (1 = best; tied scores share their mean rank),
    averaged over the sets.  ``scores[set][recipe]`` is an accuracy."""
    ranks = defaultdict(list)
    for by_recipe in scores.values():
        ordered = sorted(by_recipe.values(), reverse=True)
        for recipe, acc in by_recipe.items():
            first = ordered.index(acc) + 1
            ranks[recipe].append(first + (ordered.count(acc) - 1) / 2)
    return {recipe: sum(r) / len(r) for recipe, r in ranks.items()}


def table(scores: dict[str, dict[str, float]], recipes: list[str]) -> str:
    sets = list(scores)
    ranks = mean_ranks(scores)
    lines = ["| recipe | " + " | ".join(sets) + " | mean rank |",
             "|---|" + "---|" * (len(sets) + 1)]
    for recipe in sorted(recipes, key=lambda r: ranks[r]):
        cells = [f"{scores[s][recipe]:.3f}" for s in sets]
        lines.append(f"| {recipe} | " + " | ".join(cells) + f" | {ranks[recipe]:.2f} |")
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sets", default="leafsnap,leafsnap-few,leafsnap-grey,synth-40")
    p.add_argument("--recipes", default=",".join(RECIPES))
    p.add_argument("--model", default="tf_efficientnet_lite0")
    p.add_argument("--pretrained", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--img-size", type=int)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="auto")
    p.add_argument("--species", type=int, default=60, help="leafsnap-few/-grey: species kept")
    p.add_argument("--few", type=int, default=8, help="leafsnap-few/-grey: photos a species")
    p.add_argument("--synth-per-class", type=int, default=12)
    p.add_argument("--synth-size", type=int, default=224)
    p.add_argument("--work", type=Path, default=Path("runs/recipes"))
    p.add_argument("--toy", action="store_true",
                   help="a minutes-long check that the script runs: the paper CNN from scratch, "
                        "2 epochs, 112 px, small sets")
    args = p.parse_args(argv)
    if args.toy:
        args.model, args.pretrained, args.epochs, args.img_size = "cnn", False, 2, 112
        args.batch_size, args.species, args.few = 16, 8, 6
        args.synth_per_class, args.synth_size = 8, 112
        args.sets = ",".join(s for s in ("leafsnap-few", "leafsnap-grey", "synth-6")
                             if LEAFSNAP.is_dir() or s.startswith("synth"))
        args.work = args.work.with_name(args.work.name + "-toy")
    return args


def run_all(args, recipes: list[str]) -> dict[str, dict[str, dict]]:
    """Every recipe on every set; finished pairs are kept in ``--work``/done.json, so an
    interrupted table resumes where it stopped."""
    done_file = args.work / "done.json"
    done = json.loads(done_file.read_text()) if done_file.is_file() else {}
    for name in args.sets.split(","):
        data = build_set(name, args.work / "data", args)
        for recipe in recipes:
            if recipe in done.get(name, {}):
                continue
            row = run_recipe(recipe, data, args.work / "runs" / name / recipe, args)
            done.setdefault(name, {})[recipe] = row
            done_file.write_text(json.dumps(done, indent=1) + "\n")
            print(f"{name} {recipe}: {row}", flush=True)
    return {name: {r: done[name][r] for r in recipes} for name in args.sets.split(",")}


def main(argv=None) -> None:
    args = parse_args(argv)
    recipes = args.recipes.split(",")
    details = run_all(args, recipes)
    scores = {name: {r: row["acc"] for r, row in rows.items()} for name, rows in details.items()}
    text = table(scores, recipes)
    print(text)
    stem = f"recipes-{date.today().isoformat()}{'-toy' if args.toy else ''}"
    RESULTS.mkdir(exist_ok=True)
    setup = (f"{args.model}{' pretrained' if args.pretrained else ''}, {args.epochs} epochs, "
             f"{args.img_size or 'the model’s'} px, batch {args.batch_size}, seed 0, "
             f"{platform.machine()}; sets: {args.sets}")
    toy = " (toy scale: proves the script, not the recipes)" if args.toy else ""
    (RESULTS / f"{stem}.md").write_text(
        f"# Recipes across data sets{toy}\n\n"
        f"{setup}. Validation accuracy of the best epoch; rank 1 is the best on a set.\n\n"
        f"{text}\n")
    (RESULTS / f"{stem}.json").write_text(json.dumps(
        {"setup": setup, "scores": scores, "runs": details,
         "mean_rank": mean_ranks(scores)}, indent=1) + "\n")


if __name__ == "__main__":
    main()
