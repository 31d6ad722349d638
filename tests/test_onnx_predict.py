"""Prediction from an exported model through ONNX Runtime: torch is never imported, and the
answers are those of the checkpoint (same top-5, same CSV and submission formats)."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fastleaf.cli import main
from fastleaf.data.table import load_table
from fastleaf.export.exporter import export_run
from fastleaf.export.model_info import ExportSettings, tta_views

from test_export import write_run

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def exported(tiny_data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx")
    run = write_run(folder / "run", tiny_data, "cnn")
    export_run(run, folder / "cnn.onnx", ExportSettings(check=0))
    return run, folder / "cnn.onnx"


def table_rows(text: str) -> list[tuple[str, float]]:
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in text.splitlines()
             if "│" in line]
    return [(r[1], float(r[2])) for r in cells if r and r[0].isdigit()]


def test_the_onnx_path_never_imports_torch(exported, tiny_data, tmp_path):
    _, model = exported
    photo = load_table(tiny_data).val.paths[0]
    code = textwrap.dedent(f"""
        import sys, importlib.abc

        class NoTorch(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("torch", "torchvision", "timm"):
                    raise ImportError("blocked: " + name)

        sys.meta_path.insert(0, NoTorch())
        from fastleaf.cli import main
        codes = [main(["predict", {str(photo)!r}, "--model", {str(model)!r}, "--top", "3"]),
                 main(["predict", {str(tiny_data / "images")!r}, "--model", {str(model)!r},
                       "--out", {str(tmp_path / "pred.csv")!r}, "--tta", "rot90"]),
                 main(["tta-predict", "--data", {str(tiny_data)!r}, "--model", {str(model)!r},
                       "--out", {str(tmp_path / "sub.csv")!r}, "--tta", "five-crop"])]
        print("codes", codes)
        print("loaded", sorted(m for m in sys.modules if m.split(".")[0] == "torch"))
    """)
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "COLUMNS": "120"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert "codes [0, 0, 0]" in out.stdout and "loaded []" in out.stdout
    assert len(table_rows(out.stdout)) == 3
    assert len(pd.read_csv(tmp_path / "pred.csv")) == len(list((tiny_data / "images").iterdir()))
    submission = pd.read_csv(tmp_path / "sub.csv")
    assert list(submission.columns) == ["image", "label"]
    assert len(submission) == len(pd.read_csv(tiny_data / "test.csv"))


@pytest.mark.parametrize("tta", ["flips", "five-crop"])
def test_a_photo_gets_the_checkpoints_top5(exported, tiny_data, capsys, tta):
    run, model = exported
    photo = str(load_table(tiny_data).val.paths[1])
    assert main(["predict", photo, "--checkpoint", str(run), "--tta", tta, "--no-amp",
                 "--device", "cpu", "--workers", "0", "--loader", "workers"]) == 0
    torch_rows = table_rows(capsys.readouterr().out)
    assert main(["predict", photo, "--model", str(model), "--tta", tta]) == 0
    onnx_rows = table_rows(capsys.readouterr().out)
    assert [s for s, _ in onnx_rows] == [s for s, _ in torch_rows] and len(onnx_rows) == 5
    np.testing.assert_allclose([p for _, p in onnx_rows], [p for _, p in torch_rows], atol=2e-3)


def test_the_numpy_views_are_the_torch_views():
    import torch

    from fastleaf.predict.tta import views

    images = np.random.default_rng(0).normal(size=(2, 3, 16, 16)).astype(np.float32)
    for name in ("hflip", "flips", "rot90", "five-crop"):
        ours = tta_views(images, name)
        theirs = views(name)(torch.from_numpy(images))
        assert len(ours) == len(theirs), name
        for a, b in zip(ours, theirs):
            # five-crop resizes back up: Pillow's and torch's bilinear agree to float rounding
            np.testing.assert_allclose(a, b.numpy(), atol=1e-4 if name == "five-crop" else 0)


def test_model_and_checkpoint_together_is_one_line(exported, tiny_data, capsys):
    run, model = exported
    photo = str(load_table(tiny_data).val.paths[0])
    assert main(["predict", photo, "--model", str(model), "--checkpoint", str(run)]) == 2
    assert main(["predict", photo]) == 2
    assert main(["predict", photo, "--model", str(run / "best.pt")]) == 2
    said = capsys.readouterr().out.strip().splitlines()
    assert len(said) == 3 and all(line.startswith("error:") for line in said)


@pytest.mark.slow
def test_on_real_photos_the_export_agrees_with_its_trained_run(shared_data, tmp_path):
    # a small run trained on leafsnap-fg176; every validation photo, both ways
    from fastleaf.config import resolve_config
    from fastleaf.export.onnx_runtime import predict_photos_onnx
    from fastleaf.predict.photos import predict_photos
    from fastleaf.predict.settings import PredictSettings
    from fastleaf.train.trainer import fit

    cfg = resolve_config(data=str(shared_data), model="cnn", img_size=112, epochs=1,
                         batch_size=32, lr=1e-3, augment="none", workers=0, device="cpu",
                         tensorboard=False, progress=False, amp=False, out=str(tmp_path / "r"))
    run = fit(cfg).run_dir
    result = export_run(run, tmp_path / "cnn.onnx", ExportSettings(check=32))
    assert result.parity.top1_agreement == 1.0
    folder = tmp_path / "val"
    folder.mkdir()
    for path in load_table(shared_data, val_fraction=cfg.val_fraction, seed=cfg.seed).val.paths:
        (folder / path.name).symlink_to(path)
    settings = PredictSettings(tta="none", device="cpu", amp=False, workers=0,
                               loader="workers")
    torch_top = predict_photos(folder, [run], settings=settings).top
    onnx_top = predict_photos_onnx(folder, tmp_path / "cnn.onnx").top
    assert len(onnx_top) > 100
    agree = np.mean([a[0][0] == b[0][0] for a, b in zip(torch_top, onnx_top)])
    assert agree == 1.0
    same5 = np.mean([[s for s, _ in a] == [s for s, _ in b] for a, b in zip(torch_top, onnx_top)])
    print(f"{len(onnx_top)} validation photos: top-1 agreement {agree:.1%}, "
          f"same top-5 {same5:.1%}")
