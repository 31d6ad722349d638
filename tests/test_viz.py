"""Filters, feature maps and attention rollout PNGs from tiny checkpoints."""
import numpy as np
import pytest
import torch
from PIL import Image

from fastleaf.cli import main
from fastleaf.config import resolve_config
from fastleaf.models import create_model
from fastleaf.train.checkpoint import save_checkpoint
from fastleaf.train.trainer import fit
from fastleaf.viz.attention import attention_rollout, capture_attention
from fastleaf.viz.feature_maps import capture_outputs, write_feature_maps
from fastleaf.viz.filters import rgb_filter_tiles, write_filter_figures
from fastleaf.viz.inputs import prepare_image
from fastleaf.viz.plots import grid_pixels, grid_shape, tile_grid

CLASSES = [f"class_{i}" for i in range(6)]


def fresh_checkpoint(path, name, img_size, model=None):
    model = model or create_model(name, 6)
    save_checkpoint(path, {"model_name": name, "model": model.state_dict(), "classes": CLASSES,
                           "config": {"img_size": img_size}, "epoch": 0, "metrics": {},
                           "best_score": 0.0})
    return path


@pytest.fixture(scope="module")
def deit(tmp_path_factory):
    """(checkpoint path, model) of an untrained deit_tiny: building one takes seconds."""
    model = create_model("deit_tiny", 6).eval()
    path = tmp_path_factory.mktemp("deit") / "deit.pt"
    return fresh_checkpoint(path, "deit_tiny", 224, model), model


@pytest.fixture(scope="module")
def cnn_ckpt(tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("viz") / "cnn"
    cfg = resolve_config(data=str(tiny_data), out=str(out), model="cnn", img_size=112, epochs=1,
                         batch_size=16, workers=0, progress=False, tensorboard=False,
                         device="cpu")
    return fit(cfg).run_dir / "best.pt"


@pytest.fixture(scope="module")
def image(tiny_data):
    return tiny_data / "images" / "0.jpg"


def png_size(path):
    """(width, height) of a PNG that fully decodes."""
    assert path.suffix == ".png" and path.stat().st_size > 0
    with Image.open(path) as img:
        img.load()
        assert img.format == "PNG"
        return img.size


def test_grid_layout():
    assert grid_shape(16) == (4, 4)
    assert grid_shape(6) == (2, 3)
    assert grid_shape(17) == (4, 5)
    assert grid_shape(64) == (8, 8)
    assert grid_pixels(16, 56, 56, pad=2) == (4 * 56 + 5 * 2, 4 * 56 + 5 * 2)
    with pytest.raises(ValueError):
        grid_shape(0)


def test_tile_grid_puts_each_tile_in_its_cell():
    tiles = np.stack([np.full((3, 3, 3), i / 10, dtype=np.float32) for i in range(5)])
    grid = tile_grid(tiles, cols=3, pad=1)
    assert grid.shape == (2 * 3 + 3, 3 * 3 + 4, 3)
    for i in range(5):
        r, c = divmod(i, 3)
        y, x = 1 + r * 4, 1 + c * 4
        assert np.all(grid[y:y + 3, x:x + 3] == pytest.approx(i / 10))
    assert grid[0, 0, 0] == 1.0 and grid[5, 9, 0] == 1.0     # padding and the empty sixth cell


def test_rgb_filter_tiles_scale_each_filter_and_upscale():
    weight = np.random.default_rng(0).normal(size=(16, 3, 7, 7)).astype(np.float32)
    weight[3] *= 100                                           # one loud filter
    tiles = rgb_filter_tiles(weight, min_px=56)
    assert tiles.shape == (16, 56, 56, 3)
    for tile in tiles:
        assert tile.min() == 0.0 and tile.max() == 1.0
    assert np.all(tiles[0, :8, :8] == tiles[0, 0, 0])         # nearest: 8x8 blocks per weight


def test_cnn_filters_paper_grid(cnn_ckpt, tmp_path):
    paths = write_filter_figures(cnn_ckpt, tmp_path)
    assert [p.name for p in paths] == ["filters_features.0.png", "kernels_features.4_f0.png"]
    assert png_size(paths[0]) == (234, 234)      # 16 filters -> 4x4 tiles of 56 px, 2 px pad
    assert png_size(paths[1]) == (250, 250)      # 16 input kernels 5x5 -> 4x4 tiles of 60 px


def test_resnet_filters_any_layer_and_errors(tmp_path):
    ckpt = fresh_checkpoint(tmp_path / "r18.pt", "resnet18", 112)
    paths = write_filter_figures(ckpt, tmp_path / "out", layer="layer1.0.conv2", channel=3)
    assert png_size(paths[0]) == (8 * 56 + 9 * 2,) * 2           # conv1: 64 filters of 7x7
    assert paths[1].name == "kernels_layer1.0.conv2_f3.png"
    assert png_size(paths[1]) == (8 * 57 + 9 * 2,) * 2           # 64 kernels 3x3 -> 57 px
    with pytest.raises(ValueError, match="no convolution named 'layer9'.*conv1"):
        write_filter_figures(ckpt, tmp_path / "out", layer="layer9")
    with pytest.raises(ValueError, match="out of range"):
        write_filter_figures(ckpt, tmp_path / "out", layer="conv1", channel=64)


def test_cnn_feature_maps_first_block(cnn_ckpt, image, tmp_path):
    paths = write_feature_maps(cnn_ckpt, image, tmp_path)
    names = [p.name for p in paths]
    assert names == ["input.png"] + [f"featmap_{i:02d}_features.{i}.png" for i in range(5)]
    sizes = [png_size(p) for p in paths]
    assert sizes[0] == (112, 112)
    assert sizes[1:4] == [(222, 222)] * 3        # 16 maps of 53x53 (conv, ReLU, BN)
    assert sizes[4] == (218, 218)                # MaxPool: 26x26, upscaled x2
    assert sizes[5] == (458, 458)                # second conv: 64 maps of 11x11, x5


def test_hooks_keep_the_conv_output_before_the_inplace_relu(cnn_ckpt, image):
    from fastleaf.viz.inputs import load_model

    loaded = load_model(cnn_ckpt)
    _, x = prepare_image(image, loaded.img_size)
    outputs = capture_outputs(loaded.model, x)
    assert outputs["features.0"].shape == (1, 16, 53, 53)
    assert outputs["features.0"].min() < 0 <= outputs["features.1"].min()


def test_named_layers_and_unknown_layer(tmp_path, image, capsys):
    ckpt = fresh_checkpoint(tmp_path / "r18.pt", "resnet18", 112)
    paths = write_feature_maps(ckpt, image, tmp_path / "out", layers=["layer1", "layer2.0.bn1"])
    assert [p.name for p in paths[1:]] == ["featmap_00_layer1.png", "featmap_01_layer2.0.bn1.png"]
    assert png_size(paths[1]) == (8 * 56 + 9 * 2,) * 2           # 64 maps 28x28, x2
    code = main(["viz", "feature-maps", "--checkpoint", str(ckpt), "--image", str(image),
                 "--out", str(tmp_path / "cli"), "--layer", "nope"])
    out = capsys.readouterr().out
    assert code == 2 and "no layer named 'nope'" in out and "conv1" in out


@pytest.mark.slow
def test_deit_attention_rollout(deit, tmp_path, image):
    paths = write_feature_maps(deit[0], image, tmp_path / "out")
    assert [p.name for p in paths] == ["input.png", "attention_rollout.png"]
    assert png_size(paths[1]) == (2 * 224 + 3 * 2, 224 + 2 * 2)   # image | overlay
    with pytest.raises(ValueError, match=r"'backbone.blocks.0' gives shape \(1, 197, 192\)"):
        write_feature_maps(deit[0], image, tmp_path / "out", layers=["backbone.blocks.0"])


def test_attention_capture_and_rollout_rows_are_distributions(deit):
    model = deit[1]
    attn = [m for m in model.modules() if hasattr(m, "fused_attn") and hasattr(m, "qkv")]
    before = [m.fused_attn for m in attn]
    maps = capture_attention(model, torch.randn(1, 3, 224, 224))
    assert [m.fused_attn for m in attn] == before               # restored afterwards
    assert len(maps) == 12 and maps[0].shape == (1, 3, 197, 197)
    assert torch.allclose(maps[5].sum(-1), torch.ones(1, 3, 197), atol=1e-4)
    rollout = attention_rollout(maps)
    assert rollout.min() >= 0
    assert torch.allclose(rollout.sum(-1), torch.ones(197), atol=1e-4)
    uniform = [torch.full((1, 2, 5, 5), 0.2)]                    # one layer: (A + I) / 2
    assert torch.allclose(attention_rollout(uniform), (torch.full((5, 5), 0.2) + torch.eye(5)) / 2)


def test_cli_filters_prints_names(cnn_ckpt, tmp_path, capsys):
    assert main(["viz", "filters", "--checkpoint", str(cnn_ckpt.parent), "--out",
                 str(tmp_path), "--channel", "2"]) == 0
    out = capsys.readouterr().out
    assert "filters_features.0.png" in out and "kernels_features.4_f2.png" in out
    assert (tmp_path / "kernels_features.4_f2.png").is_file()
