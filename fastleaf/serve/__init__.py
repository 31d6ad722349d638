"""``fastleaf serve``: a page to drop a leaf photo on and a JSON API, over one model.

``predictor`` loads an exported ``.onnx`` (ONNX Runtime, no torch) or a run (PyTorch) behind
one interface; ``app`` is the FastAPI application (``GET /``, ``GET /health``, ``GET /classes``,
``POST /predict`` with the image bytes as the body); ``page`` holds the HTML.  The defaults live
here, free of FastAPI, so the CLI parser builds without the ``[serve]`` extra.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServeSettings:
    host: str = "127.0.0.1"          # loopback: other machines reach it only when told to
    port: int = 8000
    max_upload_mb: float = 10.0      # a request body above this is refused unread (413)
    top: int = 5                     # species per answer

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)
