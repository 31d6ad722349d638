"""One interface over the two kinds of model the server can hold.

    predictor = load_predictor("resnet18.onnx")        # ONNX Runtime; torch is not imported
    predictor = load_predictor("runs/resnet18")        # a run folder or best.pt: PyTorch
    classify(predictor, photo_bytes, top=5)            # [("acer_rubrum", 0.91), ...]

Both prepare the photo from the same :class:`~fastleaf.export.model_info.ModelInfo` record
(through the pixel-limit checks of the shared decoder), so the answer does not depend on which
kind is served.  The model itself runs one request at a time (a lock): decoding overlaps, the
forward passes do not, which bounds the memory a burst of uploads can take.
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from ..export.model_info import ModelInfo, load_photo
from ..predict.photo_list import top_species


class TorchPredictor:
    """A run's model in PyTorch (fp32, eval mode, CPU)."""

    def __init__(self, path: str | Path):
        from ..export.exporter import model_info
        from ..predict.run_folder import open_run

        run = open_run(path)
        self.info: ModelInfo = model_info(run, "dynamic")
        self.model = run.build_model("cpu")

    def probs(self, images: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            return torch.softmax(self.model(torch.from_numpy(images)).float(), -1).numpy()


class OnnxPredictor:
    def __init__(self, path: str | Path):
        from ..export.onnx_runtime import OnnxModel

        self.model = OnnxModel(path)
        self.info: ModelInfo = self.model.info

    def probs(self, images: np.ndarray) -> np.ndarray:
        return self.model.probs(images)


def load_predictor(path: str | Path):
    """An ``.onnx`` file -> :class:`OnnxPredictor`; anything else is read as a run."""
    if Path(path).suffix.lower() == ".onnx":
        return OnnxPredictor(path)
    return TorchPredictor(path)


_MODEL_LOCK = threading.Lock()


def classify(predictor, data: bytes, top: int = 5) -> list[tuple[str, float]]:
    """The ``top`` most likely species in one photo's bytes.

    Raises:
        ImageDecodeError, ImageTooLarge: the upload is not a usable image (named ``upload``).
    """
    image = load_photo(data, "upload", predictor.info)[None]     # (1, 3, S, S)
    with _MODEL_LOCK:
        probs = predictor.probs(image)
    return top_species(probs, predictor.info.classes, top)[0]
