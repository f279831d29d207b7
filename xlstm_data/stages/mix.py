"""Rows of several sources mixed by weights that change at given steps (a schedule's stages,
online).

Grain's `mix` keeps one set of weights. Here each row's step is known from the batch schedule
(row r of a host belongs to the step whose rows hold it), and the row comes from the source
that is furthest behind its weight at that step (smooth weighted round robin): any stretch of
rows holds the sources in their weights, deterministically, and the state is the row count,
the sources' credits and their iterators' states.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grain
import numpy as np

from xlstm_data.schedule import BatchSchedule


class StagedMixIterDataset(grain.IterDataset):
    """Grain IterDataset: rows of `parents`, source chosen by the weights of the row's step;
    `stages` are `(first step, weights)` in order. Ends when a chosen source runs out (as
    Grain's mix does)."""

    def __init__(
        self,
        parents: Sequence[grain.IterDataset],
        stages: Sequence[tuple[int, Sequence[float]]],
        schedule: BatchSchedule,
    ):
        super().__init__(list(parents))
        self.starts = [start for start, _ in stages]
        self.weights = [np.asarray(w, np.float64) / np.sum(w) for _, w in stages]
        self.schedule = schedule

    def weights_of_row(self, row: int) -> np.ndarray:
        """The weights in effect for this host's row `row` (counted from step 0)."""
        step = self.schedule.steps_covering(row * self.schedule.host_count + 1) - 1
        stage = int(np.searchsorted(self.starts, step, side="right")) - 1
        return self.weights[stage]

    def __iter__(self) -> _StagedMixIterator:
        return _StagedMixIterator([p.__iter__() for p in self._parents], self)

    def __str__(self) -> str:
        return f"StagedMixIterDataset({len(self._parents)} sources, stages at {self.starts})"


class _StagedMixIterator(grain.DatasetIterator):
    def __init__(self, parents: list[grain.DatasetIterator], spec: StagedMixIterDataset):
        super().__init__(parents)
        self._spec = spec
        self._row = 0
        self._credit = np.zeros(len(parents))

    def __next__(self) -> Any:
        self._credit += self._spec.weights_of_row(self._row)
        chosen = int(np.argmax(self._credit))
        row = next(self._parents[chosen])
        self._credit[chosen] -= 1.0
        self._row += 1
        return row

    def get_state(self) -> dict[str, Any]:
        return {
            "row": self._row,
            "credit": self._credit.tolist(),
            "parents": [parent.get_state() for parent in self._parents],
        }

    def set_state(self, state: dict[str, Any]) -> None:
        for parent, parent_state in zip(self._parents, state["parents"], strict=True):
            parent.set_state(parent_state)
        self._row = state["row"]
        self._credit = np.asarray(state["credit"], np.float64)
