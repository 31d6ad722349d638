"""``fastleaf bench``: images/sec per model, mode, loader and speed flags.

    fastleaf bench                      # a plan and estimate first; a few minutes on a CPU
    fastleaf bench --data data/classify-leaves --models cnn,resnet18 --json bench.json
    fastleaf bench --models cnn --loaders cache-ram,synthetic --matrix --csv flags.csv
    fastleaf bench --budget inf         # every case, however long
    fastleaf bench --runtime torch,onnx --modes infer --models resnet18,tf_efficientnet_lite0
"""
from __future__ import annotations

import argparse

from ..errors import UsageError
from ..vocab import AUGMENTS, BACKENDS, LOADER_ALIASES

NAME = "bench"
HELP = "measure training/inference images/sec across models, loaders and speed flags"


def add_arguments(p: argparse.ArgumentParser) -> None:
    flag = argparse.BooleanOptionalAction
    g = p.add_argument_group("what to measure")
    g.add_argument("--models", help="comma-separated built-in or timm names "
                   "(cnn,vgg16,resnet18,deit_tiny)")
    g.add_argument("--modes", default="train,infer", help="train, infer and/or load (the loader alone, "
                   "training views) (train,infer)")
    g.add_argument("--loaders", default=",".join(BACKENDS),
                   help="loaders to time; those that cannot run here are skipped with the reason")
    g.add_argument("--amp", action=flag,
                   help="mixed precision (default: on CUDA and on CPUs with native bf16)")
    g.add_argument("--channels-last", action=flag, help="NHWC memory format (default: on)")
    g.add_argument("--compile", action=flag, help="torch.compile the model (default: off)")
    g.add_argument("--matrix", action="store_true", help="all 8 amp/channels-last/compile combos")
    g.add_argument("--runtime", metavar="torch,onnx",
                   help="compare inference runtimes instead of loaders: PyTorch eager and/or "
                        "ONNX Runtime (the [onnx] extra), same model and input, on the CPU")
    g.add_argument("--runtime-batches", default="1,32", metavar="1,32",
                   help="batch sizes of the --runtime comparison (1,32)")
    g = p.add_argument_group("data")
    g.add_argument("--data", help="Kaggle-layout folder (default: a small synthetic set)")
    g.add_argument("--min-images", type=int,
                   help="repeat the train rows to at least this many images (20 x batch size)")
    g.add_argument("--img-size", type=int, default=224)
    g.add_argument("--augment", choices=AUGMENTS, default="kaggle",
                   help="training augmentations of the train mode (kaggle)")
    g.add_argument("--workers", type=int, help="loader worker processes / decode threads "
                   "(default: chosen with the torch threads for the cores)")
    g.add_argument("--threads", type=int, help="torch threads on the CPU (default: the cores "
                   "the loader leaves)")
    g = p.add_argument_group("measurement")
    g.add_argument("--batch-size", type=int, default=50)
    g.add_argument("--steps", type=int, default=8, help="timed steps per repeat (8)")
    g.add_argument("--warmup", type=int, default=2, help="untimed steps first (2)")
    g.add_argument("--repeats", type=int, default=3, help="timed repeats; median reported (3)")
    g.add_argument("--max-seconds", type=float, default=5.0,
                   help="cut a repeat short after this long (slow models on a CPU)")
    g.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--budget", type=float, help="seconds for the whole bench: cases whose "
                   "estimate does not fit are skipped and named ('inf': no limit; default: "
                   "a few minutes on a CPU without --models, no limit otherwise)")
    g = p.add_argument_group("output")
    g.add_argument("--json", help="write the rows (with machine facts) to this JSON file")
    g.add_argument("--csv", help="write the rows to this CSV file")


def split(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def budget_from_args(args: argparse.Namespace) -> float | None:
    """The bench's time budget: ``--budget``, else a few minutes for a bare run on a CPU (its
    default models take tens of minutes there), else none (a GPU runs everything in minutes)."""
    import math

    from ..bench.plan import CPU_BUDGET_S
    from ..utils.device import resolve_device

    if args.budget is not None:
        if math.isnan(args.budget) or args.budget <= 0:
            raise UsageError(f"--budget must be a positive number of seconds or inf, "
                             f"got {args.budget}")
        return None if math.isinf(args.budget) else args.budget
    if args.models is None and resolve_device(args.device).type == "cpu":
        return CPU_BUDGET_S
    return None


def settings_from_args(args: argparse.Namespace):
    """Namespace -> :class:`BenchSettings`; unset speed flags take the device defaults."""
    from ..bench import BenchSettings, Flags
    from ..bench.measure import DEFAULT_MODELS
    from ..utils.deprecation import current_name
    from ..utils.device import resolve_device

    if args.matrix:
        flags = tuple(Flags.matrix())
    else:
        base = Flags.defaults(resolve_device(args.device))
        flags = (Flags(base.amp if args.amp is None else args.amp,
                       base.channels_last if args.channels_last is None else args.channels_last,
                       base.compile if args.compile is None else args.compile),)
    if min(args.steps, args.repeats, args.batch_size) < 1 or args.warmup < 0:
        raise UsageError("--steps, --repeats and --batch-size must be >= 1, --warmup >= 0")
    return BenchSettings(models=split(args.models) if args.models else DEFAULT_MODELS,
                         modes=split(args.modes), budget=budget_from_args(args),
                         loaders=tuple(current_name(n, LOADER_ALIASES, "--loaders")
                                       for n in split(args.loaders)),
                         flags=flags, data=args.data,
                         min_images=args.min_images, img_size=args.img_size,
                         batch_size=args.batch_size, steps=args.steps, warmup=args.warmup,
                         repeats=args.repeats, max_seconds=args.max_seconds,
                         augment=args.augment, workers=args.workers, threads=args.threads,
                         device=args.device,
                         seed=args.seed)


def batch_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in split(text))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise UsageError(f"--runtime-batches {text}: comma-separated whole numbers >= 1")
    return sizes


def run(args: argparse.Namespace) -> int:
    from ..utils.paths import output_file

    for flag, out in (("--json", args.json), ("--csv", args.csv)):
        if out:     # before torch is even imported: a bad output costs nothing
            output_file(out, flag)
    from dataclasses import asdict

    from ..bench import print_rows, print_summary, run_bench, write_csv, write_json
    from ..utils.console import console

    settings = settings_from_args(args)

    def write(rows: list[dict], skipped: dict) -> None:
        # after every case: an interrupted or crashed bench keeps the rows it measured
        if args.json:
            write_json(args.json, rows, skipped, asdict(settings))
        if args.csv:
            write_csv(args.csv, rows)

    if args.runtime:
        from ..bench.runtimes import print_runtimes, run_runtime_bench

        result = run_runtime_bench(settings, split(args.runtime),
                                   batch_sizes(args.runtime_batches), write)
        print_runtimes(result.rows)
    else:
        result = run_bench(settings, on_row=write)
        print_rows(result.rows, result.skipped)
        print_summary(result)
    write(result.rows, result.skipped)
    for path in filter(None, (args.json, args.csv)):
        console.print(f"wrote {len(result.rows)} rows to {path}")
    return 0 if result.rows else 1
