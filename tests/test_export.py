"""fastleaf export: each paper model round-trips through ONNX with its metadata and agrees with
PyTorch; TorchScript too; a disagreeing export is not kept; unexportable ops are one line."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fastleaf.cli import main
from fastleaf.config import TrainConfig, save_config
from fastleaf.data.table import load_table
from fastleaf.errors import FastleafError, MissingExtra
from fastleaf.export import exporter
from fastleaf.export.exporter import (ParityFailed, export_run, file_sha256, read_torchscript,
                                      write_onnx)
from fastleaf.export.model_info import ExportSettings, ModelInfo, load_photo_file
from fastleaf.models import create_model
from fastleaf.train.checkpoint import save_checkpoint

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

# the smallest input each model runs at (DeiT's patch grid is fixed at 224)
SIZES = {"cnn": 112, "resnet18": 64, "vgg16": 224, "deit_tiny": 224, "tf_efficientnet_lite0": 64}


def write_run(folder, data, model: str, seed: int = 0):
    """A run folder as training leaves it, with an untrained model's weights."""
    torch.manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    classes = load_table(data).classes
    config = TrainConfig.from_dict(dict(data=str(data), model=model, img_size=SIZES[model],
                                        mean=[0.5, 0.4, 0.3], std=[0.2, 0.25, 0.3],
                                        channels_last=False))
    save_config(config, folder / "config.yaml")
    net = create_model(model, len(classes))
    # untrained heads give near-uniform probabilities: sharpen them so parity means something
    with torch.no_grad():
        for p in net.parameters():
            if p.dim() == 2:
                p.mul_(4.0)
    save_checkpoint(folder / "best.pt", {"model_name": model, "model": net.state_dict(),
                                         "classes": classes, "config": config.to_dict(),
                                         "epoch": 1, "metrics": {}, "best_score": 0.0})
    return folder


@pytest.fixture(scope="module")
def cnn_run(tiny_data, tmp_path_factory):
    return write_run(tmp_path_factory.mktemp("export") / "cnn", tiny_data, "cnn")


def exported_probs(path, files):
    from fastleaf.export.onnx_runtime import OnnxModel

    model = OnnxModel(path)
    return model, model.predict_files(files)


@pytest.mark.parametrize("model", [
    "cnn", "resnet18",
    pytest.param("deit_tiny", marks=pytest.mark.slow),
    pytest.param("tf_efficientnet_lite0", marks=pytest.mark.slow),
    pytest.param("vgg16", marks=pytest.mark.slow),     # 500 MB of weights
])
def test_each_model_round_trips_through_onnx_with_its_metadata(model, tiny_data, tmp_path):
    run = write_run(tmp_path / model, tiny_data, model)
    out = tmp_path / f"{model}.onnx"
    result = export_run(run, out, ExportSettings(check=6))
    print(f"{model}: {result.parity.line()}")
    assert result.parity.images == 6
    assert result.parity.max_abs_diff < 1e-4 and result.parity.top1_agreement == 1.0
    onnx_model, probs = exported_probs(out, list(load_table(tiny_data).val.paths[:3]))
    info = onnx_model.info
    assert info.model_name == model and info.classes == load_table(tiny_data).classes
    assert (info.size, info.mean, info.std) == (SIZES[model], (0.5, 0.4, 0.3), (0.2, 0.25, 0.3))
    assert info.checkpoint_sha256 == file_sha256(run / "best.pt")
    # the file alone reproduces the run's PyTorch probabilities
    from fastleaf.predict.run_folder import open_run

    net = open_run(run).build_model("cpu")
    images = np.stack([load_photo_file(f, info) for f in load_table(tiny_data).val.paths[:3]])
    with torch.no_grad():
        expected = torch.softmax(net(torch.from_numpy(images)), -1).numpy()
    np.testing.assert_allclose(probs, expected, atol=1e-4)


def test_torchscript_carries_the_same_record(cnn_run, tmp_path):
    out = tmp_path / "cnn.ts"
    result = export_run(cnn_run, out, ExportSettings(format="torchscript", check=4))
    assert result.parity.top1_agreement == 1.0
    module, info = read_torchscript(out)
    assert info == result.info and info.size == 112
    x = torch.randn(2, 3, 112, 112)
    from fastleaf.predict.run_folder import open_run

    with torch.no_grad():
        torch.testing.assert_close(module(x), open_run(cnn_run).build_model()(x))


def test_a_fixed_batch_graph_pads_the_last_chunk(cnn_run, tmp_path, tiny_data):
    files = list(load_table(tiny_data).val.paths[:5])
    export_run(cnn_run, tmp_path / "dyn.onnx", ExportSettings(check=0))
    export_run(cnn_run, tmp_path / "b2.onnx", ExportSettings(batch="2", check=3))
    fixed, fixed_probs = exported_probs(tmp_path / "b2.onnx", files)
    assert fixed.info.fixed_batch == 2
    assert fixed.session.get_inputs()[0].shape[0] == 2        # the graph really is fixed
    _, dynamic_probs = exported_probs(tmp_path / "dyn.onnx", files)
    np.testing.assert_allclose(fixed_probs, dynamic_probs, atol=1e-6)


def test_a_disagreeing_export_is_not_kept_and_exits_1(cnn_run, tmp_path, monkeypatch, capsys):
    real = exporter.write_onnx

    def perturbed(model, example, path, info, opset):
        # the graph written is not the model checked against: what a broken converter does
        other = create_model("cnn", len(info.classes))
        return real(other.eval(), example, path, info, opset)

    out = tmp_path / "model.onnx"
    out.write_bytes(b"previous export")
    monkeypatch.setattr(exporter, "write_onnx", perturbed)
    with pytest.raises(ParityFailed):
        export_run(cnn_run, out, ExportSettings(check=4))
    code = main(["export", "--checkpoint", str(cnn_run), "--out", str(out), "--check", "4"])
    assert code == 1
    said = capsys.readouterr().out
    assert "parity failed" in said and "top-1 agreement" in said and "not written" in said
    assert out.read_bytes() == b"previous export"          # the old file is left as it was
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]   # no temp file behind


class Bessel(torch.nn.Module):
    def forward(self, x):
        return torch.special.bessel_j0(x).mean((2, 3))


@pytest.mark.parametrize("module, size, named", [
    (Bessel(), 8, "aten::special_bessel_j0"),
    # vgg16's 7x7 pooling on a 64 px input: the exporter's symbolic error, with its reason
    (torch.nn.AdaptiveAvgPool2d(7), 2, "adaptive_avg_pool2d (output size that are not factor"),
])
def test_an_operator_onnx_cannot_export_is_named_in_one_line(tmp_path, module, size, named):
    info = ModelInfo("odd", ["a", "b", "c"], size, (0.5,) * 3, (0.5,) * 3)
    with pytest.raises(FastleafError) as caught:
        write_onnx(module, torch.zeros(1, 3, size, size), tmp_path / "odd.onnx", info, 17)
    message = str(caught.value)
    assert f"cannot export the operator {named}" in message and "\n" not in message
    assert len(message) < 300 and not (tmp_path / "odd.onnx").exists()


def test_the_cli_exports_and_says_the_parity(cnn_run, tmp_path, capsys):
    out = tmp_path / "cnn.onnx"
    assert main(["export", "--checkpoint", str(cnn_run / "best.pt"), "--out", str(out),
                 "--check", "3"]) == 0
    said = capsys.readouterr().out
    assert "parity on 3 validation images" in said and "top-1 agreement 100.0%" in said
    assert out.is_file()
    assert main(["export", "--checkpoint", str(cnn_run), "--out", str(out),
                 "--batch", "zero"]) == 2


def test_a_missing_runtime_is_one_line_naming_the_extra(cnn_run, tmp_path, monkeypatch):
    import sys

    from fastleaf.export.onnx_runtime import OnnxModel

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingExtra, match=r"pip install 'fastleaf\[onnx\]'"):
        OnnxModel(tmp_path / "any.onnx")
