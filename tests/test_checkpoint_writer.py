"""Checkpoints written in the background hold the state of the moment they were asked for."""
import pytest
import torch

from fastleaf.errors import FastleafError
from fastleaf.train.checkpoint import CheckpointWriter, load_checkpoint, snapshot


def state_of(weight):
    return {"model_name": "cnn", "model": {"w": weight}, "classes": ["a"], "epoch": 1,
            "optimizer": {"state": {0: {"exp_avg": weight * 2}}, "param_groups": [{"lr": 0.1}]},
            "rng": {"python": (3, (1, 2), None)}}


def test_the_file_holds_the_state_at_save_time_not_later_changes(tmp_path):
    weight = torch.arange(6, dtype=torch.float32)
    writer = CheckpointWriter()
    writer.save([(tmp_path / "last.pt", state_of(weight))])
    weight.add_(100)                  # the next epoch trains while the file is written
    writer.wait()
    saved = load_checkpoint(tmp_path / "last.pt")
    assert torch.equal(saved["model"]["w"], torch.arange(6, dtype=torch.float32))
    assert torch.equal(saved["optimizer"]["state"][0]["exp_avg"],
                       2 * torch.arange(6, dtype=torch.float32))
    assert saved["rng"]["python"] == (3, (1, 2), None)


def test_files_of_one_epoch_are_written_in_order_and_shared_tensors_copied_once(tmp_path):
    weight = torch.ones(3)
    copy = snapshot({"best": {"w": weight}, "last": {"w": weight}})
    assert copy["best"]["w"] is copy["last"]["w"] and copy["best"]["w"] is not weight
    writer = CheckpointWriter()
    writer.save([(tmp_path / "best.pt", state_of(weight)), (tmp_path / "last.pt",
                                                            state_of(weight))])
    writer.save([(tmp_path / "last.pt", state_of(weight * 3))])   # waits for the first
    writer.wait()
    assert torch.equal(load_checkpoint(tmp_path / "best.pt")["model"]["w"], weight)
    assert torch.equal(load_checkpoint(tmp_path / "last.pt")["model"]["w"], weight * 3)


def test_a_failed_write_is_raised_in_the_training_thread(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    writer = CheckpointWriter()
    writer.save([(blocker / "last.pt", state_of(torch.ones(2)))])
    with pytest.raises((OSError, FastleafError)):
        writer.wait()
    writer.wait()                     # reported once; the writer is usable again
