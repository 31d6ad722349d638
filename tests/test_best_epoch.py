"""One definition of a run's best epoch: the trainer's best.pt and the report agree."""
import math

import pytest

from fastleaf.config import TrainConfig, resolve_config, save_config
from fastleaf.train.checkpoint import load_checkpoint
from fastleaf.train.records import EPOCH_COLUMNS, TEXT_COLUMNS, best_row
from fastleaf.utils.csv_rows import read_rows, write_rows
from fastleaf.viz.runs import comparison_rows, read_run

# epoch 2 has the best accuracy, epoch 3 the best sum
ROWS = [
    {"epoch": 1, "acc": 0.50, "f1_macro": 0.40, "kappa": 0.40, "sum": 1.30},
    {"epoch": 2, "acc": 0.70, "f1_macro": 0.40, "kappa": 0.40, "sum": 1.50},
    {"epoch": 3, "acc": 0.60, "f1_macro": 0.60, "kappa": 0.60, "sum": 1.80},
]


def fake_run(folder, metric):
    folder.mkdir()
    rows = [{**r, "train_loss": 1.0, "val_loss": 1.0, "img_per_s": 1.0, "val_img_per_s": 1.0,
             "lr": 1e-3, "time_s": 1.0} for r in ROWS]
    write_rows(folder / "metrics.csv", EPOCH_COLUMNS, rows)
    save_config(TrainConfig(model="cnn", eval_metric=metric, epochs=3), folder / "config.yaml")
    return folder


def test_report_describes_the_epoch_of_the_runs_eval_metric(tmp_path):
    by_acc = read_run(fake_run(tmp_path / "acc", "acc"))
    by_sum = read_run(fake_run(tmp_path / "sum", "sum"))
    assert by_acc.best["epoch"] == 2
    assert by_sum.best["epoch"] == 3
    assert [r["best_epoch"] for r in comparison_rows([by_acc, by_sum])] == [2, 3]


def test_best_row_keeps_the_earliest_of_equal_scores_and_the_last_without_validation():
    tied = [{"epoch": 1, "acc": 0.5}, {"epoch": 2, "acc": 0.5}, {"epoch": 3, "acc": 0.4}]
    assert best_row(tied, "acc")["epoch"] == 1
    blind = [{"epoch": e, "acc": math.nan} for e in (1, 2, 3)]
    assert best_row(blind, "acc")["epoch"] == 3
    with pytest.raises(ValueError):
        best_row([], "acc")


@pytest.mark.slow
def test_trainer_keeps_the_epoch_best_row_names(tiny_data, tmp_path):
    out = tmp_path / "run"
    from fastleaf.train.trainer import fit

    fit(resolve_config(data=str(tiny_data), model="cnn", img_size=112, batch_size=16, epochs=3,
                       lr=3e-3, eval_metric="acc", out=str(out), workers=0, progress=False,
                       tensorboard=False, amp=False, channels_last=False, device="cpu"))
    rows = [{k: float(v) for k, v in r.items() if k not in TEXT_COLUMNS}
            for r in read_rows(out / "metrics.csv")]
    assert load_checkpoint(out / "best.pt")["epoch"] == int(best_row(rows, "acc")["epoch"])
    assert read_run(out).best["epoch"] == int(best_row(rows, "acc")["epoch"])


def test_report_table_names_the_best_acc_epoch(tmp_path):
    from fastleaf.report.build import build_report

    run = fake_run(tmp_path / "acc", "acc")
    written = build_report([run], tmp_path / "report", confusion=False)
    rows = read_rows(written["comparison_csv"])
    assert rows[0]["best_epoch"] == "2" and float(rows[0]["acc"]) == 0.70
