"""Inference from an exported ``.onnx`` file through ONNX Runtime, without torch.

The preprocessing comes from the file's own metadata (:mod:`.model_info`), the outputs are
those of the checkpoint path: a top-k table for one photo, ``image,label,probability`` for a
folder, a checked ``submission.csv`` for test.csv.  Nothing here imports torch (a test runs it
with torch imports blocked), so a machine with ``pip install 'fastleaf[onnx]'`` and no GPU
stack can predict:

    model = OnnxModel("leaf.onnx")
    model.info.classes, model.info.size
    probs = model.probs(batch, tta="flips")          # (B, classes), rows sum to 1
    result = predict_photos_onnx("photos/", "leaf.onnx", out="predictions.csv")
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import MissingExtra, UsageError
from ..predict import DEFAULT_CROP_FRACTION
from ..predict.photo_list import Ranked, find_photos, top_species, write_photo_csv
from ..utils.paths import output_file
from .model_info import (METADATA_KEY, ModelFileError, ModelInfo, load_photo_file, softmax,
                         tta_views)

DEFAULT_BATCH = 32


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise MissingExtra("onnx", "onnxruntime") from None
    return onnxruntime


class OnnxModel:
    """An exported model in an ONNX Runtime session on the CPU, with its :class:`ModelInfo`."""

    def __init__(self, path: str | Path, threads: int | None = None):
        ort = import_onnxruntime()
        self.path = Path(path)
        if not self.path.is_file():
            raise UsageError(f"--model {self.path}: no such file")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(self.path), options,
                                                providers=["CPUExecutionProvider"])
        except Exception as err:   # ORT raises its own types for a damaged or foreign file
            raise ModelFileError(f"{self.path}: ONNX Runtime cannot load it "
                                 f"({str(err).splitlines()[0]})") from None
        record = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        if record is None:
            raise ModelFileError(f"{self.path}: no fastleaf metadata (export it with "
                                 f"fastleaf export)")
        self.info = ModelInfo.from_json(record, str(self.path))

    def logits(self, images: np.ndarray) -> np.ndarray:
        """``(B, 3, S, S)`` float32 -> ``(B, classes)``; a fixed-batch graph gets padded chunks."""
        images = np.ascontiguousarray(images, dtype=np.float32)
        fixed = self.info.fixed_batch
        if fixed is None:
            return self.session.run([self.info.output_name], {self.info.input_name: images})[0]
        out = []
        for start in range(0, len(images), fixed):
            chunk = images[start:start + fixed]
            pad = fixed - len(chunk)
            if pad:
                chunk = np.concatenate([chunk, np.zeros((pad, *chunk.shape[1:]), np.float32)])
            out.append(self.session.run([self.info.output_name],
                                        {self.info.input_name: chunk})[0][:fixed - pad])
        return np.concatenate(out)

    def probs(self, images: np.ndarray, tta: str = "none",
              crop_fraction: float = DEFAULT_CROP_FRACTION) -> np.ndarray:
        """Softmax averaged over the TTA views, as ``fastleaf.predict.tta`` does."""
        views = tta_views(images, tta, crop_fraction)
        return sum(softmax(self.logits(view)) for view in views) / len(views)

    def predict_files(self, files: Sequence[Path], tta: str = "none",
                      crop_fraction: float = DEFAULT_CROP_FRACTION,
                      batch_size: int | None = DEFAULT_BATCH) -> np.ndarray:
        """``(N, classes)`` probabilities for image files, decoded ``batch_size`` at a time."""
        step = max(1, batch_size or DEFAULT_BATCH)
        out = [self.probs(np.stack([load_photo_file(f, self.info) for f in files[i:i + step]]),
                          tta, crop_fraction)
               for i in range(0, len(files), step)]
        return np.concatenate(out) if out else np.zeros((0, len(self.info.classes)), np.float32)


@dataclass
class OnnxPrediction:
    files: list[Path]
    info: ModelInfo
    probs: np.ndarray          # (N, classes)
    seconds: float
    top_k: int = 5

    @property
    def classes(self) -> list[str]:
        return self.info.classes

    @property
    def top(self) -> Ranked:
        return top_species(self.probs, self.classes, self.top_k)

    @property
    def img_per_s(self) -> float:
        return len(self.files) / max(self.seconds, 1e-9)


def predict_photos_onnx(target: str | Path, model: str | Path, *, top: int = 5,
                        tta: str = "none", crop_fraction: float = DEFAULT_CROP_FRACTION,
                        batch_size: int | None = DEFAULT_BATCH,
                        out: str | Path | None = None) -> OnnxPrediction:
    """``predict_photos`` for an exported model: one photo or every photo of a folder."""
    if top < 1:
        raise UsageError(f"--top must be at least 1, got {top}")
    onnx_model = OnnxModel(model)
    files = find_photos(target)
    if out is not None:
        output_file(out, "--out", [*files, onnx_model.path])
    start = time.perf_counter()
    probs = onnx_model.predict_files(files, tta, crop_fraction, batch_size)
    result = OnnxPrediction(files, onnx_model.info, probs, time.perf_counter() - start, top)
    if out is not None:
        write_photo_csv(out, files, result.top, root=Path(target) if Path(target).is_dir()
                        else None)
    return result


def tta_predict_onnx(data_dir, model: str | Path, *, out: str | Path = "submission.csv",
                     tta: str = "none", crop_fraction: float = DEFAULT_CROP_FRACTION,
                     batch_size: int | None = DEFAULT_BATCH,
                     save_probs: str | Path | None = None) -> tuple[OnnxPrediction, Path | None]:
    """test.csv -> a checked submission (and optionally the probabilities), from an export."""
    from ..data.table import data_files
    from ..predict.submission import (probs_format, read_test_samples, require_images,
                                      write_predictions, write_probs)

    if save_probs:
        probs_format(save_probs)
    onnx_model = OnnxModel(model)
    samples = read_test_samples(data_dir)
    inputs = [*data_files(data_dir), onnx_model.path]
    output_file(out, "--out", inputs)
    if save_probs:
        output_file(save_probs, "--save-probs", [*inputs, out])
    require_images(samples)
    start = time.perf_counter()
    probs = onnx_model.predict_files(list(samples.paths), tta, crop_fraction, batch_size)
    result = OnnxPrediction(list(samples.paths), onnx_model.info, probs,
                            time.perf_counter() - start, 1)
    classes = onnx_model.info.classes
    write_predictions(out, data_dir, samples.images, probs, classes)
    probs_file = (write_probs(save_probs, samples.images, probs, classes)
                  if save_probs else None)
    return result, probs_file
