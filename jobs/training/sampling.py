"""Length-grouped batches that a resumed run draws in the same order as an uninterrupted one.

transformers' `LengthGroupedSampler` shuffles with the global torch RNG each time an epoch starts and has
no `set_epoch`. A run resumed in its second epoch therefore drew that epoch's order from the RNG as the
seed left it, which is the first epoch's order, and then skipped the batches it had trained: some rows
trained twice in that epoch, others not at all. (accelerate gives the random sampler a per-epoch seed;
this one it leaves alone.) Here the order of epoch `e` is drawn from its own generator seeded with
`seed + e`, whatever ran before.
"""

from __future__ import annotations

from typing import Any


def epoch_seeded(sampler: Any, seed: int) -> Any:
    """`sampler` itself, or, for a `LengthGroupedSampler`, the same grouping seeded per epoch."""
    from transformers.trainer_pt_utils import LengthGroupedSampler

    if type(sampler) is not LengthGroupedSampler:
        return sampler
    return _epoch_seeded_class()(sampler.batch_size, lengths=sampler.lengths, seed=seed)


_CLASS = None


def _epoch_seeded_class() -> type:
    global _CLASS
    if _CLASS is None:
        import torch
        from transformers.trainer_pt_utils import LengthGroupedSampler

        class EpochSeededLengthGroupedSampler(LengthGroupedSampler):
            def __init__(self, batch_size: int, lengths: list[int], seed: int):
                super().__init__(batch_size, lengths=lengths, generator=torch.Generator())
                self.seed = seed
                self.epoch = 0

            def set_epoch(self, epoch: int) -> None:  # the Trainer calls it before each epoch
                self.epoch = epoch

            def __iter__(self):
                self.generator.manual_seed(self.seed + self.epoch)
                return super().__iter__()

        _CLASS = EpochSeededLengthGroupedSampler
    return _CLASS
