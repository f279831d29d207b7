"""Epoch windows: what `len(loader)` and one `for batch in loader` loop mean.

Training loops written for xlstm-jax walk "epochs" with `for batch in train_loader` and size
schedules with `len(train_loader)`. A window is one such loop: at most `iterator_length`
batches, taken from the loader's stream, which goes on where the last loop stopped; a finite
stream that has ended starts over with the next loop, so `for batch in eval_loader` is one
full pass every time. `next(loader)` itself walks the stream and never stops at a window.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any


@dataclasses.dataclass(frozen=True)
class WindowLengths:
    iterator_length: int
    """`len(loader)`: batches per epoch, exact where the reader knows them, else xlstm-jax's
    estimate (records per epoch / global batch size)."""
    window_limit: int | None
    """Batches after which a `for` loop stops (None: when the stream ends)."""
    step_limit: int | None
    """Batches of a finite stream, where known (num_epochs * exact length or cap)."""


def window_lengths(reader: Any) -> WindowLengths:
    """The estimate counts records, not rows: an upper bound when documents are packed and
    fit a row, an undercount when long documents are split into several rows. So a finite
    stream is not cut at the estimate (a loop runs to its end); `max_steps_per_epoch` always
    caps a loop, and ends a finite stream after `num_epochs` loops' worth of batches.
    `reader` is a loader's `Reader` (loader.py)."""
    batch, cap = reader.schedule.global_batch_size, reader.max_steps_per_epoch
    epochs = reader.num_epochs
    if reader.steps_per_epoch is not None:
        exact = reader.steps_per_epoch
        return WindowLengths(exact, exact, None if epochs is None else exact * epochs)
    rounding = math.floor if reader.drop_remainder else math.ceil
    estimate = max(1, rounding(reader.dataset_size / batch))
    if cap is not None:
        estimate = min(estimate, cap)
    if epochs is None:
        return WindowLengths(estimate, estimate, None)
    return WindowLengths(estimate, cap, None if cap is None else cap * epochs)


class EpochWindow:
    """One `for` loop over a loader (what `iter(loader)` returns); other attributes are the
    loader's, so `iter(loader).get_state()` works too."""

    def __init__(self, loader: Any):
        """`loader`: the `MultiHostDataLoadIterator` this loop walks."""
        self.loader = loader

    def __iter__(self) -> EpochWindow:
        return self

    def __len__(self) -> int:
        return len(self.loader)

    def __next__(self) -> Any:
        limit = self.loader.lengths.window_limit
        if limit is not None and self.loader.window_step >= limit:
            raise StopIteration
        return next(self.loader)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)
