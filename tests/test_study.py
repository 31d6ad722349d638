"""``fastleaf reproduce``: the budget arithmetic, the quick plan, the study folder's rules."""
import os
from dataclasses import replace

import numpy as np
import pytest

from fastleaf.cli import main
from fastleaf.data.table import split_indices
from fastleaf.errors import UsageError
from fastleaf.study.budget import Timing, model_seconds, quick_plan, split_counts, work_for
from fastleaf.study.plan import (MODELS, Plan, StudyOptions, run_state, subset_rows,
                                 write_manifest)
from fastleaf.study.stats import mcnemar
from fastleaf.study.tables import claim_sentences, is_classify_leaves, pairwise
from fastleaf.utils.eta import time_left

FAKE = {"cnn": Timing("cnn", setup_s=2.0, train_step_s=0.5, eval_batch_s=0.2, check_s=0.01),
        "vgg16": Timing("vgg16", setup_s=4.0, train_step_s=3.0, eval_batch_s=1.0)}


def test_model_seconds_from_fake_timings():
    work = work_for(train_images=420, val_images=101, batch_size=50, epochs=3)
    assert (work.train_steps, work.eval_batches, work.images) == (8, 3, 521)
    # setup + check + 3 epochs x (8 steps x 0.5 + 3 batches x 0.2) + the report's pass
    expected = 2.0 + 0.01 * 521 + 3 * (8 * 0.5 + 3 * 0.2) + 3 * 0.2
    assert model_seconds(FAKE["cnn"], work) == pytest.approx(expected)


def test_split_counts_are_the_trainers_split():
    labels = np.repeat(np.arange(7), [3, 4, 5, 6, 9, 12, 19])
    for per_class in (None, 3, 5, 8):
        rows = subset_rows(list(labels), per_class, seed=0)
        train, val = split_indices(labels[rows], 0.2, seed=0)
        assert split_counts(labels, per_class, 0.2) == (len(train), len(val))


def test_subset_keeps_every_class_and_at_most_k_of_each():
    labels = list(np.repeat(["a", "b", "c"], [2, 6, 30]))
    rows = subset_rows(labels, 5, seed=1)
    kept = np.asarray(labels)[rows]
    assert [int((kept == c).sum()) for c in "abc"] == [2, 5, 5]
    assert list(rows) == sorted(rows)
    assert list(subset_rows(labels, 5, seed=1)) == list(rows)        # seeded


def test_quick_plan_takes_the_largest_subset_that_fits():
    labels = np.repeat(np.arange(20), 40)           # 20 classes x 40 images
    roomy = quick_plan(FAKE, labels, 50, 0.2, budget_s=1e6)
    assert (roomy.per_class, roomy.epochs, roomy.fits) == (None, 3, True)
    tight = quick_plan(FAKE, labels, 50, 0.2, budget_s=100)
    # 20 a class: 320 train (6 steps) + 80 val (2 batches): cnn 16.6 s + vgg16 66 s
    assert (tight.per_class, tight.epochs, tight.fits) == (20, 3, True)
    assert tight.total_s == pytest.approx(82.6)
    for k in (None, 30):                            # the larger subsets would not fit
        train, val = split_counts(labels, k, 0.2)
        work = work_for(train, val, 50, 3)
        assert sum(model_seconds(t, work) for t in FAKE.values()) > 100
    hopeless = quick_plan(FAKE, labels, 50, 0.2, budget_s=1)
    assert not hopeless.fits and hopeless.epochs == 1
    assert quick_plan(FAKE, labels, 50, 0.2, budget_s=1e6, epochs=2).epochs == 2


def test_eta_scales_the_rest_by_how_the_finished_models_went():
    assert time_left([10, 20, 30], []) == 60
    assert time_left([10, 20, 30], [20]) == pytest.approx(100)     # twice as slow as estimated
    assert time_left([10, 20, 30], [20, 20, 30]) == 0


def test_run_state(tmp_path):
    run = tmp_path / "cnn"
    assert run_state(run, 2, tmp_path / "scores.csv") == "new"
    run.mkdir()
    for name in ("config.yaml", "last.pt"):
        (run / name).write_text("x")
    (run / "metrics.csv").write_text("epoch,sum\n1,1.0\n")
    assert run_state(run, 2, tmp_path / "scores.csv") == "partial"
    (run / "metrics.csv").write_text("epoch,sum\n1,1.0\n2,1.1\n")
    (run / "best.pt").write_text("x")
    # every epoch recorded, but the run never reached its final score row
    assert run_state(run, 2, tmp_path / "scores.csv") == "partial"
    (tmp_path / "scores.csv").write_text("run,model\ncnn,cnn\n")
    assert run_state(run, 2, tmp_path / "scores.csv") == "done"


def test_a_changed_option_is_refused_in_one_line(tiny_data, tmp_path, capsys):
    out = tmp_path / "R"
    options = StudyOptions(data=str(tiny_data), out=str(out), models=("cnn",), epochs=2)
    write_manifest(out, options, Plan(epochs=2, train_data=str(tiny_data)))
    code = main(["reproduce", "--data", str(tiny_data), "--out", str(out), "--models", "cnn",
                 "--epochs", "3", "--dry-run"])
    said = capsys.readouterr().out
    assert code == 2
    assert "--epochs 3 differs from the study's 2" in said and len(said.strip().splitlines()) <= 2
    from fastleaf.study.runner import run_study

    with pytest.raises(UsageError, match="--models cnn,resnet18"):
        run_study(replace(options, models=("cnn", "resnet18")), dry_run=True)


def test_run_folders_without_a_study_are_not_overwritten(tiny_data, tmp_path):
    (tmp_path / "R" / "cnn").mkdir(parents=True)
    assert main(["reproduce", "--data", str(tiny_data), "--out", str(tmp_path / "R"),
                 "--models", "cnn", "--dry-run"]) == 2


def test_unknown_models_are_refused(tiny_data):
    assert main(["reproduce", "--data", str(tiny_data), "--models", "cnn,alexnet",
                 "--dry-run"]) == 2
    assert main(["reproduce", "--data", str(tiny_data), "--models", "cnn",
                 "--weights", "deit_tiny=x.pth", "--dry-run"]) == 2
    assert main(["reproduce", "--data", str(tiny_data), "--weights", "deit.pth",
                 "--dry-run"]) == 2


def test_the_commands_default_models_are_the_studys():
    from fastleaf.commands.reproduce import MODELS as listed

    assert listed == ",".join(MODELS)


def test_claims_judged_from_paired_predictions():
    y = np.zeros(60, int)
    good, bad = np.zeros(60, int), np.r_[np.zeros(30), np.ones(30)].astype(int)
    preds = {"cnn": bad, "resnet18": good, "vgg16": good, "deit_tiny": bad}
    sentences = claim_sentences(pairwise(y, preds))
    assert len(sentences) == 4
    assert sentences[0].startswith("The paper's ResNet18 > CNN: holds")
    assert sentences[1].startswith("The paper's CNN > VGG16: reversed")
    assert sentences[2].startswith("The paper's ResNet18 > VGG16: not distinguishable")
    assert sentences[3].startswith("The paper's CNN > DeiT-tiny: not distinguishable")
    assert mcnemar(y, good, bad).only_a == 30


def test_paper_figures_only_for_classify_leaves():
    assert is_classify_leaves(176, 18353, 8800)
    assert not is_classify_leaves(176, 1745, 427)


@pytest.mark.slow
def test_an_interrupted_study_resumes_without_retraining(tiny_data, tmp_path):
    """The first attempt finishes the CNN, then stops ResNet18 after one of its two epochs;
    the rerun trains only what is missing and writes the report."""
    from fastleaf.study.runner import run_study
    from fastleaf.utils.csv_rows import read_rows
    from fastleaf.train.trainer import fit

    out = tmp_path / "R"
    options = StudyOptions(data=str(tiny_data), out=str(out), models=("cnn", "resnet18"),
                           epochs=2, batch_size=16, img_size=112, device="cpu", workers=0,
                           progress=False)
    calls = []

    def interrupted(cfg):
        calls.append((cfg.model, cfg.resume))
        if cfg.model == "resnet18":
            fit(replace(cfg, epochs=1))              # one epoch, then the machine goes away
            raise KeyboardInterrupt
        return fit(cfg)

    with pytest.raises(KeyboardInterrupt):
        run_study(options, probe_steps=1, train=interrupted)
    cnn_files = {p.name: os.stat(p).st_mtime_ns for p in (out / "cnn").glob("*.pt")}
    calls.clear()
    html = run_study(options, probe_steps=1, train=lambda cfg: calls.append(
        (cfg.model, cfg.resume)) or fit(cfg))
    assert calls == [("resnet18", str(out / "resnet18"))]        # resumed, the CNN skipped
    assert {p.name: os.stat(p).st_mtime_ns for p in (out / "cnn").glob("*.pt")} == cnn_files
    assert [int(r["epoch"]) for r in read_rows(out / "resnet18" / "metrics.csv")] == [1, 2]
    text = (out / "report.md").read_text()
    assert html.is_file() and "Paired tests" in text and "The paper's ResNet18 > CNN" in text
    assert (out / "figures" / "acc.png").is_file()


def test_quick_budget_counts_the_time_spent_measuring(tiny_data, tmp_path):
    from fastleaf.study.runner import choose_plan

    labels = list(np.repeat(np.arange(20), 40))
    options = StudyOptions(data=str(tiny_data), out=str(tmp_path / "R"), quick=True,
                           budget_min=200 / 60, models=("cnn", "vgg16"))
    assert choose_plan(options, FAKE, labels, spent_s=0).per_class is None      # 160 s fit
    squeezed = choose_plan(options, FAKE, labels, spent_s=100)                  # 100 s left
    assert (squeezed.per_class, squeezed.epochs) == (20, 3)
    assert squeezed.train_data == str((tmp_path / "R" / "data").resolve())
