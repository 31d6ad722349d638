"""MLflow tracking for a run (``--tracker mlflow``), beside metrics.csv and TensorBoard.

    fastleaf train --data DIR --tracker mlflow                          # runs/mlflow.db, no server
    fastleaf train --data DIR --tracker mlflow --tracking-uri http://host:5000 --experiment leaves
    mlflow ui --backend-store-uri sqlite:///runs/mlflow.db              # to browse it

The resolved configuration goes in as parameters, every epoch's row as metrics (step = epoch),
and at the end best.pt, metrics.csv and config.yaml as artifacts.  The MLflow run's id is kept
in the run folder (``mlflow_run_id``), so ``--resume`` continues the same MLflow run.  Only the
rank that writes the run folder talks to MLflow.  MLflow is an optional extra
(``pip install "fastleaf[mlflow]"``).
"""
from __future__ import annotations

import math
import time
from pathlib import Path

from ..errors import UsageError

RUN_ID_FILE = "mlflow_run_id"
ARTIFACTS = ("best.pt", "metrics.csv", "config.yaml")
TRACKERS = ("none", "mlflow")


def require_mlflow():
    try:
        import mlflow  # noqa: F401
        from mlflow.tracking import MlflowClient
    except ImportError as err:
        raise UsageError(f"--tracker mlflow needs MLflow ({err}): pip install "
                         f"\"fastleaf[mlflow]\"") from None
    return MlflowClient


def default_uri(runs_dir: str | Path) -> str:
    """A local SQLite store beside the runs: works with no server (MLflow's own file store is
    in maintenance mode and refuses to start by default)."""
    return f"sqlite:///{(Path(runs_dir) / 'mlflow.db').resolve()}"


class MlflowTracker:
    """One MLflow run for one fastleaf run folder."""

    def __init__(self, run_dir: Path, config: dict, uri: str | None, experiment: str,
                 runs_dir: str | Path):
        client_type = require_mlflow()
        self.run_dir = Path(run_dir)
        self.uri = uri or default_uri(runs_dir)
        if self.uri.startswith("sqlite:///"):
            Path(self.uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        self.client = client_type(self.uri)
        self.run_id = self.open_run(config, experiment)

    def experiment_id(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        location = None
        if self.uri.startswith("sqlite:///"):
            # artifacts beside the database, not in whatever folder the command ran from
            location = (Path(self.uri[len("sqlite:///"):]).parent / "mlartifacts").resolve()
            location = location.as_uri()
        return self.client.create_experiment(name, artifact_location=location)

    def open_run(self, config: dict, experiment: str) -> str:
        """The run folder's MLflow run: continued after a resume, else a new one."""
        from mlflow.entities import Param

        kept = self.run_dir / RUN_ID_FILE
        if kept.is_file():
            run_id = kept.read_text().strip()
            self.client.update_run(run_id, status="RUNNING")
            return run_id
        run = self.client.create_run(self.experiment_id(experiment), run_name=self.run_dir.name)
        params = [Param(key, str(value)[:6000]) for key, value in sorted(config.items())]
        for start in range(0, len(params), 100):            # MLflow takes 100 per batch
            self.client.log_batch(run.info.run_id, params=params[start:start + 100])
        kept.write_text(run.info.run_id + "\n")
        return run.info.run_id

    def log_epoch(self, row: dict) -> None:
        from mlflow.entities import Metric

        stamp, step = int(time.time() * 1000), int(row["epoch"])
        metrics = [Metric(key, float(value), stamp, step) for key, value in row.items()
                   if key != "epoch" and is_number(value)]
        self.client.log_batch(self.run_id, metrics=metrics)

    def finish(self, status: str = "FINISHED") -> None:
        for name in ARTIFACTS:
            path = self.run_dir / name
            if path.is_file():
                self.client.log_artifact(self.run_id, str(path))
        self.client.set_terminated(self.run_id, status=status)


def is_number(value) -> bool:
    try:
        return math.isfinite(float(value)) and not isinstance(value, bool)
    except (TypeError, ValueError):
        return False


def create_tracker(cfg, run_dir: Path) -> MlflowTracker | None:
    """The run's tracker from its config (``tracker``, ``tracking_uri``, ``experiment``)."""
    if cfg.tracker == "none":
        return None
    if cfg.tracker != "mlflow":
        raise UsageError(f"unknown tracker {cfg.tracker!r}: {', '.join(TRACKERS)}")
    return MlflowTracker(run_dir, cfg.to_dict(), cfg.tracking_uri, cfg.experiment, cfg.runs_dir)
