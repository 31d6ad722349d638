"""``--loader auto`` is chosen by measurement and never ends a run in a traceback."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fastleaf.cli import main
from fastleaf.config import resolve_config
from fastleaf.data.augment import AugmentSpec
from fastleaf.data.imageio import ImageDecodeError
from fastleaf.data.table import load_table
from fastleaf.loaders import LoaderOptions, auto_choices, create_auto_loader, resolve_backend
from fastleaf.loaders import cache_backend
from fastleaf.loaders.fallback import Choices
from fastleaf.train.trainer import fit

CPU = torch.device("cpu")
CUDA = torch.device("cuda")
SET = dict(images=18353, size=224)      # Classify Leaves: 2.57 GiB decoded


def has_dali() -> bool:
    from fastleaf.loaders.dali_backend import dali_import_error

    return dali_import_error() is None


def names(choices):
    return [name for name, _ in choices]


def test_auto_on_cuda_prefers_the_gpu_cache_then_dali_then_workers(monkeypatch):
    if not has_dali():
        pytest.skip("DALI does not import here")
    free = {"bytes": 80 * 2**30}
    monkeypatch.setattr(cache_backend, "available_gpu_bytes", lambda device: free["bytes"])
    ranked = auto_choices(CUDA, **SET)
    assert names(ranked) == ["cache-gpu", "dali", "workers"]
    assert "fit in free GPU memory" in ranked[0][1]
    free["bytes"] = 2**30                                  # a small card: DALI decodes per epoch
    ranked = auto_choices(CUDA, **SET)
    assert names(ranked) == ["dali", "workers"] and "does not fit" in ranked[0][1]
    assert names(auto_choices(CUDA)) == ["dali", "workers"]    # prediction: one pass
    assert resolve_backend("auto", CUDA, **SET)[0] == "dali"


def test_auto_on_the_cpu_caches_in_ram_when_it_fits(monkeypatch):
    monkeypatch.setattr(cache_backend, "available_ram_bytes", lambda: 20 * 2**30)
    assert names(auto_choices(CPU, **SET)) == ["cache-ram", "workers"]
    monkeypatch.setattr(cache_backend, "available_ram_bytes", lambda: 2**30)
    ranked = auto_choices(CPU, **SET)
    assert names(ranked) == ["workers"] and "do not fit" in ranked[0][1]


def samples_of(tiny_data):
    return load_table(tiny_data, val_fraction=0.2, seed=0).val


def collect(loader):
    batches = list(loader)
    return torch.cat([y for _, y in batches])


def test_a_backend_that_fails_to_build_hands_over_with_one_line(tiny_data, monkeypatch, capsys):
    def broken(*args):
        raise RuntimeError("the cache's library\nis broken")

    monkeypatch.setattr(cache_backend, "ram_cache", broken)
    samples = samples_of(tiny_data)
    choices = Choices(["cache-ram", "workers"])
    loader = create_auto_loader(samples, AugmentSpec.eval_preset(112),
                                LoaderOptions(batch_size=4, workers=0), choices)
    assert loader.backend == "cache-ram"
    assert collect(loader).tolist() == samples.labels.tolist()
    assert loader.backend == "workers" and "is broken" in loader.fallback
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "failed" in line]
    assert lines == ["loader cache-ram failed (the cache's library is broken); auto falls back "
                     "to workers"]
    # the other loader of the run does not try the failed backend again
    assert choices.names == ["workers"]
    assert collect(loader).tolist() == samples.labels.tolist()     # the next epoch too


def test_a_backend_that_fails_on_its_first_batch_hands_over(tiny_data, monkeypatch, capsys):
    def first_batch_fails(self):
        raise MemoryError("pinned memory exhausted")
        yield

    monkeypatch.setattr(cache_backend.CacheLoader, "__iter__", first_batch_fails)
    samples = samples_of(tiny_data)
    loader = create_auto_loader(samples, AugmentSpec.train_preset(112),
                                LoaderOptions(batch_size=4, workers=0, seed=1),
                                Choices(["cache-ram", "workers"]))
    loader.set_epoch(3)
    labels = collect(loader)
    assert sorted(labels.tolist()) == sorted(samples.labels.tolist())
    assert loader.backend == "workers" and "pinned memory exhausted" in capsys.readouterr().out


def test_a_bad_file_is_the_datas_fault_not_the_backends(tiny_data, monkeypatch):
    def bad_file(*args):
        raise ImageDecodeError("images/3.jpg: not a readable image [train.csv row 5]")

    monkeypatch.setattr(cache_backend, "ram_cache", bad_file)
    loader = create_auto_loader(samples_of(tiny_data), AugmentSpec.eval_preset(112),
                                LoaderOptions(batch_size=4, workers=0),
                                Choices(["cache-ram", "workers"]))
    with pytest.raises(ImageDecodeError, match="row 5"):
        collect(loader)


def test_the_last_choice_failing_keeps_its_own_error(tiny_data):
    choices = Choices(["workers"])
    with pytest.raises(RuntimeError, match="boom"):
        choices.failed("workers", RuntimeError("boom"))


def test_a_training_run_on_auto_survives_a_failing_first_choice(tiny_data, tmp_path, monkeypatch,
                                                                 capsys):
    def broken(*args):
        raise OSError("cannot map the cache file")

    monkeypatch.setattr(cache_backend, "ram_cache", broken)
    cfg = resolve_config(data=str(tiny_data), model="cnn", loader="auto", epochs=1, img_size=112,
                         batch_size=16, workers=0, device="cpu", amp=False, progress=False,
                         tensorboard=False, check_data=False, out=str(tmp_path / "run"))
    result = fit(cfg)
    assert result.loader == "workers"
    out = capsys.readouterr().out
    assert out.count("loader cache-ram failed (cannot map the cache file)") == 1
    assert np.isfinite(float(result.last["val_loss"]))


def test_dali_asked_for_by_name_that_fails_is_one_line_exit_2(tiny_data, tmp_path, monkeypatch,
                                                              capsys):
    if not has_dali():
        pytest.skip("DALI does not import here")
    from fastleaf.loaders import dali_backend

    def undefinable(*args, **kwargs):
        raise ValueError('Invalid device "gpu" for argument \'contrast_center\'. Named arguments '
                         'must be on CPU.')

    monkeypatch.setattr(dali_backend, "define_graph", undefinable)
    code = main(["train", "--data", str(tiny_data), "--model", "cnn", "--loader", "dali",
                 "--epochs", "1", "--img-size", "112", "-b", "16", "-j", "1", "--device", "cpu",
                 "--no-amp", "--no-progress", "--no-tensorboard", "--no-check-data",
                 "--out", str(tmp_path / "run")])
    out = capsys.readouterr().out
    assert code == 2
    error = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "DALI pipeline failed" in error[0]
    assert "contrast_center" in error[0] and "--loader workers" in error[0]
    assert "Traceback" not in out


def test_dali_under_auto_that_fails_hands_over(tiny_data, monkeypatch, capsys):
    if not has_dali():
        pytest.skip("DALI does not import here")
    from fastleaf.loaders import dali_backend

    def undefinable(*args, **kwargs):
        raise ValueError("Named arguments must be on CPU.")

    monkeypatch.setattr(dali_backend, "define_graph", undefinable)
    samples = samples_of(tiny_data)
    loader = create_auto_loader(samples, AugmentSpec.train_preset(112),
                                LoaderOptions(batch_size=4, workers=1),
                                Choices(["dali", "workers"]))
    assert sorted(collect(loader).tolist()) == sorted(samples.labels.tolist())
    assert loader.backend == "workers"
    assert "loader dali failed (DALI pipeline failed: Named arguments must be on CPU." in \
        capsys.readouterr().out
