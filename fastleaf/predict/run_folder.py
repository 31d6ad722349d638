"""The one reader of a finished run: its config, split, model (with its data config), loader.

Every command that uses a trained model (tta-predict, evaluate, predict, report, viz) opens it
here, so each rebuilds the run exactly as training left it:

    run = open_run("runs/resnet18")          # a run folder (its best.pt) or any .pt file
    run.config.batch_size, run.classes, run.data.size, run.data.mean
    model = run.build_model(device)          # its weights, in eval mode
    loader = run.eval_loader(run.val_samples(), device)   # the rows its metrics came from

The configuration comes from the checkpoint (it travels with the weights, so a copied ``.pt``
reads the same as its folder) through :meth:`TrainConfig.from_dict`: options an older run did
not record take the dataclass defaults.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import TrainConfig, load_yaml
from ..sources import CsvSource
from ..data.table import (Samples, Table, check_fingerprint, csv_row, load_table,
                          resolve_layout)
from ..errors import UsageError
from ..loaders import (LoaderOptions, auto_choices, create_auto_loader, create_loader,
                       resolve_backend)
from ..loaders.fallback import Choices
from ..models.data_config import DataConfig, data_config_of, eval_spec
from ..models.registry import place_model
from ..train.checkpoint import CheckpointError, load_checkpoint
from ..utils.device import default_workers


@dataclass
class SavedRun:
    """One trained model as a checkpoint recorded it."""

    path: Path                   # the checkpoint file read
    state: dict                  # the checkpoint itself (weights, classes, metrics)
    config: TrainConfig          # the run's options, every unrecorded one at its default
    recorded: frozenset[str]     # the option names the checkpoint did record

    @property
    def model_name(self) -> str:
        return str(self.state["model_name"])

    @property
    def classes(self) -> list[str]:
        return list(self.state["classes"])

    @property
    def data(self) -> DataConfig:
        """Input size and normalisation the model was trained with."""
        return data_config_of(self.config)

    def build_model(self, device: torch.device | str = "cpu",
                    channels_last: bool = False) -> torch.nn.Module:
        """The model the run trained, with its weights, on ``device`` in eval mode."""
        from ..models import create_model

        model = create_model(self.model_name, len(self.classes),
                             finetune_all=self.config.finetune_all)
        try:
            model.load_state_dict(self.state["model"])
        except (RuntimeError, TypeError, AttributeError) as err:
            first = " ".join(str(err).split())[:200]
            raise CheckpointError(f"{self.path}: its weights do not fit a {self.model_name} "
                                  f"with its {len(self.classes)} classes ({first}); the file is "
                                  f"damaged or was edited") from None
        return place_model(model, device, channels_last).eval()

    def split_key(self, data_dir=None) -> tuple:
        """What decides the run's validation rows; equal keys -> identical splits."""
        return split_key(self.config, self.recorded, data_dir)

    def table(self, data_dir=None) -> Table:
        """The run's data table with its own split and class list (``data_dir`` replaces the
        data folder it recorded)."""
        data = self.config.data if data_dir is None else data_dir
        check_fingerprint(self.state.get("data_fingerprint"), data, str(self.path))
        return run_table(self.config, self.recorded, self.classes, self.path.parent, data_dir)

    def val_samples(self, data_dir=None) -> Samples:
        """The validation rows the run was scored on."""
        val = self.table(data_dir).val
        if len(val) == 0:
            raise UsageError(f"{self.path}: a final fit (--val-fraction 0) has no validation "
                             f"rows; score it on a labelled --csv")
        return val

    def eval_loader(self, samples: Samples, device: torch.device, *,
                    batch_size: int | None = None, channels_last: bool | None = None,
                    loader: str = "auto", workers: int | None = None):
        """Every row of ``samples`` once, in order, prepared as the run's validation was.

        Args:
            samples: rows to load (validation, test or photos).
            device: where the batches go.
            batch_size, channels_last: ``None`` takes the run's own.
            loader: a backend name (``fastleaf.vocab.LOADERS``); auto picks per device.
            workers: loader processes; ``None`` takes the device's default.
        """
        batch_size = self.config.batch_size if batch_size is None else batch_size
        layout = self.config.channels_last if channels_last is None else channels_last
        workers = default_workers(device) if workers is None else workers
        options = LoaderOptions(batch_size=batch_size, device=device, channels_last=bool(layout),
                                workers=min(workers, max(1, -(-len(samples) // batch_size))),
                                seed=self.config.seed)
        if loader == "auto":
            # a backend that fails to start hands over to the next choice with one line
            choices = Choices([name for name, _ in auto_choices(device)])
            return create_auto_loader(samples, eval_spec(self.data), options, choices)
        backend, _ = resolve_backend(loader, device)
        return create_loader(samples, eval_spec(self.data), options, backend)


def open_run(path: str | Path, file: str = "best.pt") -> SavedRun:
    """Read a run folder (its ``file``) or a checkpoint file.

    Raises:
        CheckpointError: one line naming the missing or unreadable path.
        ConfigError: the recorded config has an unknown option or a bad value (named).
    """
    path = Path(path)
    if path.is_dir():
        path = path / file
    elif not path.exists():
        raise CheckpointError(f"run folder or checkpoint not found: {path}")
    state = load_checkpoint(path)
    # checkpoints written before the config was stored hold none: every option at its default
    values = state.get("config") or {}
    return SavedRun(path, state, TrainConfig.from_dict(values, str(path)), frozenset(values))


def read_folder_config(folder: str | Path) -> tuple[TrainConfig, frozenset[str]]:
    """A run folder's ``config.yaml``: the config and the option names it records."""
    path = Path(folder) / "config.yaml"
    values = load_yaml(path)
    return TrainConfig.from_dict(values, str(path)), frozenset(values)


def split_key(config: TrainConfig, recorded: frozenset[str], data_dir=None) -> tuple:
    """(data, val_fraction, seed, fold, folds, grouped): what decides a run's validation rows;
    ``recorded``: the option names its config holds; ``data_dir`` replaces its data folder."""
    c = config
    data = data_dir if data_dir is not None else c.data
    # a folder by its name (str or Path alike); a CSV source as itself (data/csv_source.py)
    data = data if data is None or isinstance(data, CsvSource) else str(data)
    if c.folds:
        # runs saved before near-duplicate grouping existed were split without it
        grouped = "group_near_duplicates" in recorded and c.group_near_duplicates
        return (data, None, c.seed, c.fold or 0, c.folds, bool(grouped))
    return (data, c.val_fraction, c.seed, None, None, False)


def run_table(config: TrainConfig, recorded: frozenset[str], classes: list[str] | None,
              folder: Path, data_dir=None) -> Table:
    """The data table a run trained on: its split, its class list (``None``: the data's), and
    without the rows a ``--skip-bad`` or ``--exclude`` run left out (``folder/bad_rows.csv``)
    and with the labels a ``--relabel`` run changed (``folder/relabel.csv``)."""
    from ..data.audit_rows import read_relabel

    data, _, seed, fold, folds, grouped = split_key(config, recorded, data_dir)
    dropping = config.skip_bad or config.exclude
    drop = dropped_rows(folder, resolve_layout(data).train_csv) if dropping else set()
    relabel = read_relabel(folder) if config.relabel else {}
    return load_table(data, val_fraction=config.val_fraction, seed=seed, fold=fold, folds=folds,
                      classes=classes, drop_rows=drop, group_near_duplicates=grouped,
                      relabel=relabel)


def dropped_rows(run_dir: Path, train_csv: Path) -> set[int]:
    """train.csv rows a ``--skip-bad`` or ``--exclude`` run left out (its ``bad_rows.csv``
    errors)."""
    import pandas as pd

    path = Path(run_dir) / "bad_rows.csv"
    if not path.is_file():
        return set()
    found = pd.read_csv(path, dtype=str, keep_default_na=False)
    mine = found[(found["severity"] == "error") & (found["line"] != "")
                 & (found["csv"].map(lambda c: Path(c).name) == train_csv.name)]
    return {csv_row(line) for line in mine["line"]}
