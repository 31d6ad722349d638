"""DALI on the device: fastleaf's pipelines per augmentation preset, the decoder's rate per
``hw_decoder_load``, and how far the GPU decode is from the CPU decode.

    PYTHONPATH=. python benchmarks/dali_check.py presets --data DIR --batches 20 --json F
    PYTHONPATH=. python benchmarks/dali_check.py decode --data DIR --loads 0,0.65,1 --json F
    PYTHONPATH=. python benchmarks/dali_check.py parity --data DIR --json F
    ... --device cpu    # DALI's CPU pipeline: presets and decode run, parity needs CUDA

``presets`` runs ``create_loader(..., "dali")`` for the kaggle, light and none training views
and the eval view, ``--batches`` batches each (epochs repeat as needed), and checks each batch
(shape, dtype, device, finite).  ``decode`` times DALI's image decoder alone (file reader +
``decoders.image``, no augmentation) on the mixed backend at each hardware-decoder share, with
and without the preallocation hints set to the largest image.  ``parity`` decodes the same
files on the mixed and the CPU backend, with and without ``jpeg_fancy_upsampling``, and
reports the largest and mean absolute pixel difference.  Exit status 1 when a preset fails.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from itertools import count
from pathlib import Path

import numpy as np
import torch

from fastleaf.data.augment import AugmentSpec
from fastleaf.data.table import load_table
from fastleaf.loaders import LoaderOptions, create_loader
from fastleaf.utils.device import configure_device, resolve_device

PRESETS = ("kaggle", "light", "none", "eval")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def check_batch(images: torch.Tensor, labels: torch.Tensor, options: LoaderOptions, size: int) -> None:
    want = (options.batch_size, 3, size, size)
    if tuple(images.shape) != want or images.dtype != options.dtype:
        raise AssertionError(f"batch {tuple(images.shape)} {images.dtype}, expected {want} {options.dtype}")
    if images.device.type != options.device.type or labels.device.type != options.device.type:
        raise AssertionError(f"batch on {images.device}/{labels.device}, expected {options.device}")
    if not torch.isfinite(images).all():
        raise AssertionError("non-finite pixels")


def run_preset(samples, name: str, device: torch.device, args) -> dict:
    spec = AugmentSpec.eval_preset(args.img_size) if name == "eval" else \
        AugmentSpec.train_preset(args.img_size, name)
    options = LoaderOptions(batch_size=args.batch_size, device=device, channels_last=True,
                            workers=args.workers, drop_last=spec.train,
                            dtype=torch.bfloat16 if device.type == "cuda" else torch.float32)
    t0 = time.perf_counter()
    loader = create_loader(samples, spec, options, "dali")
    setup_s, seen, t1 = time.perf_counter() - t0, 0, None
    for epoch in count():
        loader.set_epoch(epoch)
        before = seen
        for images, labels in loader:
            if images.shape[0] != args.batch_size:      # the eval view's last, ragged batch
                continue
            check_batch(images, labels, options, args.img_size)
            seen += 1
            if seen == 1:       # the first batch pays the pipeline's start
                sync(device)
                t1 = time.perf_counter()
                first = images.float().mean().item(), images.float().std().item()
            if seen == args.batches:
                break
        if seen == args.batches:
            break
        if seen == before:
            raise AssertionError(f"epoch {epoch} gave no batch of {args.batch_size}")
    sync(device)
    rate = (seen - 1) * args.batch_size / max(time.perf_counter() - t1, 1e-9) if seen > 1 else None
    return {"batches": seen, "setup_s": round(setup_s, 2), "img_per_s": rate and round(rate, 1),
            "first_batch_mean": round(first[0], 3), "first_batch_std": round(first[1], 3)}


def presets(samples, device, args) -> tuple[dict, bool]:
    out, ok = {}, True
    for name in PRESETS:
        try:
            out[name] = run_preset(samples, name, device, args)
        except Exception as err:      # each preset reports; the others still run
            out[name] = f"failed: {type(err).__name__}: {str(err)[:400]}"
            ok = False
        print(f"preset {name:<7} {out[name]}", flush=True)
    return out, ok


def decode_pipeline(files: list[str], device: torch.device, args, **decoder):
    from nvidia.dali import fn, pipeline_def, types

    gpu = device.type == "cuda"

    @pipeline_def(batch_size=args.batch_size, num_threads=args.workers, prefetch_queue_depth=2,
                  device_id=(device.index or 0) if gpu else None)
    def pipeline():
        jpegs, _ = fn.readers.file(files=files)
        return fn.decoders.image(jpegs, device="mixed" if gpu else "cpu", output_type=types.RGB,
                                 **decoder)

    pipe = pipeline()
    pipe.build()
    return pipe


def largest_image(files: list[str]) -> tuple[int, int]:
    from PIL import Image

    sizes = [Image.open(f).size for f in files]
    return max(w for w, _ in sizes), max(h for _, h in sizes)


def decode_rates(files: list[str], device: torch.device, args) -> list[dict]:
    """img/s of the decoder alone per (hw_decoder_load, hints); one CPU row on a CPU."""
    width, height = largest_image(files)
    cases = [{}] if device.type != "cuda" else [
        {"hw_decoder_load": load, **hints} for load in args.loads
        for hints in ({}, {"preallocate_width_hint": width, "preallocate_height_hint": height})]
    rows = []
    for case in cases:
        pipe = decode_pipeline(files, device, args, **case)
        for _ in range(2):          # warm-up: allocations and the decoders' own start
            pipe.run()
        t0 = time.perf_counter()
        for _ in range(args.batches):
            pipe.run()
        rate = args.batches * args.batch_size / (time.perf_counter() - t0)
        rows.append({"decoder": "mixed" if device.type == "cuda" else "cpu", **case,
                     "img_per_s": round(rate, 1)})
        print(rows[-1], flush=True)
        del pipe
    return rows


def parity(files: list[str], device: torch.device, args) -> list[dict]:
    """Largest and mean |mixed - cpu| per pixel over one batch, with and without fancy upsampling."""
    cpu = torch.device("cpu")
    rows = []
    for fancy in (True, False):
        decoded = []
        for dev in (device, cpu):
            out, = decode_pipeline(files, dev, args, jpeg_fancy_upsampling=fancy).run()
            out = out.as_cpu() if hasattr(out, "as_cpu") else out
            decoded.append([np.asarray(out[i]).astype(np.int16) for i in range(len(out))])
        diffs = [np.abs(g - c) for g, c in zip(*decoded, strict=True)]
        rows.append({"jpeg_fancy_upsampling": fancy, "images": len(diffs),
                     "max_abs": int(max(d.max() for d in diffs)),
                     "mean_abs": round(float(np.mean([d.mean() for d in diffs])), 4)})
        print(rows[-1], flush=True)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=("presets", "decode", "parity"))
    p.add_argument("--data", required=True, help="Kaggle-layout folder")
    p.add_argument("--device", default="auto")
    p.add_argument("--img-size", type=int, default=224)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--batches", type=int, default=20, help="batches per preset / timed decode batches")
    p.add_argument("--workers", type=int, default=4, help="DALI CPU threads")
    p.add_argument("--loads", type=lambda s: [float(x) for x in s.split(",")], default=[0, 0.65, 1],
                   help="hw_decoder_load values to time (decode)")
    p.add_argument("--json", help="write the result here")
    args = p.parse_args(argv)
    device = resolve_device(args.device)
    configure_device(device)
    samples = load_table(args.data, val_fraction=0.0).all_train
    files = [str(f) for f in samples.paths]
    ok = True
    if args.what == "presets":
        samples = samples.repeat(2 * args.batch_size)       # every view fills a whole batch
        result, ok = presets(samples, device, args)
    elif args.what == "decode":
        result = decode_rates(files, device, args)
    elif device.type != "cuda":
        print("parity compares the mixed (GPU) decoder with the CPU one: needs CUDA")
        return 0
    else:
        result = parity(files[:args.batch_size], device, args)
    if args.json:
        Path(args.json).write_text(json.dumps({"device": str(device), args.what: result}, indent=1) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
