"""Find likely label issues in a training set: what ``fastleaf audit`` writes to ``audit.csv``.

    fastleaf train --data DIR --folds 5 --out runs/k5      # -> runs/k5/oof.csv, oof_probs.npy
    fastleaf audit --data DIR runs/k5 --out audit/         # -> audit/audit.csv, audit.html

    oof = load_out_of_fold(["runs/k5", "runs/k5-vit"])     # probabilities averaged
    found = audit(DIR, oof)                                # a frame of AUDIT_COLUMNS

Three reasons, one row each (an image can have more than one):

* ``label_issue``: by default (``below_chance``) a row the out-of-fold models predict as
  another class while giving its label less probability than a uniform guess would
  (``1 / classes``); with ``--method`` one of confident learning's rules (Northcutt et al.,
  "Confident Learning: Estimating Uncertainty in Dataset Labels", JAIR 2021) through the
  ``cleanlab`` package's ``find_label_issues``.  The suggested label is the out-of-fold
  prediction, the score ``1 - `` cleanlab's self-confidence quality of the given label.
* ``duplicate_conflict``: near-identical training images (:mod:`fastleaf.data.dedup`) with
  different labels; one of them is wrong.  With out-of-fold probabilities the image whose label
  the models believe less is flagged, with its twin's label suggested; without them both are
  listed and no label is suggested.
* ``test_copy_of_train``: a test image that is a near-copy of a training image; its label is
  the training image's (``csv`` is test.csv: ``--exclude``/``--relabel`` leave it alone).

Plain disagreement (out-of-fold prediction != given label) flags every mistake of the models
too; on hard data most of those are the model's errors, not the label's.  When the models err
on a correct label they still give it some belief (it is usually their second guess); a wrong
label drawn from elsewhere gets about the share of a class the picture does not show.
Confident learning ranks those apart well (cleanlab's self-confidence) but its count of issues,
the off-diagonal of the confident joint, counts the models' confident mistakes too when they
are many, and misses wrong labels when the probabilities are soft; the uniform guess is a cut
that needs no count.  ``benchmarks/audit_noise.py`` measures every rule against known flips.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..data.table import DataError, csv_line, read_frame, resolve_layout
from ..errors import UsageError
from . import BELOW_CHANCE, DEFAULT_METHOD, METHODS
from ..predict.oof import OOF_CSV, OutOfFold, read_out_of_fold

AUDIT_CSV = "audit.csv"
AUDIT_COLUMNS = ("image", "csv", "line", "given_label", "suggested_label", "score", "reason",
                 "other_image")


def need_cleanlab():
    try:
        import cleanlab.filter
        import cleanlab.rank
    except ImportError:
        raise UsageError("the label audit needs the [audit] extra: pip install -e \".[audit]\" "
                         "(the cleanlab package)") from None
    return cleanlab


def load_out_of_fold(sources) -> OutOfFold:
    """Out-of-fold predictions of one or more k-fold runs (folders or their ``oof.csv``);
    several are averaged, which steadies the probabilities confident learning counts with."""
    found = []
    for source in sources:
        path = Path(source)
        found.append(read_out_of_fold(path.parent if path.name == OOF_CSV else path))
    first = found[0]
    for other, source in zip(found[1:], sources[1:]):
        if other.classes != first.classes or \
                other.frame["image"].tolist() != first.frame["image"].tolist():
            raise DataError(f"{source}: predicts other images or classes than {sources[0]}; "
                            f"average only k-fold runs of the same data")
        if not np.array_equal(other.labels, first.labels):
            raise DataError(f"{source}: trained on other labels than {sources[0]}")
    if len(found) == 1:
        return first
    probs = np.mean([o.probs for o in found], axis=0).astype(np.float32)
    frame = first.frame
    return OutOfFold(frame, probs, first.labels, first.classes, pool_metrics(first, probs))


def pool_metrics(oof: OutOfFold, probs: np.ndarray) -> dict:
    from ..train.metrics import classification_metrics

    return classification_metrics(oof.labels, probs.argmax(1))


def train_lines(data_dir, images: list[str]) -> np.ndarray:
    """The train.csv line of each out-of-fold image: they are train.csv's rows in order, less
    any the run left out (pseudo labels, ``--skip-bad``, ``--exclude``)."""
    layout = resolve_layout(data_dir)
    frame, problem = read_frame(layout.train_csv, ("image", "label"))
    if problem:
        raise DataError(f"{layout.train_csv}: {problem[1]}")
    lines, at = np.zeros(len(images), dtype=np.int64), 0
    column = frame["image"].tolist()
    for i, image in enumerate(images):
        while at < len(column) and column[at] != image:
            at += 1
        if at == len(column):
            raise DataError(f"{layout.train_csv}: has no row {image!r} where the out-of-fold "
                            f"table expects it; audit with the data the runs trained on")
        lines[i], at = csv_line(at), at + 1
    return lines


def plain_disagreement(oof: OutOfFold) -> np.ndarray:
    """Rows whose out-of-fold prediction is not the given label (the baseline)."""
    return np.flatnonzero(oof.probs.argmax(1) != oof.labels)


def label_issues(oof: OutOfFold, method: str = DEFAULT_METHOD) -> tuple[np.ndarray, np.ndarray,
                                                                        np.ndarray]:
    """``(rows, suggested class ids, scores)`` of the likely wrong labels, highest score first.

    The score is ``1 - self-confidence`` (the out-of-fold probability of the given label):
    near 1, the models are sure the label is wrong.  A row the models predict as its given
    label is never flagged (cleanlab drops those itself for its other rules, not for the
    ``low_*`` ones): there is no other label to suggest.
    """
    if method not in METHODS:
        raise UsageError(f"unknown audit method {method!r}; one of {', '.join(METHODS)}")
    cleanlab = need_cleanlab()
    probs = oof.probs / oof.probs.sum(1, keepdims=True)      # exactly 1 per row for cleanlab
    quality = cleanlab.rank.get_label_quality_scores(oof.labels, probs,
                                                     method="self_confidence")
    if method == BELOW_CHANCE:
        flags = quality < 1.0 / probs.shape[1]
    else:
        flags = cleanlab.filter.find_label_issues(oof.labels, probs, filter_by=method)
    flags &= probs.argmax(1) != oof.labels
    rows = np.flatnonzero(flags)
    rows = rows[np.argsort(quality[rows], kind="stable")]
    others = probs[rows].copy()
    others[np.arange(len(rows)), oof.labels[rows]] = -1.0   # the best label but the given one
    return rows, others.argmax(1), 1.0 - quality[rows]


def issue_rows(oof: OutOfFold, lines: np.ndarray, method: str) -> list[dict]:
    rows, suggested, scores = label_issues(oof, method)
    return [{"image": oof.frame["image"].iloc[r], "csv": "train.csv", "line": int(lines[r]),
             "given_label": oof.classes[oof.labels[r]], "suggested_label": oof.classes[s],
             "score": float(score), "reason": "label_issue", "other_image": ""}
            for r, s, score in zip(rows, suggested, scores)]


def conflict_rows(pairs: pd.DataFrame, oof: OutOfFold | None,
                  lines: np.ndarray | None) -> list[dict]:
    """Near-copies with different labels: the less believed one (or, without out-of-fold
    probabilities, both) with the twin's label suggested."""
    at = {} if lines is None else {int(line): i for i, line in enumerate(lines)}
    index = {} if oof is None else {name: i for i, name in enumerate(oof.classes)}
    out = []
    for p in pairs.itertuples(index=False):
        a, b = at.get(int(p.a_line)), at.get(int(p.b_line))
        sides = [(p.a_image, p.a_line, p.a_label, p.b_image, p.b_label),
                 (p.b_image, p.b_line, p.b_label, p.a_image, p.a_label)]
        if a is None or b is None or p.a_label not in index or p.b_label not in index:
            out += [row(*s, "", 0.5) for s in sides]
            continue
        belief = (oof.probs[a] + oof.probs[b]) / 2          # one picture: pool both views
        doubt = 0 if belief[index[p.a_label]] < belief[index[p.b_label]] else 1
        image, line, given, twin, twin_label = sides[doubt]
        out.append(row(image, line, given, twin, twin_label, twin_label,
                       1.0 - float(belief[index[given]])))
    return out


def row(image, line, given, twin, twin_label, suggested, score) -> dict:
    return {"image": image, "csv": "train.csv", "line": int(line), "given_label": given,
            "suggested_label": suggested, "score": score, "reason": "duplicate_conflict",
            "other_image": twin}


def test_copy_rows(pairs: pd.DataFrame) -> list[dict]:
    """Test images copying a training image; the score is the hashes' agreement (1: equal)."""
    from ..data.dedup import HASH_SIZE

    return [{"image": p.b_image, "csv": "test.csv", "line": int(p.b_line), "given_label": "",
             "suggested_label": p.a_label, "score": 1.0 - p.distance / HASH_SIZE ** 2,
             "reason": "test_copy_of_train", "other_image": p.a_image}
            for p in pairs.itertuples(index=False)]


def audit(data_dir, oof: OutOfFold | None = None, *, method: str = DEFAULT_METHOD,
          duplicates: bool = True, max_distance: int | None = None) -> pd.DataFrame:
    """Every finding as a frame of :data:`AUDIT_COLUMNS`, training rows by score, then test.

    Args:
        data_dir: the Kaggle-layout folder the runs trained on (train.csv, test.csv).
        oof: out-of-fold predictions (:func:`load_out_of_fold`); None: duplicates only.
        method: cleanlab's ``filter_by`` rule (:data:`METHODS`).
        duplicates: also look for near-copies (a perceptual hash of every image).
        max_distance: hash bits that still count as one picture (dedup's default).
    """
    from ..data.dedup import MAX_DISTANCE
    from ..data.near_duplicates import find_near_duplicates

    if oof is None and not duplicates:
        raise UsageError("nothing to audit: give a k-fold run (oof.csv) or keep the "
                         "near-duplicate search")
    lines = None if oof is None else train_lines(data_dir, oof.frame["image"].tolist())
    rows = [] if oof is None else issue_rows(oof, lines, method)
    tests = []
    if duplicates:
        near = find_near_duplicates(data_dir, MAX_DISTANCE if max_distance is None
                                    else max_distance)
        rows += conflict_rows(near.of_kind("conflicting_labels"), oof, lines)
        tests = test_copy_rows(near.of_kind("test_copy_of_train"))
    train = pd.DataFrame(rows, columns=list(AUDIT_COLUMNS))
    train = train.sort_values(["score", "line"], ascending=[False, True], kind="stable")
    test = pd.DataFrame(tests, columns=list(AUDIT_COLUMNS)).sort_values(
        ["score", "line"], ascending=[False, True], kind="stable")
    return pd.concat([train, test], ignore_index=True) if len(test) else \
        train.reset_index(drop=True)


def write_audit(frame: pd.DataFrame, path) -> Path:
    from ..utils.atomic import atomic_path

    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")
    return Path(path)


def flipped_scores(found_rows, flipped_rows, total: int) -> dict[str, float]:
    """Precision, recall and F1 of flagged rows against the known flipped ones."""
    found, truth = set(map(int, found_rows)), set(map(int, flipped_rows))
    hits = len(found & truth)
    precision = hits / len(found) if found else 0.0
    recall = hits / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"flagged": len(found), "flipped": len(truth), "hits": hits, "rows": total,
            "precision": precision, "recall": recall, "f1": f1}
