"""Rows → local batches whose size follows the `BatchSchedule`, padded or dropped at the end.

Rows travel in groups of `schedule.group_rows` (the greatest common divisor of every local
batch size of the schedule): one source's packer hands them out so, mixed rows are joined by
Grain's own `batch`; the main process then joins as many groups as the current step needs.
The step count lives in the main process, so ramp-up stays exact with any number of workers
and after a restore. The end of a finite stream is handled here and only here: the last
partial batch is padded with fully masked rows (`pad_remainder`) or dropped, and either is
counted or logged.
"""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import grain
import numpy as np

from xlstm_data.buffers import concatenate_planes
from xlstm_data.schedule import BatchSchedule
from xlstm_data.stages.pack import join_rows

LOGGER = logging.getLogger(__name__)

Finish = Callable[[tuple[np.ndarray, Counter]], Any]
"""What becomes of each local batch `(stacked fields, counts)` where it is made: the loader's
transfer to global arrays."""


def row_groups(rows: grain.IterDataset, schedule: BatchSchedule) -> grain.IterDataset:
    """Single rows (`Rows` of one row, mixed from several sources) in groups of
    `schedule.group_rows` (the last group may be smaller)."""
    return rows.batch(schedule.group_rows, batch_fn=join_rows)


class BatchIterDataset(grain.IterDataset):
    """Grain IterDataset: row groups (`Rows`) → local batches `(fields, counts)` of
    `schedule.local_rows(step)` rows, from step `first_step` on."""

    def __init__(
        self,
        parent: grain.IterDataset,
        schedule: BatchSchedule,
        *,
        pad_remainder: bool,
        first_step: int = 0,
        skip_steps: Sequence[int] = (),
        finish: Finish | None = None,
    ):
        """`skip_steps`: data steps whose batches are made and dropped (same rows on every
        run, so the steps after them are what they would have been); each batch delivered
        goes through `finish` (if given)."""
        super().__init__(parent)
        self.schedule = schedule
        self.pad_remainder = pad_remainder
        self.first_step = first_step
        self.skip_steps = frozenset(skip_steps)
        self.finish = finish

    def __iter__(self) -> _BatchIterator:
        return _BatchIterator(self._parent.__iter__(), self)

    def __str__(self) -> str:
        end = "pad" if self.pad_remainder else "drop"
        return f"BatchIterDataset(groups of {self.schedule.group_rows} rows, {end} the remainder)"


class _BatchIterator(grain.DatasetIterator):
    def __init__(self, parent: grain.DatasetIterator, spec: BatchIterDataset):
        super().__init__(parent)
        self._spec = spec
        self._step = spec.first_step

    def __next__(self) -> Any:
        skipped = 0
        while True:
            batch = self._next_batch()
            if self._step - 1 not in self._spec.skip_steps:
                break
            skipped += 1
            LOGGER.warning("Skipped the batch of step %d (skip_steps).", self._step - 1)
        if skipped:  # a copy: a batch's counts may be shared with the rows it came from
            fields, counts = batch
            batch = fields, Counter(counts) + Counter(skipped_steps=skipped)
        return batch if self._spec.finish is None else self._spec.finish(batch)

    def _next_batch(self) -> tuple[np.ndarray, Counter]:
        spec = self._spec
        rows = spec.schedule.local_rows(self._step)
        groups, got = [], 0
        for group in itertools.islice(self._parent, rows // spec.schedule.group_rows):
            groups.append(group.as_group())
            got += len(group)
            if got < len(groups) * spec.schedule.group_rows:
                break  # the last, partial group of the stream
        if not groups or (got < rows and not spec.pad_remainder):
            if groups:
                LOGGER.warning("Dropped the last %d rows of the stream (drop_remainder=True).", got)
            raise StopIteration
        self._step += 1
        if len(groups) == 1 and got == rows:
            return groups[0]
        counts: Counter = Counter()
        for _, group_counts in groups:
            counts.update(group_counts)
        if got < rows:  # the end of a finite stream: fully masked rows
            _, count, length = groups[0][0].shape
            groups.append((np.zeros((rows - got, count, length), np.int32), None))
            counts["padding_rows"] += rows - got
            counts["padding_tokens"] += (rows - got) * length
        return concatenate_planes([fields for fields, _ in groups]), counts

    def get_state(self) -> dict[str, Any]:
        return {"parent": self._parent.get_state(), "step": self._step}

    def set_state(self, state: dict[str, Any]) -> None:
        self._parent.set_state(state["parent"])
        self._step = state["step"]
