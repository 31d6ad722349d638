"""``fastleaf audit``: likely wrong labels and near-copies, as audit.csv and audit.html.

    fastleaf train --data DIR --folds 5 --out runs/k5
    fastleaf audit --data DIR runs/k5 --out audit/
    fastleaf train --data DIR --exclude audit/audit.csv      # or --relabel audit/audit.csv
"""
from __future__ import annotations

import argparse

NAME = "audit"
HELP = "find likely mislabelled training images (from k-fold runs' out-of-fold probabilities) " \
       "and near-copies; writes audit.csv and audit.html"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..audit import DEFAULT_METHOD, METHODS

    p.add_argument("runs", nargs="*", metavar="RUN_FOLDS",
                   help="k-fold run folders (or their oof.csv); several are averaged; none: "
                        "near-copies only")
    p.add_argument("--data", help="the data folder the runs trained on (default: theirs)")
    p.add_argument("--out", default="audit", help="folder for audit.csv and audit.html (audit)")
    p.add_argument("--method", choices=METHODS, default=DEFAULT_METHOD,
                   help=f"the rule for a label issue: below_chance (out-of-fold prediction "
                        f"another class, the label's probability under 1/classes) or one of "
                        f"cleanlab's filter_by rules ({DEFAULT_METHOD})")
    p.add_argument("--duplicates", action=argparse.BooleanOptionalAction, default=True,
                   help="also hash every image for near-copies (on)")
    p.add_argument("--html-rows", type=int, default=300,
                   help="findings per part shown with thumbnails in audit.html (300)")


def data_of(args) -> str:
    """``--data``, else the data folder the first run's fold 0 trained on."""
    from pathlib import Path

    from ..errors import UsageError
    from ..predict.run_folder import read_folder_config

    if args.data:
        return args.data
    if args.runs:
        run = Path(args.runs[0])
        run = run.parent if run.name == "oof.csv" else run
        if (run / "fold0" / "config.yaml").is_file():
            config, _ = read_folder_config(run / "fold0")
            if config.data:
                return config.data
    raise UsageError("name the data folder: --data DIR (the one the runs trained on)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..audit.find import AUDIT_CSV, audit, load_out_of_fold, write_audit
    from ..audit.page import audit_page
    from ..utils.atomic import write_text_atomic
    from ..utils.console import console

    data = data_of(args)
    oof = load_out_of_fold(args.runs) if args.runs else None
    found = audit(data, oof, method=args.method, duplicates=args.duplicates)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    csv = write_audit(found, out / AUDIT_CSV)
    page = out / "audit.html"
    write_text_atomic(page, audit_page(found, data, f"fastleaf audit of {data}",
                                       args.html_rows))
    counts = found["reason"].value_counts().to_dict()
    what = ", ".join(f"{n} {reason}" for reason, n in counts.items()) or "nothing"
    console.print(f"audit of {data}: {what}", soft_wrap=True)
    console.print(f"wrote {csv} and {page}; train --exclude {csv} leaves the training rows "
                  f"out, --relabel {csv} takes the suggested labels", soft_wrap=True)
    return 0
