"""Batch-size ramp-up: the global batch size as a function of the step.

Workers produce groups of `group_rows` rows (the greatest common divisor of all local batch
sizes of the schedule); the main process joins as many groups as the current step needs. The
step count lives in the main process, so the schedule stays exact with any number of workers
and after a restore.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import logging
import math
from collections import Counter
from typing import Any

import grain
import numpy as np

LOGGER = logging.getLogger(__name__)


class BatchSchedule:
    """Global and per-host rows per step from `global_batch_size` and `{step: factor}`."""

    def __init__(
        self,
        global_batch_size: int,
        factors: dict[int, float] | None,
        *,
        host_count: int,
        data_parallel_size: int = 1,
    ):
        self.global_batch_size = global_batch_size
        self.host_count = host_count
        steps = sorted(int(s) for s in (factors or {}))
        self._boundaries = steps
        self._sizes = [round(factors[s] * global_batch_size) for s in steps] if factors else []
        for step, size in zip(steps, self._sizes, strict=True):
            for divisor, what in (
                (host_count, "data-loading hosts"),
                (data_parallel_size, "data-parallel devices"),
            ):
                if size % divisor:
                    raise ValueError(
                        f"Invalid data config: batch_rampup_factors gives {size} rows at step "
                        f"{step}, not divisible by the {divisor} {what}; choose factors whose "
                        f"batch is a multiple of {divisor}."
                    )
        all_sizes = [global_batch_size, *self._sizes]
        self.group_rows = functools.reduce(math.gcd, all_sizes) // host_count

    def global_rows(self, step: int) -> int:
        i = bisect.bisect_right(self._boundaries, step)
        return self._sizes[i - 1] if i else self.global_batch_size

    def local_rows(self, step: int) -> int:
        return self.global_rows(step) // self.host_count

    def rows_before(self, step: int) -> int:
        """Global rows of all steps before `step`, summed per constant stretch (O(changes))."""
        edges = [0, *[b for b in self._boundaries if 0 < b < step], step]
        return sum(
            (end - begin) * self.global_rows(begin) for begin, end in itertools.pairwise(edges)
        )

    def steps_covering(self, rows: int) -> int:
        """The fewest steps whose batches hold at least `rows` global rows."""
        begin, before = 0, 0
        for boundary in [*[b for b in self._boundaries if b > 0], None]:
            size = self.global_rows(begin)
            if boundary is None or before + (boundary - begin) * size >= rows:
                return begin + max(0, -(-(rows - before) // size))
            before += (boundary - begin) * size
            begin = boundary
        raise AssertionError("unreachable: the last stretch has no end")

    @property
    def is_constant(self) -> bool:
        return not self._sizes


class RampupBatchIterDataset(grain.IterDataset):
    """Grain IterDataset: row groups → local batches whose size follows a `BatchSchedule`."""

    def __init__(
        self,
        parent: grain.IterDataset,
        schedule: BatchSchedule,
        *,
        pad_remainder: bool,
        first_step: int = 0,
    ):
        super().__init__(parent)
        self.schedule = schedule
        self.pad_remainder = pad_remainder
        self.first_step = first_step

    def __iter__(self) -> _RampupBatchIterator:
        return _RampupBatchIterator(self._parent.__iter__(), self)

    def __str__(self) -> str:
        return f"RampupBatchIterDataset(group_rows={self.schedule.group_rows})"


class _RampupBatchIterator(grain.DatasetIterator):
    def __init__(self, parent: grain.DatasetIterator, spec: RampupBatchIterDataset):
        super().__init__(parent)
        self._spec = spec
        self._step = spec.first_step

    def __next__(self) -> tuple[np.ndarray, Counter]:
        schedule = self._spec.schedule
        rows = schedule.local_rows(self._step)
        groups = list(itertools.islice(self._parent, rows // schedule.group_rows))
        got = sum(fields.shape[1] for fields, _ in groups)
        if not groups or (got < rows and not self._spec.pad_remainder):
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
            padding = np.zeros((groups[0][0].shape[0], rows - got, groups[0][0].shape[2]), np.int32)
            groups.append((padding, None))
            counts["padding_rows"] += rows - got
            counts["padding_tokens"] += padding[0].size
        return np.concatenate([fields for fields, _ in groups], axis=1), counts

    def get_state(self) -> dict[str, Any]:
        return {"parent": self._parent.get_state(), "step": self._step}

    def set_state(self, state: dict[str, Any]) -> None:
        self._parent.set_state(state["parent"])
        self._step = state["step"]
