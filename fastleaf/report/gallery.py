"""The report's top-losses gallery and most-confused pairs with thumbnails of both species.

    sections, written = gallery_sections(run, "report/", device="cpu")
    # -> report/top_losses_<run>.png    the N validation images with the highest loss, each
    #                                   with its class-activation overlay, true and predicted
    #                                   species and the predicted probability
    #    report/pair_thumbs_<run>.png   each confused pair: a training image of either species

After fastai's ``plot_top_losses`` and ``most_confused``.  The predictions are the run's
best.pt over its own validation split (:func:`fastleaf.viz.confusion.validation_predictions`'s
settings); the overlays are :mod:`fastleaf.explain` ones (Grad-CAM, or rollout for ViTs), left
out with a note when the ``[explain]`` extra is missing.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.imageio import ImageDecodeError, decode_rgb
from ..errors import UsageError
from ..explain.overlay import Explainer
from ..predict.ensemble import Member, PredictSettings, ensemble_probs
from ..predict.run_folder import open_run
from ..viz.confusion import confused_pairs, confusion
from ..viz.plots import pyplot, save_figure
from ..viz.render import Section

LOSS_COLUMNS = ("image", "true", "pred", "prob", "loss")
TILE_IN = 2.4            # inches per gallery tile


def predictions(run, device: str, workers: int):
    """``(validation samples, probabilities (N, C), SavedRun)`` of the run's best.pt."""
    saved = open_run(run.path)
    samples = saved.table(run.config.data).val
    settings = PredictSettings(tta="none", batch_size=None, device=device, amp=None,
                               amp_dtype=None, channels_last=None, loader="workers",
                               workers=workers)
    out = ensemble_probs([Member(saved)], samples, settings)["none"]
    return samples, out.probs.numpy(), saved


def top_losses(probs: np.ndarray, labels: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, losses)``: the ``n`` rows with the highest cross-entropy, highest first."""
    loss = -np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None))
    rows = np.argsort(-loss, kind="stable")[:n]
    return rows, loss[rows]


def explainer_for(saved):
    """The run's explainer, or ``(None, why)`` when no overlay can be drawn."""
    try:
        return Explainer(saved), ""
    except UsageError as err:
        return None, f" (no overlays: {err})"


def tile(path: Path, explainer) -> np.ndarray | None:
    """The image with its overlay, or plain; None when it cannot be read."""
    try:
        return explainer(path).image if explainer is not None else \
            decode_rgb(path).permute(1, 2, 0).numpy()
    except ImageDecodeError:
        return None


def grid_figure(tiles: list[tuple[np.ndarray | None, str]], cols: int, path: Path) -> Path:
    """Tiles with a caption each, ``cols`` to a row."""
    plt = pyplot()
    rows = max(1, -(-len(tiles) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * TILE_IN, rows * (TILE_IN + 0.4)),
                             squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (image, text) in zip(axes.ravel(), tiles):
        if image is not None:
            ax.imshow(image)
        ax.set_title(text, fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


def loss_gallery(samples, probs, saved, n: int, path: Path) -> tuple[list[dict], str, Path]:
    rows, losses = top_losses(probs, samples.labels, n)
    explainer, why = explainer_for(saved)
    classes, table, tiles = saved.classes, [], []
    for r, loss in zip(rows, losses):
        pred = int(probs[r].argmax())
        table.append({"image": samples.images[r], "true": classes[samples.labels[r]],
                      "pred": classes[pred], "prob": float(probs[r, pred]),
                      "loss": float(loss)})
        tiles.append((tile(samples.paths[r], explainer),
                      f"{samples.images[r]}\ntrue {classes[samples.labels[r]]}\n"
                      f"pred {classes[pred]} {probs[r, pred]:.2f}  loss {loss:.2f}"))
    method = "" if explainer is None else f", {explainer.method} overlay"
    return table, f"{method}{why}", grid_figure(tiles, 4, path)


def pairs_thumbnails(pairs: list[dict], table, path: Path) -> Path:
    """Each pair as a row: a training image of the true species, one of the predicted."""
    first = {}
    for p, label in zip(table.train.paths, table.train.labels):
        first.setdefault(table.classes[label], p)
    tiles = []
    for pair in pairs:
        for side, name in (("true", pair["true"]), ("predicted as", pair["pred"])):
            image = tile(first[name], None) if name in first else None
            tiles.append((image, f"{side}: {name}\n{pair['count']} x ({pair['share']:.0%})"))
    return grid_figure(tiles, 2, path)


def gallery_sections(run, out_dir, *, device: str = "auto", workers: int = 0, n: int = 12,
                     top_pairs: int = 10, tag: str | None = None) -> tuple[list[Section], dict]:
    """The top-losses gallery and the thumbnailed confused pairs of ``run`` (a report Run)."""
    out_dir, tag = Path(out_dir), tag or run.name
    samples, probs, saved = predictions(run, device, workers)
    rows, why, gallery = loss_gallery(samples, probs, saved, n,
                                      out_dir / f"top_losses_{tag}.png")
    cm = confusion(samples.labels, probs.argmax(1), len(saved.classes))
    pairs = confused_pairs(cm, saved.classes, top_pairs)
    thumbs = pairs_thumbnails(pairs, saved.table(run.config.data),
                              out_dir / f"pair_thumbs_{tag}.png")
    return ([Section(f"Top losses of {run.name}", f"The {len(rows)} validation images with the "
                     f"highest loss{why}.", LOSS_COLUMNS, rows, [gallery]),
             Section(f"Most confused pairs of {run.name}, with thumbnails",
                     "Left: a training image of the true species; right: one of the species "
                     "it was taken for.", images=[thumbs])],
            {f"top_losses_{tag}": gallery, f"pair_thumbs_{tag}": thumbs})
