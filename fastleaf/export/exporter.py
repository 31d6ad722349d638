"""``export_run``: a trained run -> one ONNX or TorchScript file that carries its metadata,
checked against PyTorch on the run's own validation photos before it is kept.

    result = export_run("runs/resnet18", "resnet18.onnx")          # ONNX, dynamic batch
    result.parity.max_abs_diff, result.parity.top1_agreement       # e.g. 3e-07, 1.0
    export_run("runs/resnet18", "resnet18.ts", ExportSettings(format="torchscript"))

The file is written to a temp name, checked there, and renamed into place only when the
largest probability difference is within the tolerance and every top-1 agrees; otherwise
nothing is left behind (:class:`ParityFailed`).  ONNX goes through torch's TorchScript-based
exporter (``dynamo=False``): it needs only the ``onnx`` package, no onnxscript, and handles
every built-in model; an operator it cannot convert is one line naming it.
"""
from __future__ import annotations

import hashlib
import re
import warnings
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..errors import MissingExtra, UsageError
from ..predict.run_folder import SavedRun, open_run
from ..utils.atomic import atomic_path
from ..utils.paths import output_file
from .model_info import (INPUT_NAME, METADATA_KEY, OUTPUT_NAME, TORCHSCRIPT_EXTRA,
                         ExportSettings, ModelInfo, load_photo_file, softmax)

FORMATS = ("onnx", "torchscript")


@dataclass
class Parity:
    images: int
    max_abs_diff: float          # largest |torch prob - exported prob| over images x classes
    top1_agreement: float        # fraction of images whose top-1 class is the same

    def line(self) -> str:
        return (f"parity on {self.images} validation images: max |Δprob| "
                f"{self.max_abs_diff:.2e}, top-1 agreement {self.top1_agreement:.1%}")


class ParityFailed(Exception):
    """The exported model disagrees with PyTorch beyond the tolerance (the file is not kept)."""

    def __init__(self, parity: Parity, tolerance: float):
        super().__init__(f"{parity.line()}; above the tolerance {tolerance:g}")
        self.parity = parity


@dataclass
class ExportResult:
    path: Path
    info: ModelInfo
    parity: Parity | None        # None: --check 0


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_info(run: SavedRun, batch: str) -> ModelInfo:
    """The metadata record of ``run``: what its validation loader did to each photo."""
    data = run.data
    # the eval loaders resize the whole photo with antialiased bilinear and crop nothing
    # (models.data_config says why): the export records what was done
    return ModelInfo(model_name=run.model_name, classes=run.classes, size=data.size,
                     mean=tuple(data.mean), std=tuple(data.std), interpolation="bilinear",
                     crop_pct=1.0, fastleaf_version=__version__,
                     checkpoint_sha256=file_sha256(run.path), batch=batch)


def parse_batch(batch: str | int) -> str:
    text = str(batch).strip().lower()
    if text == "dynamic" or (text.isdigit() and int(text) >= 1):
        return text
    raise UsageError(f"--batch {batch}: use 'dynamic' or a whole number >= 1")


def unsupported_op(err: Exception) -> str:
    """The operator an exporter error names, with its reason when it gives one."""
    text = " ".join(str(err).split())
    found = re.search(r"export of operator ([\w:]+)(?:, ([^.\[]+))?", text)    # symbolic error
    if found:
        return found.group(1) + (f" ({found.group(2).strip()})" if found.group(2) else "")
    found = re.search(r"operator '?((?:aten|prim|onnx)::\w+)'?", text)        # unsupported op
    return found.group(1) if found else text[:200]


def write_onnx(model: torch.nn.Module, example: torch.Tensor, path: Path, info: ModelInfo,
               opset: int) -> None:
    """``model`` as ONNX at ``path``, ``info`` in its metadata_props (key ``fastleaf``)."""
    try:
        import onnx
    except ImportError:
        raise MissingExtra("onnx", "onnx") from None
    dynamic = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}
    buffer = BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            # the TorchScript-based exporter is deprecated upstream, still the offline one
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (example,), buffer, dynamo=False, opset_version=opset,
                              input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                              dynamic_axes=dynamic if info.batch == "dynamic" else None,
                              do_constant_folding=True)
    except torch.onnx.errors.OnnxExporterError as err:
        raise UsageError(f"{info.model_name}: torch.onnx cannot export the operator "
                         f"{unsupported_op(err)} at opset {opset}; try another --opset or "
                         f"--format torchscript") from None
    proto = onnx.load_from_string(buffer.getvalue())
    onnx.helper.set_model_props(proto, {METADATA_KEY: info.to_json()})
    path.write_bytes(proto.SerializeToString())


def write_torchscript(model: torch.nn.Module, example: torch.Tensor, path: Path,
                      info: ModelInfo) -> None:
    with warnings.catch_warnings(), torch.no_grad():
        # TorchScript is deprecated upstream but still what C++ and mobile runtimes load;
        # tracer warnings about Python asserts are judged by the parity check instead
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(model, example)
        torch.jit.save(traced, str(path), _extra_files={TORCHSCRIPT_EXTRA: info.to_json()})


def read_torchscript(path: Path):
    """A TorchScript export and its :class:`ModelInfo`."""
    extra = {TORCHSCRIPT_EXTRA: ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    return module.eval(), ModelInfo.from_json(extra[TORCHSCRIPT_EXTRA], str(path))


def exported_logits(path: Path, fmt: str):
    """A function ``(B, 3, S, S) float32 array -> logits array`` reading the written file."""
    if fmt == "onnx":
        from .onnx_runtime import OnnxModel

        return OnnxModel(path).logits
    module, _ = read_torchscript(path)

    def run(images: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(images)).numpy()
    return run


def check_parity(model: torch.nn.Module, path: Path, fmt: str, info: ModelInfo,
                 files: list[Path], batch: int = 16) -> Parity:
    """Run ``files`` through ``model`` and the exported file, prepared the same way."""
    exported = exported_logits(path, fmt)
    ours, theirs = [], []
    for start in range(0, len(files), batch):
        images = np.stack([load_photo_file(f, info) for f in files[start:start + batch]])
        with torch.no_grad():
            ours.append(torch.softmax(model(torch.from_numpy(images)).float(), -1).numpy())
        theirs.append(softmax(exported(images).astype(np.float32)))
    ours, theirs = np.concatenate(ours), np.concatenate(theirs)
    agree = float((ours.argmax(-1) == theirs.argmax(-1)).mean())
    return Parity(len(files), float(np.abs(ours - theirs).max()), agree)


def export_run(checkpoint: str | Path, out: str | Path,
               settings: ExportSettings | None = None, data_dir=None) -> ExportResult:
    """Export a run (a folder or a ``.pt``) to ``out`` and check it against PyTorch.

    Args:
        checkpoint: a run folder (its best.pt) or a checkpoint file.
        out: the file to write (replaced only by a model that passed the check).
        settings: format, batch (``"dynamic"`` or N), opset, check count and tolerance.
        data_dir: the data folder, when the run's recorded one has moved.
    Raises:
        ParityFailed: the exported model disagrees beyond ``settings.tolerance``.
    """
    settings = settings or ExportSettings()
    if settings.format not in FORMATS:
        raise UsageError(f"--format {settings.format}: choose from {', '.join(FORMATS)}")
    batch = parse_batch(settings.batch)
    run = open_run(checkpoint)
    out = output_file(out, "--out", [run.path])
    files = list(run.val_samples(data_dir).paths[:settings.check]) if settings.check else []
    info = model_info(run, batch)
    model = run.build_model("cpu")
    example = torch.zeros(1 if batch == "dynamic" else int(batch), 3, info.size, info.size)
    parity = None
    with atomic_path(out) as tmp:
        if settings.format == "onnx":
            write_onnx(model, example, tmp, info, settings.opset)
        else:
            write_torchscript(model, example, tmp, info)
        if files:
            parity = check_parity(model, tmp, settings.format, info, files)
            if parity.max_abs_diff > settings.tolerance or parity.top1_agreement < 1.0:
                raise ParityFailed(parity, settings.tolerance)
    return ExportResult(out, info, parity)
