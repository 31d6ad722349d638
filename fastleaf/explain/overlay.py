"""One PNG per image: its class-activation overlay at the image's own size, with the top-3
species and their probabilities.

    fastleaf explain --checkpoint runs/resnet18 leaf.jpg photos/ --out explain/
    paths = explain_images("runs/resnet18", ["leaf.jpg"], "explain/", method="auto")
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..data.imageio import decode_rgb
from ..errors import MissingFileError
from ..viz.plots import colorize
from .cam import heatmap, method_for, target_layer

ALPHA = 0.45              # weight of the heat map in the overlay
TOP = 3
SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


@dataclass
class Explained:
    image: np.ndarray                  # (H, W, 3) uint8: the overlay, the file's own size
    heat: np.ndarray                   # (S, S) float in [0, 1], the model's input grid
    top: list[tuple[str, float]]       # the TOP species and their probabilities


class Explainer:
    """A run's model with its input size, normalisation and CAM layer, ready for images."""

    def __init__(self, run, method: str = "auto"):
        from ..viz.inputs import prepare_image

        self.run, self.prepare = run, prepare_image
        self.model = run.build_model()
        self.size, self.classes = run.data.size, run.classes
        self.method = method_for(self.model, method)
        self.layer_name, self.layer = (None, None) if self.method == "rollout" else \
            target_layer(self.model, self.size)

    def __call__(self, path: Path, class_id: int | None = None) -> Explained:
        """Explain the top-1 species (or ``class_id``) of the image at ``path``."""
        _, x = self.prepare(path, self.size, self.run.data)
        with torch.no_grad():
            probs = torch.softmax(self.model(x).float(), -1)[0]
        best = probs.topk(min(TOP, len(self.classes)))
        top = [(self.classes[i], float(p)) for p, i in zip(best.values, best.indices)]
        target = int(best.indices[0]) if class_id is None else int(class_id)
        heat = heatmap(self.model, x, target, self.method, self.layer)
        pixels = decode_rgb(Path(path)).permute(1, 2, 0).numpy()
        return Explained(blend(pixels, heat), heat, top)


def blend(pixels: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """The heat map (the model's square input grid) stretched back over the original image,
    as the loader stretched the image into it."""
    h, w = pixels.shape[:2]
    resized = torch.nn.functional.interpolate(torch.from_numpy(heat)[None, None], size=(h, w),
                                              mode="bilinear", align_corners=False)[0, 0]
    colour = colorize(resized.clamp(0, 1).numpy(), "jet")
    out = (1 - ALPHA) * pixels.astype(np.float32) / 255.0 + ALPHA * colour
    return (np.clip(out, 0, 1) * 255).round().astype(np.uint8)


def caption(image: np.ndarray, lines: list[str]) -> np.ndarray:
    """Draw ``lines`` in a dark box at the top left, inside the image (its size kept)."""
    from PIL import Image, ImageDraw

    img = Image.fromarray(image)
    draw = ImageDraw.Draw(img)
    height = 11 * len(lines) + 4
    width = min(img.width, 6 * max(len(s) for s in lines) + 6)
    draw.rectangle([0, 0, width, min(height, img.height)], fill=(0, 0, 0))
    for i, line in enumerate(lines):
        draw.text((3, 2 + 11 * i), line, fill=(255, 255, 255))
    return np.asarray(img)


def image_files(inputs) -> list[Path]:
    """Image files named, and the images inside named folders (sorted)."""
    files = []
    for item in map(Path, inputs):
        if item.is_dir():
            files += sorted(p for p in item.iterdir() if p.suffix.lower() in SUFFIXES)
        elif item.is_file():
            files.append(item)
        else:
            raise MissingFileError(f"image or folder not found: {item}")
    if not files:
        raise MissingFileError(f"no images in {', '.join(map(str, inputs))}")
    return files


def explain_images(checkpoint, inputs, out_dir, method: str = "auto") -> list[Path]:
    """Write ``<out_dir>/<image stem>_<method>.png`` for each image; returns the paths."""
    from PIL import Image

    from ..predict.run_folder import open_run
    from ..utils.atomic import atomic_path

    explainer = Explainer(open_run(checkpoint), method)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in image_files(inputs):
        found = explainer(path)
        lines = [f"{name} {p:.1%}" for name, p in found.top]
        target = out_dir / f"{path.stem}_{explainer.method.replace('++', 'pp')}.png"
        with atomic_path(target) as tmp:
            Image.fromarray(caption(found.image, lines)).save(tmp, format="PNG")
        written.append(target)
    return written
