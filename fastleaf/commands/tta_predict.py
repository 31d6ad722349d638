"""``fastleaf tta-predict``: test.csv -> TTA x checkpoint ensemble -> a checked submission.csv."""
from __future__ import annotations

import argparse

from ..predict.settings import PredictSettings
from .flags import LOADER_HELP, add_csv_arguments, add_deprecated, data_from_args, loader_choice

NAME = "tta-predict"
TTA_HELP = ("test-time views: none, hflip, flips (h+v mirrors, 4 views), rot90 (8 dihedral "
            f"views), five-crop (corners + centre) ({PredictSettings.tta})")
HELP = "predict test.csv with test-time augmentation and checkpoint ensembles"


def add_prediction_arguments(p: argparse.ArgumentParser, *, inherit: bool,
                             checkpoint_required: bool = True, exported: bool = False) -> None:
    """Flags shared with ``fastleaf evaluate``; ``inherit``: precision defaults to the run's;
    ``exported``: ``--model FILE.onnx`` may stand in for ``--checkpoint``."""
    from ..vocab import AMP_DTYPES, LOADERS

    own = PredictSettings()
    flag = argparse.BooleanOptionalAction
    p.add_argument("--checkpoint", action="append", required=checkpoint_required, metavar="PATH",
                   help="best.pt, a run folder, or a folder of fold runs (repeatable)")
    if exported:
        p.add_argument("--model", metavar="FILE.onnx",
                       help="an exported model (fastleaf export) run by ONNX Runtime instead "
                            "of --checkpoint; TTA and batch size apply, torch is not needed")
    p.add_argument("--member-weights", metavar="W1,W2,...",
                   help="ensemble weights, comma-separated, one per --checkpoint (or one per "
                        "checkpoint file); default equal")
    add_deprecated(p, "--weights", "--member-weights")
    p.add_argument("--crop-fraction", type=float, default=own.crop_fraction,
                   help=f"five-crop side fraction ({own.crop_fraction})")
    run_default = "the run's own" if inherit else "on"
    p.add_argument("-b", "--batch-size", type=int, default=None if inherit else own.batch_size,
                   help=f"images per batch ({run_default if inherit else own.batch_size})")
    p.add_argument("--amp", action=flag, default=None if inherit else own.amp,
                   help="mixed precision, bf16 on CPU (" + ("the run's own" if inherit else
                   "auto: on for CUDA and for CPUs with native bf16, off on AVX2-only CPUs "
                   "where bf16 is emulated and slower") + ")")
    p.add_argument("--amp-dtype", choices=AMP_DTYPES,
                   default=None if inherit else own.amp_dtype)
    p.add_argument("--channels-last", action=flag, default=None if inherit else own.channels_last,
                   help=f"NHWC memory format ({run_default})")
    p.add_argument("--device", default=own.device, help="auto, cpu, cuda or cuda:N")
    p.add_argument("--loader", type=loader_choice, choices=LOADERS, default=own.loader,
                   help=LOADER_HELP)
    p.add_argument("-j", "--workers", type=int, help="loader worker processes")


def check_model_choice(args: argparse.Namespace) -> bool:
    """True for an exported model (``--model``), False for checkpoints; both or neither is a
    user error."""
    from ..errors import UsageError

    model = getattr(args, "model", None)
    if model and (args.checkpoint or getattr(args, "blend", None) or args.member_weights):
        raise UsageError("--model runs one exported file; drop --checkpoint, --blend and "
                         "--member-weights")
    if not model and not args.checkpoint and not getattr(args, "blend", None):
        raise UsageError("name the models: --checkpoint PATH (repeatable), --blend FILE "
                         "(tta-predict) or --model FILE.onnx")
    return bool(model)


def settings_from_args(args: argparse.Namespace):
    return PredictSettings(tta=args.tta, crop_fraction=args.crop_fraction,
                           batch_size=args.batch_size, device=args.device, amp=args.amp,
                           amp_dtype=args.amp_dtype, channels_last=args.channels_last,
                           loader=args.loader, workers=args.workers)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..vocab import TTA_NAMES

    p.add_argument("--data", help="data folder holding the test images: Kaggle layout "
                   "(test.csv) or folder-per-class (test/); default: references/test.csv with "
                   "images under data/")
    add_csv_arguments(p)
    p.add_argument("--tta", choices=TTA_NAMES, default=PredictSettings.tta, help=TTA_HELP)
    p.add_argument("--out", default="submission.csv", help="submission file (submission.csv)")
    p.add_argument("--save-probs", metavar="FILE",
                   help="also save the averaged probabilities (.npy or .csv) for stacking; "
                        "the .npy has the layout of a k-fold run's oof_probs.npy")
    p.add_argument("--blend", metavar="FILE", help="blend.json from fastleaf blend: every fold "
                   "model of every member (instead of --checkpoint)")
    add_prediction_arguments(p, inherit=False, checkpoint_required=False, exported=True)


def run(args: argparse.Namespace) -> int:
    from ..utils.console import console, shown

    args.data = data_from_args(args)
    if check_model_choice(args):
        return run_exported(args)
    from ..predict.runner import tta_predict

    result = tta_predict(args.data, args.checkpoint or [], out=args.out,
                         weights=args.member_weights, settings=settings_from_args(args),
                         save_probs=args.save_probs, blend=args.blend)
    out = result.output
    for how in dict.fromkeys(out.how):
        console.print(how)
    console.print(f"{result.rows} test images x {out.views} view(s) x {out.members} "
                  f"checkpoint(s) in {out.seconds:.1f} s: {result.img_per_s:.1f} img/s")
    if result.probs_file:
        console.print(f"probabilities: {shown(result.probs_file)}")
    what = "submission" if len(result.columns) == 2 else ",".join(result.columns)
    console.print(f"{what}: {shown(result.out)}")
    return 0


def run_exported(args: argparse.Namespace) -> int:
    """``tta-predict --model FILE.onnx``: ONNX Runtime, without torch."""
    from ..export.onnx_runtime import tta_predict_onnx
    from ..utils.console import console, shown

    result, probs_file = tta_predict_onnx(args.data, args.model, out=args.out, tta=args.tta,
                                          crop_fraction=args.crop_fraction,
                                          batch_size=args.batch_size,
                                          save_probs=args.save_probs)
    console.print(f"{len(result.files)} test images, tta {args.tta}, {result.info.model_name} "
                  f"(ONNX Runtime) in {result.seconds:.1f} s: {result.img_per_s:.1f} img/s")
    if probs_file:
        console.print(f"probabilities: {shown(probs_file)}")
    from ..data.csv_source import layout_kind

    kaggle = layout_kind(args.data) == "kaggle"
    console.print(f"{'submission' if kaggle else 'image,label,probability'}: {shown(args.out)}")
    return 0
