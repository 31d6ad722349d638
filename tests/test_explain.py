"""explain: Grad-CAM / Grad-CAM++ overlays for the paper CNN, ResNet18 and VGG16 (layer found
from the model), attention rollout for DeiT-tiny; tiny untrained weights."""
import numpy as np
import pytest
import torch
from PIL import Image

from fastleaf.cli import main
from fastleaf.errors import UsageError
from fastleaf.explain.cam import target_layer
from fastleaf.explain.overlay import Explainer
from fastleaf.models import create_model
from fastleaf.predict.run_folder import open_run
from fastleaf.train.checkpoint import save_checkpoint

pytest.importorskip("pytorch_grad_cam")
CLASSES = [f"class_{i}" for i in range(6)]
SIZES = {"cnn": 112, "resnet18": 64, "vgg16": 64, "deit_tiny": 224}


def checkpoint(tmp_path, name):
    torch.manual_seed(0)
    path = tmp_path / f"{name}.pt"
    save_checkpoint(path, {"model_name": name, "model": create_model(name, 6).state_dict(),
                           "classes": CLASSES, "config": {"img_size": SIZES[name]},
                           "epoch": 0, "metrics": {}, "best_score": 0.0})
    return path


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    """A non-square image with structure, so the heat map has something to vary over."""
    rng = np.random.default_rng(0)
    pixels = (rng.random((90, 150, 3)) * 60).astype(np.uint8)
    pixels[20:70, 40:110] = [40, 180, 60]
    path = tmp_path_factory.mktemp("img") / "leaf.png"
    Image.fromarray(pixels).save(path)
    return path


SLOW = pytest.mark.slow          # building VGG16 / DeiT / ResNet takes seconds each


@pytest.mark.parametrize("name,method", [
    ("cnn", "gradcam"), ("cnn", "gradcam++"), pytest.param("resnet18", "gradcam++", marks=SLOW),
    pytest.param("vgg16", "gradcam", marks=SLOW), pytest.param("deit_tiny", "auto", marks=SLOW)])
def test_overlay_has_the_image_size_and_a_varying_heat_map(tmp_path, photo, name, method):
    ckpt = checkpoint(tmp_path, name)
    assert main(["explain", "--checkpoint", str(ckpt), str(photo), "--out", str(tmp_path / "o"),
                 "--method", method]) == 0
    written = list((tmp_path / "o").glob("leaf_*.png"))
    assert len(written) == 1
    with Image.open(written[0]) as img:
        assert img.size == (150, 90)
    found = Explainer(open_run(ckpt), method)(photo)
    assert found.heat.shape == (SIZES[name],) * 2
    assert found.heat.std() > 1e-3                   # not a constant map
    assert found.image.shape == (90, 150, 3)
    assert len(found.top) == 3 and abs(sum(p for _, p in found.top)) <= 1.0 + 1e-6
    assert [p for _, p in found.top] == sorted((p for _, p in found.top), reverse=True)


def test_target_layer_is_the_last_spatial_block():
    assert target_layer(create_model("cnn", 6), 224)[0] == "features.12"        # last ReLU
    # at 112 px the last ReLU is 1 x 1: the block before it is the last map with a layout
    assert target_layer(create_model("cnn", 6), 112)[0] == "features.10"


@SLOW
def test_target_layer_of_timm_cnns():
    assert target_layer(create_model("resnet18", 6), 64)[0] == "layer4.1.act2"   # block output
    # the last pooling, not the classifier's 1 x 1 convolution
    assert target_layer(create_model("vgg16", 6), 64)[0] == "features.30"
    assert target_layer(create_model("efficientnet_b0", 6), 64)[0] == "bn2.act"  # head conv


def test_methods_that_do_not_fit_the_model_are_refused(tmp_path, photo):
    with pytest.raises(UsageError, match="gradcam"):
        Explainer(open_run(checkpoint(tmp_path, "cnn")), "rollout")
    assert main(["explain", "--checkpoint", str(checkpoint(tmp_path, "cnn")),
                 str(tmp_path / "missing.jpg")]) == 2


@SLOW
def test_a_cam_of_a_vision_transformer_is_refused(tmp_path):
    with pytest.raises(UsageError, match="rollout"):
        Explainer(open_run(checkpoint(tmp_path, "deit_tiny")), "gradcam")


def test_a_missing_grad_cam_is_one_line_naming_the_extra(tmp_path, photo, monkeypatch, capsys):
    monkeypatch.setitem(__import__("sys").modules, "pytorch_grad_cam", None)
    assert main(["explain", "--checkpoint", str(checkpoint(tmp_path, "cnn")), str(photo),
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().out
    assert "[explain]" in err and "grad-cam" in err


def test_a_folder_gives_one_png_per_image(tmp_path, photo):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        (folder / name).write_bytes(photo.read_bytes())
    (folder / "notes.txt").write_text("not an image")
    assert main(["explain", "--checkpoint", str(checkpoint(tmp_path, "cnn")), str(folder),
                 "--out", str(tmp_path / "o")]) == 0
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["a_gradcam.png",
                                                                  "b_gradcam.png"]
