"""``synthetic`` backend: random batches already on the device, the compute-only ceiling.

No file is read: a few normalised random batches are made once, in the model's dtype and layout,
and handed out again and again.  The bench divides a real loader's images/sec by this one's to
get the pipeline efficiency.  Labels are the samples' own, in the base order (``Loader.order``:
table order for eval/test, shuffled per epoch for training), so the sizes, shards and
``set_epoch`` behave as in every backend.

    loader = create_loader(table.train, spec, options, backend="synthetic")
"""
from __future__ import annotations

import torch

from ..data.augment import AugmentSpec
from ..data.table import Samples
from .base import Loader, LoaderOptions

POOL = 2    # distinct random batches, so no step sees exactly the previous input


class SyntheticLoader(Loader):
    backend = "synthetic"

    def __init__(self, samples: Samples, spec: AugmentSpec, options: LoaderOptions):
        super().__init__(samples, spec, options)
        g = torch.Generator().manual_seed(options.seed)
        size = (min(options.batch_size, max(1, self.num_samples)), 3, spec.size, spec.size)
        # made on the host with a seeded generator, then moved: the same numbers on every device
        self.pool = [self.finish(torch.randn(size, generator=g)) for _ in range(POOL)]
        self.labels = torch.from_numpy(samples.labels).to(options.device)

    def finish(self, x: torch.Tensor) -> torch.Tensor:
        o = self.options
        x = x.to(o.device, o.dtype)
        return x.contiguous(memory_format=torch.channels_last) if o.channels_last else x

    def __iter__(self):
        bs = self.options.batch_size
        order = self.order()
        rows = torch.from_numpy(order).to(self.options.device)
        for step, start in enumerate(range(0, len(order), bs)):
            labels = self.labels.index_select(0, rows[start:start + bs])
            yield self.pool[step % POOL][: len(labels)], labels
