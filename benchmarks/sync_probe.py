"""Host syncs per batch of each loader and per epoch of the training loop, on one CUDA device.

    PYTHONPATH=. python benchmarks/sync_probe.py --data DIR [--json syncs.json]
    PYTHONPATH=. python benchmarks/sync_probe.py --device cpu     # dry run: paths only, no counts

Expected: 0 per steady-state batch for every loader (DALI's own engine is not seen), and at
most one per progress interval plus two at the epoch's end for ``train_one_epoch`` (bf16, and
fp16 with its grad scaler).  Exit status 1 when a count is above that.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import torch
from gpu_check_summary import sync_words    # beside this script: one wording for both

from fastleaf.bench.syncs import expected_loop_syncs, loader_syncs, locate_sync, loop_syncs
from fastleaf.data.augment import AugmentSpec
from fastleaf.data.table import load_table
from fastleaf.loaders import LoaderOptions, create_loader
from fastleaf.models import create_model
from fastleaf.train.loop import SYNC_EVERY
from fastleaf.train.precision import create_precision
from fastleaf.utils.device import configure_device, resolve_device

LOADERS = ("workers", "cache-ram", "cache-gpu", "synthetic", "dali")


def probe_loaders(samples, device, args, counting: bool) -> dict:
    out = {}
    for name in LOADERS:
        options = LoaderOptions(batch_size=args.batch_size, device=device, channels_last=True,
                                workers=args.workers, drop_last=True,
                                dtype=torch.bfloat16 if device.type == "cuda" else torch.float32)
        try:
            loader = create_loader(samples, AugmentSpec.train_preset(args.img_size), options, name)
            if counting:
                out[name] = asdict(loader_syncs(loader, batches=args.batches))
                if out[name]["per_batch"] and args.locate:   # raise at the sync itself
                    trace = locate_sync(create_loader(samples, AugmentSpec.train_preset(
                        args.img_size), options, name), batches=2 * args.batches)
                    out[name]["traceback"] = trace
                    print(f"loader {name}: first sync under the error mode:\n{trace}", flush=True)
            else:
                sum(1 for _ in zip(range(3), loader))
                out[name] = None
        except Exception as err:      # an unavailable backend is reported, not fatal
            out[name] = f"skipped: {type(err).__name__}: {str(err)[:160]}"
        print(f"loader {name:<12} host syncs/batch: {sync_words(out[name])}", flush=True)
    return out


def probe_loop(device, args, counting: bool) -> dict:
    out = {}
    amps = ("bf16", "fp16") if device.type == "cuda" else ("bf16",)
    steps = 2 * SYNC_EVERY
    for amp in amps:
        torch.manual_seed(0)
        model = create_model(args.model, 10).to(device).to(memory_format=torch.channels_last)
        precision = create_precision(True, device, amp)
        dtype = precision.dtype if device.type == "cuda" else torch.float32
        x = torch.randn(args.batch_size, 3, args.img_size, args.img_size, device=device)
        batch = (x.to(dtype).contiguous(memory_format=torch.channels_last),
                 torch.randint(0, 10, (args.batch_size,), device=device))
        batches = [batch] * steps
        if counting:
            count = loop_syncs(model, batches, precision, on_step=lambda *a: None)
        else:
            from fastleaf.train.loop import train_one_epoch
            from fastleaf.train.optim import create_optimizer

            train_one_epoch(model, batches[:2], create_optimizer(model), precision,
                            torch.nn.CrossEntropyLoss())
            count = None
        out[amp] = {"syncs": count, "steps": steps,
                    "allowed": expected_loop_syncs(steps, SYNC_EVERY)}
        print(f"train_one_epoch {args.model} {amp}: {count} host syncs in {steps} steps "
              f"(allowed {out[amp]['allowed']})", flush=True)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", help="Kaggle-layout folder (default: a small synthetic set)")
    p.add_argument("--device", default="auto")
    p.add_argument("--model", default="resnet18")
    p.add_argument("--img-size", type=int, default=224)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--batches", type=int, default=4, help="counted batches per loader")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--json", help="write the counts here")
    p.add_argument("--locate", action="store_true",
                   help="for a loader that syncs, rerun it under the 'error' sync mode and print "
                        "the traceback of its first sync (where it is really made)")
    args = p.parse_args(argv)
    device = resolve_device(args.device)
    configure_device(device)
    counting = device.type == "cuda"
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            from fastleaf.data.synth import make_synthetic

            data = make_synthetic(Path(tmp) / "d", num_classes=4, train_per_class=24,
                                  test_per_class=1, size=args.img_size, seed=0)
        samples = load_table(data, val_fraction=0.0).all_train
        samples = samples.repeat(max(len(samples), (3 + 2 + args.batches) * args.batch_size))
        result = {"device": str(device), "loaders": probe_loaders(samples, device, args, counting),
                  "loop": probe_loop(device, args, counting)}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    if not counting:
        print("no CUDA device: the paths ran, nothing was counted")
        return 0
    # a sync on a helper thread stalls only that thread: reported above, not counted here
    bad = [n for n, v in result["loaders"].items() if isinstance(v, dict) and v["main_per_batch"]]
    bad += [f"loop {a}" for a, v in result["loop"].items() if v["syncs"] > v["allowed"]]
    if bad:
        print(f"host syncs above the expected count: {', '.join(bad)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
