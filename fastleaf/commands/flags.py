"""The flag vocabulary shared by every command, and the old spellings kept for one release.

One name per concept (README, "Flag vocabulary"): ``--img-size`` is the model input side,
``--out`` what a command writes (run folder, file or folder), ``--workers`` parallel image
readers, ``--weights`` a state dict to start from, ``--member-weights`` the ensemble's weights,
``--loader`` the data backend.  An old spelling still parses, hidden from ``--help``, and says
which name replaces it::

    add_deprecated(p, "--image-size", "--img-size", type=int)
    add_deprecated(p, "--cache", "--loader", choices=["none", "ram", "gpu"], convert=cache_loader)

A flag that no longer does anything still parses, says so and why (:func:`add_ignored`).
A renamed value works the same way as a renamed flag: ``--loader torchvision`` (the worker loader's old name)
still parses, unlisted, as ``--loader workers`` (:func:`loader_choice`).
"""
from __future__ import annotations

import argparse
from typing import Callable

from ..utils.deprecation import current_name, deprecation_note, removal_note
from ..vocab import LOADER_ALIASES


class _Deprecated(argparse.Action):
    def __init__(self, option_strings, dest, new: str = "", convert: Callable | None = None,
                 **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        self.new = new
        self.convert = convert

    def __call__(self, parser, namespace, values, option_string=None):
        deprecation_note(option_string, self.new)
        value = self.convert(values) if self.convert else values
        # a value the new flag leaves unset (e.g. --cache none) keeps whatever is there
        if value is not None:
            setattr(namespace, self.dest, value)


def add_deprecated(parser, old: str, new: str, *, convert: Callable | None = None,
                   **kwargs) -> None:
    """Accept ``old`` as a hidden spelling of the already added flag ``new``.

    The value lands in ``new``'s destination (after ``convert`` when given); ``old`` never sets
    a default, so ``new``'s default stands when neither is given.
    """
    dest = new.lstrip("-").replace("-", "_")
    parser.add_argument(old, action=_Deprecated, new=new, convert=convert, dest=dest,
                        default=argparse.SUPPRESS, help=argparse.SUPPRESS, **kwargs)


class _Ignored(argparse.Action):
    def __init__(self, option_strings, dest, why: str = "", **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        self.why = why

    def __call__(self, parser, namespace, values, option_string=None):
        removal_note(option_string, self.why)


def add_ignored(parser, old: str, why: str, **kwargs) -> None:
    """Accept ``old`` (hidden from ``--help``, its values checked as before) and say once that
    it changes nothing, and ``why``; it sets nothing in the namespace."""
    parser.add_argument(old, action=_Ignored, why=why, dest=argparse.SUPPRESS,
                        default=argparse.SUPPRESS, help=argparse.SUPPRESS, **kwargs)


def cache_loader(value: str) -> str | None:
    """``--cache ram|gpu|none`` -> the ``--loader`` value that replaced it (none: unset)."""
    return None if value == "none" else f"cache-{value}"


def loader_choice(value: str) -> str:
    """``--loader``'s type: an old backend name becomes its new one, with a note (argparse
    checks the result against the choices, so the old name stays out of ``--help``)."""
    return current_name(value, LOADER_ALIASES, "--loader")


LOADER_HELP = ("data backend: auto (CUDA: DALI when installed, else cache-gpu for training "
               "when the decoded set fits in GPU memory, else workers; CPU: cache-ram when it "
               "fits in RAM, else workers; the reason is printed), "
               "dali, workers (worker processes decode and augment, streaming from disk), "
               "cache-ram / cache-gpu (decode every image once into RAM / GPU memory)")


DATA_HELP = ("data folder: Kaggle layout (train.csv, test.csv, images/) or folder-per-class "
             "(train/<class>/, optional val/ and test/, or bare <class>/ folders)")


def add_csv_arguments(p, *, csv_help: str | None = None, root_default: str = "the CSV's folder",
                      test: bool = True) -> None:
    """``--csv FILE --image-col NAME --label-col NAME [--images-root DIR] [--test-csv FILE]``:
    any CSV as the data set instead of ``--data`` (:mod:`fastleaf.data.csv_source`);
    ``csv_help`` and ``root_default`` say what they mean where a command gives ``--csv``
    another use."""
    p.add_argument("--csv", metavar="FILE", help=csv_help or (
        "any CSV as the data set instead of --data: one row per image, a column of image "
        "paths and one of labels (rows with an empty label are the test set)"))
    p.add_argument("--image-col", metavar="NAME",
                   help="with --csv: the column of image paths (image)")
    p.add_argument("--label-col", metavar="NAME",
                   help="with --csv: the column of labels, any text (label)")
    p.add_argument("--images-root", metavar="DIR",
                   help=f"with --csv: the folder its image paths are relative to "
                        f"({root_default})")
    if test:
        p.add_argument("--test-csv", metavar="FILE",
                       help="with --csv: the images to predict, a CSV with the same image "
                            "column (default: the --csv rows without a label)")


def data_from_args(args):
    """``--data``, or the :class:`CsvSource` the ``--csv`` flags describe."""
    from ..errors import UsageError

    given = [f"--{k.replace('_', '-')}" for k in ("image_col", "label_col", "images_root",
                                                   "test_csv") if getattr(args, k, None)]
    if getattr(args, "csv", None) is None:
        if given:
            raise UsageError(f"{given[0]} describes a CSV: give it with --csv FILE")
        return args.data
    if args.data is not None:
        raise UsageError(f"--data {args.data} and --csv {args.csv} name two data sets; give "
                         f"one")
    from ..sources import CsvSource

    return CsvSource.create(args.csv, args.image_col, args.label_col, args.images_root,
                            getattr(args, "test_csv", None))
