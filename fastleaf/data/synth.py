"""A deterministic synthetic leaf data set in the Kaggle "Classify Leaves" layout.

For demos, tests and benchmarks without the 1 GB download::

    from fastleaf.data.synth import make_synthetic
    root = make_synthetic("runs/demo/data", num_classes=10, seed=0)
    # root/images/0.jpg ..., root/train.csv (image,label), root/test.csv (image),
    # root/sample_submission.csv, root/README.md

Each class fixes a shape (elliptic, ovate, obovate, lanceolate, orbicular, cordate,
palmate-lobed), a margin (smooth, serrated, wavy), an aspect ratio, a lobe count and a base
colour; each image adds rotation, scale, position, colour jitter, a paper background, a shadow,
a stem, veins and pixel noise.  Class ``i`` (``CLASS_NAMES[i]``) takes shape ``i % 7``, colour
``i % 11`` and margin ``i % 3``: 7, 11 and 3 are coprime, so neighbouring classes differ in all
three, all 176 (shape, colour, margin) triples are distinct, and classes sharing a shape and a
colour also differ in aspect ratio (and lobe count).  Bytes are reproducible for a given Pillow
/ libjpeg build; another build may encode the same pixels slightly differently.
"""
from __future__ import annotations

import csv
import math
from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..config import MAX_IMG_SIZE
from ..errors import OutputExistsError, UsageError
from ..utils.atomic import writing

# Real Leafsnap / Classify Leaves species, so the synthetic labels look like the real ones.
_SPECIES = {
    "abies": "concolor nordmanniana", "acer": "campestre ginnala griseum negundo palmatum "
    "pensylvanicum platanoides pseudoplatanus rubrum saccharinum saccharum",
    "aesculus": "flava glabra hippocastamon pavi", "ailanthus": "altissima",
    "albizia": "julibrissin", "amelanchier": "arborea canadensis laevis", "asimina": "triloba",
    "betula": "alleghaniensis jacqemontii lenta nigra populifolia",
    "broussonettia": "papyrifera", "carpinus": "betulus caroliniana",
    "carya": "cordiformis glabra ovata tomentosa", "castanea": "dentata",
    "catalpa": "bignonioides speciosa", "cedrus": "atlantica deodara libani",
    "celtis": "occidentalis tenuifolia", "cercidiphyllum": "japonicum", "cercis": "canadensis",
    "chamaecyparis": "pisifera thyoides", "chionanthus": "retusus virginicus",
    "cladrastis": "lutea", "cornus": "florida kousa mas", "corylus": "colurna",
    "crataegus": "laevigata phaenopyrum pruinosa viridis", "cryptomeria": "japonica",
    "diospyros": "virginiana", "eucommia": "ulmoides", "evodia": "daniellii",
    "fagus": "grandifolia", "ficus": "carica", "fraxinus": "nigra pennsylvanica",
    "ginkgo": "biloba", "gleditsia": "triacanthos", "gymnocladus": "dioicus",
    "halesia": "tetraptera", "ilex": "opaca", "juglans": "cinerea nigra",
    "juniperus": "virginiana", "koelreuteria": "paniculata", "larix": "decidua",
    "liquidambar": "styraciflua", "liriodendron": "tulipifera", "maclura": "pomifera",
    "magnolia": "acuminata denudata grandiflora macrophylla stellata tripetala virginiana",
    "malus": "angustifolia baccata coronaria floribunda hupehensis pumila",
    "metasequoia": "glyptostroboides", "morus": "alba rubra", "nyssa": "sylvatica",
    "ostrya": "virginiana", "oxydendrum": "arboreum", "paulownia": "tomentosa",
    "phellodendron": "amurense", "picea": "abies orientalis pungens",
    "pinus": "bungeana cembra densiflora echinata flexilis koraiensis nigra parviflora "
    "peucea pungens resinosa rigida strobus sylvestris taeda thunbergii virginiana wallichiana",
    "platanus": "acerifolia occidentalis", "populus": "deltoides grandidentata tremuloides",
    "prunus": "pensylvanica sargentii serotina serrulata subhirtella virginiana yedoensis",
    "pseudolarix": "amabilis", "ptelea": "trifoliata", "pyrus": "calleryana",
    "quercus": "acutissima alba bicolor cerris coccinea imbricaria macrocarpa marilandica "
    "michauxii montana muehlenbergii nigra palustris phellos robur shumardii stellata "
    "velutina virginiana",
    "salix": "babylonica caroliniana matsudana nigra", "sassafras": "albidum",
    "staphylea": "trifolia", "stewartia": "pseudocamellia", "styrax": "japonica obassia",
    "syringa": "reticulata", "taxodium": "distichum", "tilia": "americana cordata europaea",
    "toona": "sinensis", "tsuga": "canadensis", "ulmus": "americana glabra parvifolia procera "
    "pumila rubra", "zelkova": "serrata",
}
# Broad-leaved genera first (the real competition has few conifers), then cut to 176.
_CONIFERS = ("abies", "cedrus", "chamaecyparis", "cryptomeria", "juniperus", "larix",
             "metasequoia", "picea", "pinus", "pseudolarix", "taxodium", "tsuga")
CLASS_NAMES: list[str] = sorted(
    [f"{g}_{s}" for g, sp in _SPECIES.items() for s in sp.split()],
    key=lambda n: (n.split("_")[0] in _CONIFERS, n))[:176]
CLASS_NAMES.sort()

_SHAPES = ("elliptic", "ovate", "obovate", "lanceolate", "orbicular", "cordate", "palmate")
_WIDTH = (0.5, 0.62, 0.55, 0.26, 0.92, 0.75, 0.95)        # half-width / half-length per shape
_MARGINS = ("smooth", "serrated", "wavy")
_COLOURS = np.array([(34, 100, 34), (70, 160, 50), (150, 205, 60), (120, 120, 35),
                     (35, 130, 115), (225, 195, 40), (230, 125, 30), (190, 40, 30),
                     (115, 30, 75), (125, 80, 40), (140, 165, 140)], dtype=np.float64)
_ASPECT = (0.8, 1.0, 1.2, 0.9)
_MARKER = "generated by `fastleaf synth`"
_N = 360                                                     # outline points per leaf


def _outline(cls: int) -> tuple[np.ndarray, tuple[float, float]]:
    """Unit leaf of class ``cls``: (N, 2) outline, tip up at (0, 1), and the stem's base point.

    The parameter ``t`` starts at the tip and x = f(t) * sin(t), so points with x < 0 are one
    contiguous half of the leaf -- used for the two-tone shading."""
    shape, margin = cls % 7, cls % 3
    width = _WIDTH[shape] * _ASPECT[(cls // 7) % 4]
    t = np.linspace(0.0, 2 * math.pi, _N, endpoint=False)
    s, c = np.sin(t), np.cos(t)
    base = (0.0, -1.0)
    if _SHAPES[shape] == "cordate":                          # classic heart curve, point up
        x, y = 16 * s**3, -(13 * c - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
        x, y, base = x / 14.5, (y - 2.5) / 14.5, (0.0, -7.5 / 14.5)
    elif _SHAPES[shape] == "palmate":                        # odd lobe count: a sinus at the base
        lobes = (3, 5, 7)[(cls // 7) % 3]
        r = 1 - 0.55 * ((1 - np.cos(lobes * t)) / 2) ** 0.6
        x, y, base = r * s, r * c, (0.0, -0.45)
    elif _SHAPES[shape] == "lanceolate":                     # x ~ sin|sin|: pointed ends
        x, y = s * np.abs(s) * (1 - 0.25 * c), c
    else:                                                    # ovate/obovate widen one end
        x, y = s * (1 + {1: -0.3, 2: 0.3}.get(shape, 0.0) * c), c
    x = x * width
    if _MARGINS[margin] == "serrated":                       # sawtooth: forward-leaning teeth
        k = 1 + 0.05 * ((t * 48 / (2 * math.pi)) % 1.0)
    elif _MARGINS[margin] == "wavy":
        k = 1 + 0.06 * np.sin(t * 12)
    else:
        k = 1.0
    return np.stack([x * k, y * k], axis=1), base


def _draw_leaf(cls: int, size: int, rng: np.random.Generator, quality: int) -> bytes:
    """One JPEG; every random draw comes from ``rng`` in a fixed order (determinism)."""
    S = 2                                                    # supersample for smooth edges
    W = size * S
    pts, base = _outline(cls)
    pts = pts * np.array([rng.uniform(0.93, 1.07), 1.0])     # small per-image aspect jitter
    angle = rng.uniform(-0.6, 0.6)                           # ~ +-35 degrees
    half_len = 0.34 * W * rng.uniform(0.85, 1.05)
    centre = W / 2 + rng.uniform(-0.07, 0.07, 2) * W - np.array([0, 0.04 * W])
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])

    def to_px(p: np.ndarray, shift=0.0) -> list[float]:   # leaf -> image coords, y down
        q = (np.atleast_2d(p) @ rot.T) * half_len * np.array([1.0, -1.0]) + centre + shift
        return q.ravel().tolist()                            # flat list: fast for ImageDraw

    colour = _COLOURS[cls % 11] * rng.uniform(0.92, 1.08) + rng.normal(0, 6, 3)
    paper = 238 + rng.uniform(-10, 10) + rng.normal(0, 3, 3) + np.array([0, -2, -8])
    shade = rng.choice([-1.0, 1.0])                          # which half lies in the light

    def rgb(v: np.ndarray) -> tuple[int, int, int]:
        return tuple(int(x) for x in np.clip(v, 0, 255))

    img = Image.new("RGB", (W, W), rgb(paper))
    d = ImageDraw.Draw(img)
    d.polygon(to_px(pts, np.array([0.012, 0.018]) * W), fill=rgb(paper * 0.82))  # shadow
    stem_end = np.array(base) + np.array([rng.uniform(-0.08, 0.08), -0.3])
    d.line(to_px(np.array([base, stem_end])), fill=rgb(colour * 0.55 + [40, 25, 5]),
           width=3 * S)
    d.polygon(to_px(pts), fill=rgb(colour))
    d.polygon(to_px(pts[pts[:, 0] * shade < 0]), fill=rgb(colour * 0.85))     # two-tone
    vein = rgb(colour * 0.6 + np.array([230, 230, 170]) * 0.4)
    if _SHAPES[cls % 7] == "palmate":                        # veins fan out to the lobe tips
        lobes = (3, 5, 7)[(cls // 7) % 3]
        for i in range(lobes):
            tip = pts[int(round(i * _N / lobes)) % _N] * 0.85
            d.line(to_px(np.array([base, tip])), fill=vein, width=S + (i == 0) * S)
    else:                                                    # midrib + pinnate laterals
        d.line(to_px(np.array([base, (0.0, 0.95)])), fill=vein, width=2 * S)
        for j in np.linspace(0.12, 0.4, 5) * _N:             # right side; mirror for left
            for p in (pts[int(j)], pts[_N - int(j)]):
                start = np.array([0.0, np.clip(p[1] - 0.6 * abs(p[0]), base[1], 0.9)])
                d.line(to_px(np.array([start, start + 0.85 * (p - start)])), fill=vein, width=S)
    small = np.asarray(img.reduce(S), dtype=np.int16)
    # Grey grain (one plane broadcast over RGB): a third of the cost of per-channel noise.
    noise = rng.integers(-6, 7, (size, size, 1), dtype=np.int16)
    out = Image.fromarray(np.clip(small + noise, 0, 255).astype(np.uint8), "RGB")
    buf = BytesIO()
    out.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _check_target(out: Path) -> None:
    """Refuse to mix synthetic files into someone's folder; a previous synth output is fine."""
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        readme = out / "README.md"
        if not (readme.is_file() and _MARKER in readme.read_text(errors="replace")):
            raise OutputExistsError(f"{out}: folder is not empty and is not a previous "
                                  f"`fastleaf synth` output; choose an empty or new folder")


def make_synthetic(out_dir, *, num_classes: int = 10, train_per_class: int = 20,
                   test_per_class: int = 4, size: int = 224, seed: int = 0,
                   quality: int = 90) -> Path:
    """Write the synthetic data set to ``out_dir`` and return it as a Path.

    Images ``0 .. N-1`` are train (labels shuffled, as in Kaggle), ``N ..`` test.  The same
    arguments give byte-identical files: image ``i`` draws from ``Generator([seed, 0, i])``."""
    if not 2 <= num_classes <= len(CLASS_NAMES):
        raise UsageError(f"num_classes must be 2..{len(CLASS_NAMES)}, got {num_classes}")
    if train_per_class < 1 or test_per_class < 0 or seed < 0:
        raise UsageError("need train_per_class >= 1, test_per_class >= 0, seed >= 0")
    if not 16 <= size <= MAX_IMG_SIZE:
        # the training input's bound: a larger image is drawn in memory at once
        raise UsageError(f"--img-size must be 16..{MAX_IMG_SIZE}, got {size}")
    out = Path(out_dir)
    _check_target(out)
    with writing(out):
        _write_synthetic(out, num_classes, train_per_class, test_per_class, size, seed, quality)
    return out


def _write_synthetic(out: Path, num_classes: int, train_per_class: int, test_per_class: int,
                     size: int, seed: int, quality: int) -> None:
    (out / "images").mkdir(parents=True, exist_ok=True)
    # README first: an interrupted run still carries the marker and may be overwritten.
    (out / "README.md").write_text(
        f"# Synthetic Classify Leaves data set\n\nProcedurally drawn leaves, {_MARKER} "
        f"(num_classes={num_classes}, train_per_class={train_per_class}, "
        f"test_per_class={test_per_class}, size={size}, seed={seed}).\nNot real data: "
        f"for demos, tests and benchmarks only. Layout as the Kaggle competition.\n")
    for old in (out / "images").glob("*.jpg"):             # stale images of a larger run
        if old.stem.isdigit():
            old.unlink()

    names = CLASS_NAMES[:num_classes]
    order = np.random.default_rng([seed, 1])                 # label order, separate stream
    train = order.permutation(np.repeat(np.arange(num_classes), train_per_class))
    test = order.permutation(np.repeat(np.arange(num_classes), test_per_class))
    labels = np.concatenate([train, test]).astype(int)
    for i, cls in enumerate(labels):
        rng = np.random.default_rng([seed, 0, i])
        (out / "images" / f"{i}.jpg").write_bytes(_draw_leaf(cls, size, rng, quality))

    def write(name: str, header: list[str], rows) -> None:
        with open(out / name, "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(header)
            w.writerows(rows)

    n = len(train)
    write("train.csv", ["image", "label"], ((f"images/{i}.jpg", names[c])
                                            for i, c in enumerate(train)))
    write("test.csv", ["image"], ([f"images/{n + i}.jpg"] for i in range(len(test))))
    write("sample_submission.csv", ["image", "label"],
          ((f"images/{n + i}.jpg", names[0]) for i in range(len(test))))
