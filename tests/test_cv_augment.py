"""OpenCV views: decode checks, the one-warp geometry, the lookup table, the threaded batches,
the albumentations worker pipeline and its torchvision fallback, and the core split."""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

pytest.importorskip("cv2")
import cv2  # noqa: E402

from fastleaf.data.augment import AugmentSpec, Draws  # noqa: E402
from fastleaf.data.imageio import ImageDecodeError, decode_rgb  # noqa: E402
from fastleaf.data.table import load_table  # noqa: E402
from fastleaf.loaders import LoaderOptions  # noqa: E402
from fastleaf.loaders import workers_backend as wb  # noqa: E402
from fastleaf.loaders.cpu_split import plan_split  # noqa: E402
from fastleaf.loaders.cv_augment import (BatchViews, View, crop_box, decode_rgb_cv2,  # noqa: E402
                                         draw_view, render, view_matrix)


def image(seed=0, size=32) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def table(tiny_data):
    return load_table(tiny_data, val_fraction=0.0, seed=0)


def test_cv2_decode_equals_the_torchvision_decoder(table):
    for path in table.all_train.paths[:4]:
        got = decode_rgb_cv2(path)
        assert got.dtype == np.uint8 and got.shape == (128, 128, 3)
        assert np.array_equal(got, decode_rgb(path).permute(1, 2, 0).numpy())   # both RGB


def test_cv2_decode_names_the_file_of_bad_input(tmp_path, table):
    empty, junk = tmp_path / "empty.jpg", tmp_path / "junk.jpg"
    empty.write_bytes(b"")
    junk.write_bytes(b"\xff\xd8\xff not a jpeg at all")
    for path, why in ((empty, "empty file"), (junk, "not a readable image"),
                      (tmp_path / "missing.jpg", "cannot read")):
        with pytest.raises(ImageDecodeError, match=why) as err:
            decode_rgb_cv2(path)
        assert str(path) in str(err.value)


def test_cv2_decode_refuses_a_header_over_the_pixel_limit_and_reads_odd_modes(
        tmp_path, table, monkeypatch):
    jpeg = table.all_train.paths[0]
    png = tmp_path / "rgba.png"
    rgba = np.dstack([image(1, 20), np.full((20, 20), 7, np.uint8)])
    cv2.imwrite(str(png), rgba)
    monkeypatch.setenv("FASTLEAF_MAX_PIXELS", "399")
    with pytest.raises(ImageDecodeError, match="128x128 pixels is above the limit of 399"):
        decode_rgb_cv2(jpeg)                               # from the header, before decoding
    with pytest.raises(ImageDecodeError, match="20x20 pixels is above"):
        decode_rgb_cv2(png)
    monkeypatch.delenv("FASTLEAF_MAX_PIXELS")
    out = decode_rgb_cv2(png)
    assert out.shape == (20, 20, 3) and np.array_equal(out, rgba[..., 2::-1])   # BGRA -> RGB
    grey = tmp_path / "grey.png"
    cv2.imwrite(str(grey), image(2, 10)[..., 0])
    assert decode_rgb_cv2(grey).shape == (10, 10, 3)


def test_view_matrix_is_the_identity_and_flips_map_pixel_centres():
    assert np.allclose(view_matrix(View(box=(0, 0, 32, 32)), 32), np.eye(2, 3))
    m = view_matrix(View(box=(0, 0, 32, 32), hflip=True), 32)
    assert np.allclose(m @ [0, 5, 1], [31, 5]) and np.allclose(m @ [31, 5, 1], [0, 5])
    # a 16-px crop scaled to 32 px: the crop's outer pixel edges land on the output's
    m = view_matrix(View(box=(8, 8, 16, 16)), 32)
    assert np.allclose(m @ [-0.5, -0.5, 1], [-0.5, -0.5]) and np.allclose(m @ [15.5, 15.5, 1],
                                                                           [31.5, 31.5])


def test_render_of_a_crop_upscales_only_the_crop():
    src = np.zeros((32, 32, 3), np.uint8)
    src[8:24, 8:24] = 200                                   # the crop is the bright square
    out = render(src, View(box=(8, 8, 16, 16)), 32)
    assert out.min() == 200


def test_a_quarter_turn_moves_the_right_edge_to_the_top():
    src = np.zeros((33, 33, 3), np.uint8)
    src[:, -4:] = 255                                       # a bright right edge
    out = render(src, View(box=(0, 0, 33, 33), angle=90.0), 33)
    assert out[:4, 8:25].min() == 255 and out[-4:].max() == 0   # counter-clockwise on screen


def test_the_lookup_table_applies_brightness_and_contrast_about_the_grey_mean():
    src = np.random.default_rng(0).integers(60, 190, (16, 16, 3), dtype=np.uint8)
    box = (0, 0, 16, 16)
    bright = render(src, View(box=box, brightness=1.25), 16).astype(float)
    assert np.abs(bright - np.clip(np.rint(src * 1.25), 0, 255)).max() <= 1
    flat = render(src, View(box=box, contrast=0.5), 16).astype(float)
    luma = np.array([0.2989, 0.587, 0.114])
    assert abs((flat @ luma).mean() - (src @ luma).mean()) < 1.0      # grey mean kept
    assert flat.std() < 0.6 * src.std()


def test_crop_boxes_stay_inside_and_cover_the_asked_area():
    draws = AugmentSpec.train_preset(64).draws()
    rng = np.random.default_rng(0)
    boxes = np.array([crop_box(draws, 64, rng) for _ in range(300)])
    x0, y0, w, h = boxes.T
    assert (x0 >= 0).all() and (y0 >= 0).all() and (x0 + w <= 64).all() and (y0 + h <= 64).all()
    area = w * h / 64**2
    assert area.min() > 0.55 and area.max() <= 1.0 and area.std() > 0.05


def test_batch_views_do_not_depend_on_the_thread_count_or_the_layout():
    store = np.stack([image(i) for i in range(6)])           # (U, S, S, 3)
    draws = AugmentSpec.train_preset(32).draws()
    batches = [np.array([0, 1, 2, 3]), np.array([5, 4, 4])]

    def run(threads, data):
        return list(BatchViews(draws, 32, threads).stream(data, iter(batches),
                                                          np.random.default_rng(7)))

    one, two = run(1, store), run(3, torch.from_numpy(store))
    nchw = run(2, np.ascontiguousarray(store.transpose(0, 3, 1, 2)))
    assert [b.shape for b in one] == [(4, 32, 32, 3), (3, 32, 32, 3)]
    for a, b, c in zip(one, two, nchw):
        assert torch.equal(a, b) and torch.equal(a, c)
    rng = np.random.default_rng(7)                            # the same draws, one by one
    views = [draw_view(draws, 32, rng) for _ in range(7)]
    assert np.array_equal(one[1][0].numpy(), render(store[5], views[4], 32))
    assert not torch.equal(one[1][1], one[1][2])              # one file, two draws


def test_worker_processes_draw_their_own_views_reproducibly(table):
    one = table.all_train.subset(np.zeros(8, dtype=np.int64))     # one image, eight rows
    spec = AugmentSpec.train_preset(64)
    opts = LoaderOptions(batch_size=2, workers=2, seed=1)

    def epoch():
        loader = wb.WorkerLoader(one, spec, opts, pipeline="albumentations")
        return torch.cat([b[0] for b in loader])

    first = epoch()
    assert not torch.equal(first[0:2], first[2:4])      # batches 0 and 1 come from two workers
    assert torch.equal(first, epoch())


def test_without_albumentations_the_worker_loader_says_so_once_and_uses_torchvision(
        table, monkeypatch):
    said = []
    monkeypatch.setattr(wb, "console", type("C", (), {"print": lambda self, m: said.append(m)})())
    monkeypatch.setattr(wb, "_SAID", set())
    monkeypatch.delitem(sys.modules, "fastleaf.loaders.albu_views", raising=False)
    monkeypatch.setitem(sys.modules, "albumentations", None)    # import raises ImportError
    spec = AugmentSpec.train_preset(64)
    opts = LoaderOptions(batch_size=5, workers=0)
    loaders = [wb.WorkerLoader(table.all_train.subset(np.arange(10)), spec, opts)
               for _ in range(2)]
    assert [loader.pipeline for loader in loaders] == ["torchvision", "torchvision"]
    assert len(said) == 1 and "albumentations unavailable" in said[0]
    images = next(iter(loaders[0]))[0]
    assert images.shape == (5, 3, 64, 64)
    with pytest.raises(ValueError, match="albumentations pipeline cannot start"):
        wb.pick_pipeline("albumentations")


def test_the_albumentations_batch_is_channels_last_without_a_copy(table):
    loader = wb.WorkerLoader(table.all_train.subset(np.arange(6)),
                             AugmentSpec.eval_preset(128),
                             LoaderOptions(batch_size=3, workers=0, channels_last=True))
    assert loader.pipeline == "albumentations" and loader.dataset.hwc
    images, _ = next(iter(loader))
    assert images.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("cores, backend, expect", [
    (2, "workers", (1, 2)),       # small: the model keeps both cores
    (2, "synthetic", (0, 2)),
    (16, "cache-ram", (4, 12)),       # large: the loader's cores are set aside
    (8, "dali", (2, 6)),
])
def test_plan_split_shares_the_cores(cores, backend, expect):
    split = plan_split(torch.device("cpu"), backend, cores=cores)
    assert (split.workers, split.threads) == expect
    assert f"{expect[0]} loader worker" in split.describe() and f"on {cores} cores" in \
        split.describe()


def test_plan_split_keeps_what_was_asked_and_leaves_gpu_threads_alone(monkeypatch):
    import fastleaf.utils.device as devmod

    split = plan_split(torch.device("cpu"), "workers", workers=3, threads=5, cores=16)
    assert (split.workers, split.threads) == (3, 5)
    monkeypatch.setattr(devmod, "usable_cores", lambda: 16)
    gpu = plan_split(torch.device("cuda"), "dali", cores=16)
    # the GPU computes: the loader takes the process's cores less one for the training loop
    assert gpu.threads is None and gpu.workers == 15
