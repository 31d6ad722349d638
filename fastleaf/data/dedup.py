"""Near-duplicate images: a perceptual hash (pHash) and the pairs it links.

A resized, re-encoded or slightly recoloured copy of a photo keeps its hash within a few bits,
where byte hashes (``check-data``'s exact-copy rule) miss it.  Two uses:

* ``fastleaf check-data --near-duplicates``: train/train pairs with conflicting labels (one of
  them is mislabelled, or the classes look alike), train/train copies, and test images that are
  copies of train images (their label is known);
* k-fold training keeps each group of near-copies inside one fold (``StratifiedGroupKFold``),
  so a validation image never has its twin in the training folds and CV is not inflated.

    groups = near_duplicate_groups(table.all_train.paths)        # one group id per row
    pairs = find_near_duplicates("data/classify-leaves")         # fastleaf.data.near_duplicates

This module hashes and pairs images and knows nothing of data folders (the table calls it);
:mod:`fastleaf.data.near_duplicates` names the pairs of a folder's CSV rows.

pHash after Krawetz, "Looks like it" (hackerfactor.com, 2011) and the ``imagehash`` package:
grey, shrink to 4*size squared, 2-D DCT, one bit per low-frequency coefficient above their
median.  A difference hash (dHash) was tried first and rejected: on the black backgrounds of
leaf photos its flat regions all hash alike, and different thin leaves landed 0-4 bits apart.
On leafsnap-fg176 pHash-256 puts the two real copies at 0 and 2 bits and every other pair at
30 or more; a resized copy hashes 0 bits away, a JPEG re-encoded at quality 60 2 bits.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO
from pathlib import Path

import numpy as np

from .check_images import reader_threads
from .imageio import ImageDecodeError, pillow_rgb, probe, read_bytes

HASH_SIZE = 16            # 16 x 16 = 256 bits: no chance collisions among plain-background leaves
MAX_DISTANCE = 16         # differing bits (of 256) still called the same picture
_CACHE: dict[tuple, np.ndarray | None] = {}


def phash(path: str | Path, hash_size: int = HASH_SIZE) -> np.ndarray | None:
    """``hash_size**2`` bits packed into uint64 words, or None for an unreadable file."""
    from PIL import Image
    from scipy.fft import dctn

    side = hash_size * 4
    try:
        # the shared decoder's rules: a regular file, within the pixel limit
        data = read_bytes(Path(path))
        probe(data, Path(path))
        with Image.open(BytesIO(data)) as img:
            img.draft("L", (side, side))      # JPEG: decode at a reduced scale, much faster
            if img.mode not in ("L", "RGB"):  # 16-bit, CMYK, palette: as every decode sees it
                img = Image.fromarray(pillow_rgb(img))
            small = img.convert("L").resize((side, side), Image.BILINEAR)
    except (ImageDecodeError, OSError, ValueError, Image.DecompressionBombError):
        return None
    low = dctn(np.asarray(small, dtype=np.float64), norm="ortho")[:hash_size, :hash_size]
    return np.packbits((low > np.median(low)).ravel()).view(np.uint64).copy()


def _cached_hash(path: Path, hash_size: int) -> np.ndarray | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    key = (str(path), st.st_mtime_ns, st.st_size, hash_size)
    if key not in _CACHE:
        _CACHE[key] = phash(path, hash_size)
    return _CACHE[key]


def image_hashes(paths, hash_size: int = HASH_SIZE,
                 workers: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(hashes (N, words) uint64, readable (N,) bool)``; unreadable files hash to zeros."""
    paths = [Path(p) for p in paths]
    # Pillow decodes without holding the GIL
    with ThreadPoolExecutor(reader_threads(workers)) as pool:
        found = list(pool.map(lambda p: _cached_hash(p, hash_size), paths))
    words = hash_size * hash_size // 64
    hashes = np.zeros((len(paths), words), dtype=np.uint64)
    readable = np.array([h is not None for h in found], dtype=bool)
    for i, h in enumerate(found):
        if h is not None:
            hashes[i] = h
    return hashes, readable


def popcount(words: np.ndarray) -> np.ndarray:
    """Set bits per uint64 (numpy >= 2 has it built in; older numpy counts bytes)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(words)
    as_bytes = np.unpackbits(words.view(np.uint8), axis=-1)
    return as_bytes.reshape(*words.shape, 64).sum(-1)


def near_pairs(hashes: np.ndarray, max_distance: int = MAX_DISTANCE,
               readable: np.ndarray | None = None) -> np.ndarray:
    """``(P, 3)`` int64 rows ``(i, j, distance)`` with ``i < j`` and distance <= ``max_distance``.

    Every pair is compared (N^2 popcounts in blocks of about 4M words): 27k images take
    seconds, and no approximate index can miss a pair.
    """
    n = len(hashes)
    chunk = max(1, 4_000_000 // max(1, n * hashes.shape[1]))
    readable = np.ones(n, dtype=bool) if readable is None else readable
    out = []
    for start in range(0, n, chunk):
        block = hashes[start:start + chunk]                               # (B, W)
        dist = popcount(block[:, None, :] ^ hashes[None, :, :]).sum(-1)   # (B, N)
        i, j = np.nonzero(dist <= max_distance)
        i = i + start
        keep = (i < j) & readable[i] & readable[j]
        out.append(np.stack([i[keep], j[keep], dist[i[keep] - start, j[keep]]], axis=1))
    return np.concatenate(out).astype(np.int64) if out else np.zeros((0, 3), dtype=np.int64)


def groups_from_pairs(n: int, pairs: np.ndarray) -> np.ndarray:
    """Connected components: one group id per item; copies of copies share a group."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)[1].astype(np.int64)


def near_duplicate_groups(paths, max_distance: int = MAX_DISTANCE,
                          workers: int | None = None) -> np.ndarray:
    """A group id per path; near-identical images share one (the k-fold grouping)."""
    hashes, readable = image_hashes(paths, workers=workers)
    return groups_from_pairs(len(hashes), near_pairs(hashes, max_distance, readable))
