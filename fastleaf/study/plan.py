"""A study folder: its options (``study.yaml``), one run folder per model, and their state.

    R/study.yaml     the options the study was started with, and the plan they gave
    R/data/          --quick: the stratified subset (CSVs + a pointer to the images)
    R/cnn/ R/vgg16/ ...  ordinary run folders (``fastleaf train --out R/<model>``)

Rerunning the same study skips finished models and resumes an interrupted one; different
options are refused, naming the first that differs (a study compares like with like).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import yaml

from ..config import TrainConfig, resolve_config
from ..errors import UsageError
from ..utils.atomic import write_text_atomic
from ..utils.csv_rows import read_rows

MODELS = ("cnn", "vgg16", "resnet18", "deit_tiny")      # the paper's four recipes (configs/)
MANIFEST = "study.yaml"
SUBSET = "data"
MIN_PER_CLASS = 3        # the fewest images per class that leave one for validation at 0.2


@dataclass(frozen=True)
class StudyOptions:
    """What a study is: every field but ``HOW`` must match when the study is run again."""

    data: str
    out: str = "runs/paper"
    models: tuple[str, ...] = MODELS
    epochs: int | None = None        # None: the recipes' (20), or QUICK_EPOCHS with --quick
    batch_size: int | None = None    # None: the recipes' (50)
    img_size: int | None = None      # None: the recipes' (224)
    seed: int = 0
    quick: bool = False
    budget_min: float = 20.0         # --quick: the whole study must fit this many minutes
    weights: tuple[tuple[str, str], ...] = ()    # (model, weights file): e.g. DeiT's ImageNet
    # how it runs, free to change between attempts
    device: str = "auto"
    workers: int | None = None
    progress: bool = True

    HOW = ("out", "device", "workers", "progress")

    def what(self) -> dict:
        """The options that define the study, as saved in ``study.yaml``."""
        values = asdict(self)
        values["models"] = list(self.models)
        values["data"] = str(Path(self.data).resolve())
        values["weights"] = {m: str(Path(f).resolve()) for m, f in self.weights}
        if not self.quick:
            values.pop("budget_min")          # only --quick plans to a budget
        return {k: v for k, v in values.items() if k not in self.HOW}


@dataclass
class Plan:
    """What the study trains: a subset (``per_class`` images of each class) and epochs."""

    epochs: int
    per_class: int | None = None     # None: every image
    train_data: str = ""             # the folder the runs read (the subset under --quick)
    estimate_s: dict = field(default_factory=dict)    # model -> seconds, as printed
    actual_s: dict = field(default_factory=dict)      # model -> seconds, as trained

    @classmethod
    def from_dict(cls, values: dict) -> "Plan":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def check_options(options: StudyOptions) -> None:
    unknown = [m for m in options.models if m not in MODELS]
    if unknown or not options.models:
        raise UsageError(f"--models {','.join(options.models) or '(none)'}: choose among "
                         f"{','.join(MODELS)}")
    if len(set(options.models)) != len(options.models):
        raise UsageError(f"--models names a model twice: {','.join(options.models)}")
    for model, file in options.weights:
        if model not in options.models:
            raise UsageError(f"--weights {model}={file}: {model} is not in --models")
        if not Path(file).is_file():
            raise UsageError(f"--weights {model}={file}: no such file")
    if options.budget_min <= 0:
        raise UsageError(f"--budget must be positive, got {options.budget_min}")
    if not (Path(options.data) / "train.csv").is_file():
        raise UsageError(f"--data {options.data}: no train.csv there (a Kaggle-layout folder)")


def read_manifest(out: Path) -> dict | None:
    path = Path(out) / MANIFEST
    if not path.is_file():
        return None
    values = yaml.safe_load(path.read_text()) or {}
    if not isinstance(values, dict) or "options" not in values or "plan" not in values:
        raise UsageError(f"{path}: not a study manifest (options and plan); use another --out")
    return values


def write_manifest(out: Path, options: StudyOptions, plan: Plan) -> None:
    text = yaml.safe_dump({"options": options.what(), "plan": asdict(plan)}, sort_keys=False)
    write_text_atomic(Path(out) / MANIFEST, text)


def check_same(saved: dict, options: StudyOptions, path: Path) -> None:
    """Refuse a rerun whose options differ from the study's, naming the first difference."""
    for key, value in options.what().items():
        if key in saved and saved[key] != value:
            flag = {"budget_min": "budget"}.get(key, key).replace("_", "-")
            raise UsageError(f"{path}: --{flag} {shown(value)} differs from the study's "
                             f"{shown(saved[key])}; rerun with the study's options or choose "
                             f"another --out")


def shown(value) -> str:
    return ",".join(value) if isinstance(value, list) else str(value)


def model_config(options: StudyOptions, plan: Plan, model: str) -> TrainConfig:
    """The paper's recipe for ``model``, the study's overrides on top, run in ``R/<model>``."""
    return resolve_config(model, data=plan.train_data, epochs=plan.epochs,
                          batch_size=options.batch_size, img_size=options.img_size,
                          seed=options.seed, weights=dict(options.weights).get(model),
                          device=options.device, workers=options.workers,
                          progress=options.progress, out=str(Path(options.out) / model))


def run_state(run_dir: Path, epochs: int, scores_csv: Path) -> str:
    """``done``: every epoch recorded, best.pt written and the run's final score row in the
    study's scores.csv (written after the last checkpoint); ``partial``: resumable from
    last.pt; ``new``: nothing to continue."""
    rows = read_rows(run_dir / "metrics.csv")
    finished = {r.get("run") for r in read_rows(scores_csv)}
    if (len(rows) >= epochs and (run_dir / "best.pt").is_file()
            and run_dir.name in finished):
        return "done"
    if (run_dir / "last.pt").is_file() and (run_dir / "config.yaml").is_file():
        return "partial"
    return "new"


def subset_rows(labels: list[str], per_class: int | None, seed: int) -> np.ndarray:
    """Indices of at most ``per_class`` rows of each class (seeded), in file order."""
    labels = np.asarray(labels)
    if per_class is None:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    keep = [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in np.unique(labels)]
    return np.sort(np.concatenate(keep))


def write_subset(data: str, out_dir: Path, per_class: int, seed: int) -> Path:
    """A data folder of ``per_class`` images of every class, reading the original images."""
    from ..data.pseudo import write_pseudo_folder
    from ..data.table import read_csv, resolve_layout

    frame = read_csv(resolve_layout(data).train_csv, ("image", "label"))
    keep = subset_rows(frame["label"].tolist(), per_class, seed)
    return write_pseudo_folder(data, out_dir, frame.iloc[keep].reset_index(drop=True))
