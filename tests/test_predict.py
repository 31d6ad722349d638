"""tta-predict and evaluate on a 1-epoch tiny run: submissions, ensembles, metrics, atomic IO."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from fastleaf.cli import main
from fastleaf.predict import runner
from fastleaf.predict.ensemble import (PredictSettings, average_probs, ensemble_probs,
                                       load_members, parse_weights)
from fastleaf.predict.scoring import evaluate_checkpoints
from fastleaf.predict.submission import SubmissionError, check_submission, write_submission
from fastleaf.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

# the first test to ask for it trains the shared run (conftest.tiny_run)
pytestmark = pytest.mark.slow

FAST = PredictSettings(tta="none", batch_size=16, device="cpu", workers=0)


def test_submission_order_header_and_labels(tiny_data, tiny_run, tmp_path):
    out = tmp_path / "sub.csv"
    settings = PredictSettings(tta="hflip", batch_size=16, device="cpu", workers=0)
    result = runner.tta_predict(tiny_data, [tiny_run / "best.pt"], out=out, settings=settings,
                                save_probs=tmp_path / "probs.npy")
    test = pd.read_csv(tiny_data / "test.csv", dtype=str)
    sub = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert out.read_text().splitlines()[0] == "image,label"
    assert sub["image"].tolist() == test["image"].tolist()
    assert set(sub["label"]) <= set(load_checkpoint(tiny_run)["classes"])
    assert result.rows == len(test) and result.output.views == 2 and result.img_per_s > 0
    probs = np.load(tmp_path / "probs.npy")
    assert probs.shape == (len(test), 6) and np.allclose(probs.sum(1), 1.0, atol=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["probs.npy", "sub.csv"]   # no temps


def test_cli_writes_submission_and_probs(tiny_data, tiny_run, tmp_path):
    out, probs = tmp_path / "sub.csv", tmp_path / "probs.csv"
    code = main(["tta-predict", "--data", str(tiny_data), "--checkpoint", str(tiny_run),
                 "--tta", "none", "--out", str(out), "--save-probs", str(probs),
                 "--device", "cpu", "--workers", "0", "--batch-size", "32"])
    assert code == 0
    table = pd.read_csv(probs)
    classes = load_checkpoint(tiny_run)["classes"]
    assert list(table.columns) == ["image", *classes]
    assert np.allclose(table[classes].sum(axis=1), 1.0, atol=1e-4)
    # the written labels are the arg-max of the saved probabilities
    argmax = [classes[i] for i in table[classes].to_numpy().argmax(1)]
    assert pd.read_csv(out)["label"].tolist() == argmax


def test_mixed_class_lists_are_refused(tiny_run, tmp_path):
    state = load_checkpoint(tiny_run / "best.pt")
    state["classes"] = list(reversed(state["classes"]))
    other = tmp_path / "other.pt"
    save_checkpoint(other, {k: v for k, v in state.items() if k != "format"})
    with pytest.raises(CheckpointError) as err:
        load_members([tiny_run / "best.pt", other])
    assert str(tiny_run / "best.pt") in str(err.value) and str(other) in str(err.value)


def test_checkpoint_paths_resolve(tiny_run, tmp_path):
    assert [m.path for m in load_members([tiny_run])] == [tiny_run / "best.pt"]
    assert [m.path for m in load_members([tiny_run.parent])] == [tiny_run / "best.pt"]
    with pytest.raises(CheckpointError, match="no best.pt"):
        load_members([tmp_path])


def test_average_probs_by_hand():
    a = torch.tensor([[0.2, 0.8], [1.0, 0.0]])
    b = torch.tensor([[0.6, 0.4], [0.0, 1.0]])
    assert torch.allclose(average_probs([a, b]), torch.tensor([[0.4, 0.6], [0.5, 0.5]]))
    assert torch.allclose(average_probs([a, b], [1.0, 3.0]),
                          torch.tensor([[0.5, 0.5], [0.25, 0.75]]))
    assert parse_weights("1,3", 2) == [1.0, 3.0]
    for bad in ("1", "1,x", "-1,2", "0,0"):
        with pytest.raises(ValueError):
            parse_weights(bad, 2)


def test_ensemble_of_identical_checkpoints_equals_one(tiny_run):
    one = load_members([tiny_run])
    two = load_members([tiny_run, tiny_run / "best.pt"], weights="1,3")
    samples = one[0].run.val_samples()
    p1 = ensemble_probs(one, samples, FAST)["none"]
    p2 = ensemble_probs(two, samples, FAST)["none"]
    assert p2.members == 2
    assert torch.allclose(p1.probs, p2.probs, atol=1e-6)
    assert torch.equal(p1.labels, torch.from_numpy(samples.labels))


def test_weighted_ensemble_of_different_members_is_their_weighted_mean(tiny_run, tmp_path):
    state = load_checkpoint(tiny_run / "best.pt")
    generator = torch.Generator().manual_seed(1)
    other = {**state, "model": {k: v + 0.05 * torch.randn(v.shape, generator=generator)
                                if v.is_floating_point() else v
                                for k, v in state["model"].items()}}
    save_checkpoint(tmp_path / "other.pt", other)
    a, b = load_members([tiny_run]), load_members([tmp_path / "other.pt"])
    samples = a[0].run.val_samples()
    pa = ensemble_probs(a, samples, FAST)["none"].probs
    pb = ensemble_probs(b, samples, FAST)["none"].probs
    assert not torch.allclose(pa, pb, atol=1e-3)          # the members really differ
    both = load_members([tiny_run, tmp_path / "other.pt"], weights="1,3")
    mixed = ensemble_probs(both, samples, FAST)["none"].probs
    assert torch.allclose(mixed, 0.25 * pa + 0.75 * pb, atol=1e-5)


def test_evaluate_without_tta_reproduces_training(tiny_run):
    best = load_checkpoint(tiny_run)["metrics"]
    settings = PredictSettings(batch_size=None, amp=None, amp_dtype=None, channels_last=None,
                               device="cpu", workers=0)
    result = evaluate_checkpoints([tiny_run], tta="none", settings=settings)
    assert list(result.metrics) == ["none"]
    for key in ("acc", "f1_macro", "kappa"):
        assert result.metrics["none"][key] == pytest.approx(best[key], abs=1e-6)


def test_evaluate_cli_on_labelled_csv(tiny_data, tiny_run, tmp_path, capsys):
    csv = tmp_path / "few.csv"
    pd.read_csv(tiny_data / "train.csv").iloc[::6].to_csv(csv, index=False)   # 12 rows
    code = main(["evaluate", "--checkpoint", str(tiny_run), "--csv", str(csv),
                 "--data", str(tiny_data), "--tta", "flips", "--device", "cpu",
                 "--workers", "0", "--batch-size", "16"])
    assert code == 0
    text = capsys.readouterr().out
    assert "flips" in text and "gain" in text and "12 rows" in text


def test_failed_check_leaves_no_file(tiny_data, tiny_run, tmp_path, monkeypatch):
    from fastleaf.predict import submission

    real = submission.write_submission

    def corrupt(out, images, labels, classes):
        return real(out, images, ["no_such_species"] + list(labels[1:]), classes)

    monkeypatch.setattr(submission, "write_submission", corrupt)
    out = tmp_path / "sub.csv"
    with pytest.raises(SubmissionError, match="row 2: label 'no_such_species'"):
        runner.tta_predict(tiny_data, [tiny_run], out=out, settings=FAST,
                           save_probs=tmp_path / "p.npy")
    assert list(tmp_path.iterdir()) == []          # no submission, no probabilities, no temp


def test_check_submission_names_the_row():
    frame = pd.DataFrame({"image": ["b.jpg", "a.jpg"], "label": ["x", "x"]})
    with pytest.raises(SubmissionError, match="row 2: image 'b.jpg'"):
        check_submission(frame, ["a.jpg", "b.jpg"], ["x"], "sub.csv")
    with pytest.raises(SubmissionError, match="header"):
        check_submission(frame.rename(columns={"label": "class"}), ["b.jpg", "a.jpg"], ["x"],
                         "sub.csv")
    with pytest.raises(SubmissionError, match="3 rows, but test.csv has 2"):
        check_submission(pd.concat([frame, frame.iloc[:1]]), ["b.jpg", "a.jpg"], ["x"], "s")


def test_write_submission_refuses_unknown_label(tmp_path):
    with pytest.raises(SubmissionError, match="label 'y'"):
        write_submission(tmp_path / "sub.csv", ["a.jpg", "b.jpg"], ["x", "y"], ["x"])
    assert list(tmp_path.iterdir()) == []
