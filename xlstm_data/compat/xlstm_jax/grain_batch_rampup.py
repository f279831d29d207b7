"""xlstm-jax's batch ramp-up names: schedules (step → batch size) and a ramping batch stage.

The schedules follow xlstm-data's rule (`xlstm_data.schedule.BatchSchedule`): from each
boundary step on, the batch is `factor * batch_size` (factors are not multiplied together).
`BatchRampUpIterDataset` batches any Grain `IterDataset` of examples by such a schedule; the
xlstm-data pipeline itself ramps whole packed batches (`batch_rampup_factors`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import grain
import jax
import numpy as np

from xlstm_data.schedule import BatchSchedule


def constant_rampup_schedule(batch_size: int) -> Callable[[int], int]:
    return lambda step: batch_size


def stepwise_rampup_schedule(
    batch_size: int, boundaries_and_scales: dict[int, float]
) -> Callable[[int], int]:
    """Step `s` gets `batch_size * factor` of the largest boundary ≤ s (`batch_size` before
    the first boundary)."""
    schedule = BatchSchedule(
        batch_size, {int(s): f for s, f in boundaries_and_scales.items()}, host_count=1
    )
    return schedule.global_rows


def create_batch_rampup_schedule(
    batch_size: int, schedule_type: str, boundaries_and_scales: dict[int, float] | None = None
) -> Callable[[int], int]:
    if schedule_type == "constant":
        return constant_rampup_schedule(batch_size)
    if schedule_type == "stepwise":
        if boundaries_and_scales is None:
            raise ValueError("A stepwise ramp-up schedule needs boundaries_and_scales.")
        return stepwise_rampup_schedule(batch_size, boundaries_and_scales)
    raise ValueError(f"Unknown ramp-up schedule type {schedule_type!r}: constant or stepwise.")


def _stack(values: Sequence[Any]) -> Any:
    return jax.tree.map(lambda *leaves: np.stack(leaves), *values)


class _BatchRampUpDatasetIterator(grain.DatasetIterator):
    def __init__(self, parent: grain.DatasetIterator, schedule, drop_remainder, batch_fn):
        super().__init__(parent)
        self._schedule, self._drop_remainder, self._batch_fn = schedule, drop_remainder, batch_fn
        self._batch_step = 0

    def __next__(self) -> Any:
        size = self._schedule(self._batch_step)
        if size <= 0:
            raise ValueError(f"The ramp-up schedule gives {size} rows at step {self._batch_step}.")
        values = []
        for _ in range(size):
            try:
                values.append(next(self._parent))
            except StopIteration:
                break
        if not values or (self._drop_remainder and len(values) < size):
            raise StopIteration
        self._batch_step += 1
        return self._batch_fn(values)

    def get_state(self) -> dict[str, Any]:
        return {"batch_step": self._batch_step, "parent": self._parent.get_state()}

    def set_state(self, state: dict[str, Any]) -> None:
        self._batch_step = state["batch_step"]
        self._parent.set_state(state["parent"])


class BatchRampUpIterDataset(grain.IterDataset):
    """Batches of `batch_rampup_schedule(step)` elements, stacked leaf by leaf by default."""

    def __init__(
        self,
        parent: grain.IterDataset,
        batch_rampup_schedule: Callable[[int], int],
        drop_remainder: bool = False,
        batch_fn: Callable[[Sequence[Any]], Any] | None = None,
    ):
        super().__init__(parent)
        self.batch_rampup_schedule = batch_rampup_schedule
        self.drop_remainder = drop_remainder
        self.batch_fn = batch_fn or _stack

    def __iter__(self) -> _BatchRampUpDatasetIterator:
        return _BatchRampUpDatasetIterator(
            self._parent.__iter__(), self.batch_rampup_schedule, self.drop_remainder, self.batch_fn
        )


def batch_dataset_with_rampup(
    parent: grain.IterDataset,
    batch_size: int,
    drop_remainder: bool = False,
    batch_fn: Callable[[Sequence[Any]], Any] | None = None,
    schedule_type: str = "stepwise",
    boundaries_and_scales: dict[int, float] | None = None,
) -> grain.IterDataset:
    """Grain's plain `batch` without a ramp-up, else a `BatchRampUpIterDataset`."""
    if schedule_type == "constant" or boundaries_and_scales is None:
        return parent.batch(batch_size, drop_remainder=drop_remainder, batch_fn=batch_fn)
    schedule = create_batch_rampup_schedule(batch_size, schedule_type, boundaries_and_scales)
    return BatchRampUpIterDataset(parent, schedule, drop_remainder, batch_fn)
