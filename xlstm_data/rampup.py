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

    def __next__(self) -> tuple[dict[str, np.ndarray], Counter]:
        schedule = self._spec.schedule
        needed = schedule.local_rows(self._step) // schedule.group_rows
        groups = []
        for group in self._parent:
            groups.append(group)
            if len(groups) == needed:
                break
        if not groups or (len(groups) < needed and not self._spec.pad_remainder):
            if groups:
                LOGGER.warning(
                    "Dropped the last %d rows of the stream (drop_remainder=True).",
                    sum(len(g[0]["inputs"]) for g in groups),
                )
            raise StopIteration
        self._step += 1
        if needed == 1:
            return groups[0]
        counts: Counter = Counter()
        for _, group_counts in groups:
            counts.update(group_counts)
        fields = {k: np.concatenate([g[0][k] for g in groups]) for k in groups[0][0]}
        missing = schedule.local_rows(self._step - 1) - len(fields["inputs"])
        if missing:
            counts["padding_rows"] += missing
            counts["padding_tokens"] += missing * fields["inputs"].shape[1]
            fields = {
                k: np.concatenate([v, np.zeros((missing, v.shape[1]), v.dtype)])
                for k, v in fields.items()
            }
        return fields, counts

    def get_state(self) -> dict[str, Any]:
        return {"parent": self._parent.get_state(), "step": self._step}

    def set_state(self, state: dict[str, Any]) -> None:
        self._parent.set_state(state["parent"])
        self._step = state["step"]
