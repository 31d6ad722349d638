"""``build_report`` on two tiny runs: curves, the comparison table, mistakes, HTML and Markdown."""
import csv
import re
import shutil

import numpy as np
import pytest
import yaml
from PIL import Image

from fastleaf.cli import main
from fastleaf.config import resolve_config
from fastleaf.data.table import DataError
from fastleaf.train.metrics import classification_metrics
from fastleaf.train.trainer import fit
from fastleaf.viz.confusion import confused_pairs, validation_predictions, worst_classes
from fastleaf.report.build import build_report
from fastleaf.viz.runs import comparison_rows, read_run, read_runs

# the module trains a run in a fixture before its first test
pytestmark = pytest.mark.slow

SCORES = ("acc", "f1_macro", "kappa", "sum", "img_per_s")


@pytest.fixture(scope="module")
def runs(tiny_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    common = dict(data=str(tiny_data), model="cnn", img_size=112, batch_size=16, workers=0,
                  progress=False, tensorboard=False, augment="light", amp=False,
                  channels_last=False, device="cpu")
    fit(resolve_config(out=str(root / "a"), epochs=2, lr=1e-3, **common))
    fit(resolve_config(out=str(root / "b"), epochs=1, seed=1, **common))
    return [root / "a", root / "b"]


@pytest.fixture(scope="module")
def report(runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    return out, build_report(runs, out, worst=4, top_pairs=5)


def best_csv_row(run_dir):
    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    return max(rows, key=lambda r: float(r["sum"]))


def png_size(path):
    with Image.open(path) as img:
        img.load()
        return img.size


def test_table_numbers_are_the_best_metrics_rows(runs, report):
    rows = comparison_rows(read_runs(runs))
    written = list(csv.DictReader(open(report[1]["comparison_csv"])))
    assert [r["run"] for r in written] == ["a", "b"]
    for run_dir, row, saved in zip(runs, rows, written):
        best = best_csv_row(run_dir)
        assert row["best_epoch"] == int(best["epoch"]) == int(saved["best_epoch"])
        for key in SCORES:
            assert row[key] == float(best[key]) == float(saved[key])
    assert rows[0]["epochs"] == 2 and rows[1]["epochs"] == 1
    assert rows[0]["model"] == "cnn" and rows[0]["batch_size"] == 16 and rows[0]["lr"] == 1e-3
    assert rows[0]["setup"] == "fp32"


def test_report_files_and_sizes(report):
    out, written = report
    for key in ("val_loss", "acc", "kappa", "train_loss"):
        assert png_size(written[key]) == (800, 500)
    assert png_size(written["class_distribution"]) == (1000, 800)
    pairs = [k for k in written if k.startswith("confused_pairs_")]
    worst = [k for k in written if k.startswith("worst_classes_")]
    assert len(pairs) == len(worst) == 1                     # the best run only, by default
    assert png_size(written[pairs[0]]) == png_size(written[worst[0]]) == (900, 600)
    assert all(p.parent == out and p.stat().st_size > 0 for p in written.values())


def test_html_is_self_contained_and_markdown_links_images(report):
    out, written = report
    page = written["report_html"].read_text()
    sources = re.findall(r"src=['\"]([^'\"]*)", page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "http" not in page and "<link" not in page
    # the training curves sit together in one grid, each embedded once
    curves = page.split("<h2>Training curves</h2>")[1].split("<h2>")[0]
    grid = re.search(r"<div class='grid'>(.*?)</div>", curves, re.S)
    from fastleaf.report.build import CURVES

    assert grid and re.findall(r"alt='([^']+)'", grid.group(1)) == [
        written[key].stem for key, _ in CURVES]
    # every figure of the folder is in the page, byte for byte: the page shows the same figures
    import base64

    embedded = dict(re.findall(r"<img alt='([^']+)' src='data:image/png;base64,([^']+)'>", page))
    assert len(embedded) == len(sources)
    for stem, data in embedded.items():
        assert base64.b64decode(data) == (out / f"{stem}.png").read_bytes()
    md = written["report_md"].read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(links) == len(sources)
    assert all((out / link).is_file() for link in links)
    assert "| run | model | epochs |" in md


def test_markdown_table_shows_the_best_scores(runs, report):
    md = report[1]["report_md"].read_text()
    for run_dir in runs:
        best = best_csv_row(run_dir)
        line = next(l for l in md.splitlines() if l.startswith(f"| {run_dir.name} |"))
        assert f"{float(best['sum']):.4f}" in line and f"{float(best['acc']):.4f}" in line


def test_recomputed_predictions_match_the_run(runs):
    run = read_run(runs[0])
    y_true, y_pred, classes = validation_predictions(run)
    assert len(classes) == 6 and len(y_true) == len(y_pred) > 0
    metrics = classification_metrics(y_true, y_pred)
    assert metrics["acc"] == pytest.approx(run.best["acc"], abs=1e-5)
    assert metrics["kappa"] == pytest.approx(run.best["kappa"], abs=1e-5)


def test_confused_pairs_and_worst_classes():
    cm = np.array([[5, 0, 0], [3, 1, 0], [1, 0, 2]])
    pairs = confused_pairs(cm, ["x", "y", "z"], top=5)
    assert [(p["true"], p["pred"], p["count"]) for p in pairs] == [("y", "x", 3), ("z", "x", 1)]
    assert pairs[0]["share"] == pytest.approx(0.75)
    worst = worst_classes(cm, ["x", "y", "z"], n=2)
    assert [(w["class"], w["correct"], w["support"]) for w in worst] == [("y", 1, 4), ("z", 2, 3)]


def test_no_confusion_without_data(runs, tmp_path):
    moved = tmp_path / "moved"
    shutil.copytree(runs[1], moved)
    config = yaml.safe_load((moved / "config.yaml").read_text())
    config["data"] = str(tmp_path / "gone")
    (moved / "config.yaml").write_text(yaml.safe_dump(config))
    written = build_report([moved], tmp_path / "rep", confusion=False)
    assert "class_distribution" not in written
    assert "skipped: the data is not readable" in written["report_html"].read_text()
    with pytest.raises(DataError, match="gone"):
        build_report([moved], tmp_path / "rep2")


def test_bad_run_folders_are_named(runs, tmp_path):
    with pytest.raises(FileNotFoundError, match="metrics.csv"):
        read_run(tmp_path)
    broken = tmp_path / "broken"
    shutil.copytree(runs[1], broken)
    text = (broken / "metrics.csv").read_text().splitlines()
    cells = text[1].split(",")
    cells[3] = "oops"
    (broken / "metrics.csv").write_text("\n".join([text[0], ",".join(cells)]) + "\n")
    with pytest.raises(ValueError, match=r"metrics.csv row 2: acc='oops'"):
        read_run(broken)


def test_cli_report(runs, tmp_path, capsys):
    assert main(["report", *map(str, runs), "--out", str(tmp_path), "--no-confusion"]) == 0
    out = capsys.readouterr().out
    assert "report.html" in out and (tmp_path / "acc.png").is_file()
    assert not list(tmp_path.glob("confused_pairs_*.png"))


def test_top_losses_gallery_and_pair_thumbnails_render(runs, report):
    out, written = report
    page = written["report_html"].read_text()
    gallery = [k for k in written if k.startswith("top_losses_")]
    thumbs = [k for k in written if k.startswith("pair_thumbs_")]
    assert len(gallery) == len(thumbs) == 1                  # the best run, as the confusions
    assert png_size(written[gallery[0]])[0] > 0 and png_size(written[thumbs[0]])[0] > 0
    section = page.split("<h2>Top losses of ")[1].split("<h2>")[0]
    assert f"alt='{written[gallery[0]].stem}'" in section
    assert "gradcam overlay" in section                      # the CNN's CAMs are drawn
    losses = [float(x) for x in re.findall(r"<td>([0-9.]+)</td></tr>", section)]
    assert losses and losses == sorted(losses, reverse=True)
    assert f"alt='{written[thumbs[0]].stem}'" in page.split("with thumbnails</h2>")[1]
