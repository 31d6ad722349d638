"""``--tracker mlflow``: a real MLflow store in a temporary folder, read back with MlflowClient."""
from __future__ import annotations

import pytest

from fastleaf.cli import main
from fastleaf.config import resolve_config
from fastleaf.train.trainer import fit

mlflow = pytest.importorskip("mlflow", reason="the [mlflow] extra is not installed")
pytest.importorskip("sqlalchemy", reason="the [mlflow] extra is not installed")

COMMON = dict(model="cnn", img_size=112, batch_size=16, workers=0, device="cpu", amp=False,
              progress=False, tensorboard=False, check_data=False)


@pytest.mark.slow
def test_a_run_is_logged_to_mlflow_and_a_resume_continues_it(tiny_data, tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    run_dir = tmp_path / "run"
    cfg = resolve_config(data=str(tiny_data), epochs=1, out=str(run_dir), tracker="mlflow",
                         tracking_uri=uri, experiment="leaves", **COMMON)
    fit(cfg)
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("leaves")
    (logged,) = client.search_runs([experiment.experiment_id])
    assert logged.info.run_id == (run_dir / "mlflow_run_id").read_text().strip()
    assert logged.info.status == "FINISHED" and logged.info.run_name == "run"
    assert logged.data.params["model"] == "cnn" and logged.data.params["epochs"] == "1"
    assert {"acc", "f1_macro", "kappa", "val_loss", "train_loss"} <= set(logged.data.metrics)
    artifacts = {a.path for a in client.list_artifacts(logged.info.run_id)}
    assert {"best.pt", "metrics.csv", "config.yaml"} <= artifacts
    # --resume to 2 epochs: the same MLflow run gets epoch 2
    from fastleaf.train.resume import resume_config

    fit(resume_config(run_dir, epochs=2))
    (again,) = client.search_runs([experiment.experiment_id])
    assert again.info.run_id == logged.info.run_id
    history = client.get_metric_history(again.info.run_id, "acc")
    assert sorted(m.step for m in history) == [1, 2]


def test_without_mlflow_the_tracker_is_a_one_line_error(tiny_data, tmp_path, monkeypatch,
                                                        capsys):
    import sys

    monkeypatch.setitem(sys.modules, "mlflow", None)
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)
    code = main(["train", "--data", str(tiny_data), "--model", "cnn", "--img-size", "112",
                 "--epochs", "1", "-b", "16", "-j", "0", "--device", "cpu", "--no-amp",
                 "--no-progress", "--no-tensorboard", "--no-check-data", "--tracker", "mlflow",
                 "--out", str(tmp_path / "run")])
    out = capsys.readouterr().out
    assert code == 2 and 'pip install "fastleaf[mlflow]"' in out
    assert "Traceback" not in out
