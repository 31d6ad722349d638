"""Kernel launches per batch of the decode-once caches' GPU augmentation, counted on the CPU.

    PYTHONPATH=. python benchmarks/launch_count.py [--batch 50] [--size 224] [--json FILE]

On a GPU at small batches (the paper's 50) the batched augmentation is launch-bound: its cost is
the number of kernels, not their work.  The torch profiler on the CPU records one event per
ATen operator that does work; on CUDA each of those is (at least) one kernel launch, so their
count per batch is the figure to lower.  Views and metadata operators (view, reshape, expand,
slicing, empty allocation) launch nothing and are left out.

Counts one training batch through ``BatchAugment`` + ``normalise`` per preset.
"""
from __future__ import annotations

import argparse
import json
from collections import Counter

import torch
from torch.profiler import ProfilerActivity, profile

from fastleaf.data.augment import AugmentSpec
from fastleaf.data.batch_augment import BatchAugment
from fastleaf.loaders.base import normaliser_for

# operators that only make views or allocate: no kernel on a GPU
NO_KERNEL = {"aten::view", "aten::reshape", "aten::_reshape_alias", "aten::expand",
             "aten::as_strided", "aten::slice", "aten::select", "aten::unsqueeze",
             "aten::squeeze", "aten::permute", "aten::transpose", "aten::t", "aten::empty",
             "aten::empty_strided", "aten::empty_like", "aten::detach", "aten::alias",
             "aten::lift_fresh", "aten::resolve_conj", "aten::resolve_neg", "aten::unbind",
             "aten::split", "aten::chunk", "aten::narrow", "aten::_unsafe_view",
             "aten::view_as", "aten::expand_as", "aten::contiguous", "aten::result_type",
             "aten::is_nonzero", "aten::item", "aten::_local_scalar_dense", "aten::numpy_T",
             "aten::unfold", "aten::flatten", "aten::as_strided_", "aten::resize_",
             "aten::to", "aten::_to_copy", "aten::scalar_tensor", "aten::empty_strided",
             "aten::set_", "aten::_unsafe_split", "aten::movedim"}



def scalar_only(event) -> bool:
    """Every input 0-dimensional: a Python number wrapped as a tensor on the CPU (``x * 2.0``),
    which a CUDA kernel takes as an argument instead of a launch of its own."""
    shapes = [shape for shape in event.input_shapes if isinstance(shape, list)]
    return bool(shapes) and all(len(shape) == 0 for shape in shapes)


def leaf_ops(events) -> Counter:
    """ATen operators with no ATen operator below them (the ones that do the work)."""
    counts = Counter()
    for event in events:
        if not event.name.startswith("aten::") or event.name in NO_KERNEL or scalar_only(event):
            continue
        if any(child.name.startswith("aten::") and child.name not in NO_KERNEL
               for child in event.cpu_children):
            continue
        counts[event.name] += 1
    return counts


def count_batch(spec: AugmentSpec, batch: int, channels_last: bool = True) -> Counter:
    images = torch.randint(0, 256, (batch, 3, spec.size, spec.size), dtype=torch.uint8)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    normalise = normaliser_for(spec, images.device)     # a loader builds it once
    augment = BatchAugment(spec)
    g = torch.Generator().manual_seed(0)
    for _ in range(2):     # the first batch sets up per-loader constants; count the second
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            views = augment(images, g) if not augment.identity else images
            normalise(views, channels_last=channels_last, dtype=torch.bfloat16)
    return leaf_ops(prof.events())


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--json", default=None, help="also write the counts here")
    args = parser.parse_args(argv)
    result = {}
    for strength in ("kaggle", "light", "none"):
        counts = count_batch(AugmentSpec.train_preset(args.size, strength), args.batch)
        result[strength] = {"launches": sum(counts.values()), "ops": dict(counts.most_common())}
        print(f"{strength:7s} {sum(counts.values()):4d} launches per batch of {args.batch}: "
              + ", ".join(f"{name[6:]} {n}" for name, n in counts.most_common(12)))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    main()
