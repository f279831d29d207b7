"""Rows → fixed-size groups of rows with the `LLMBatch` fields, padded or dropped at the end."""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from typing import Any, Literal

import grain
import numpy as np

from xlstm_data.transforms.pack import Row
from xlstm_data.transforms.shift import shift_rows

LOGGER = logging.getLogger(__name__)


class RowGroupsIterDataset(grain.IterDataset):
    """Grain IterDataset: `Row`s → `(fields, counts)` with `group_rows` rows per group; `fields`
    is the int32 array [6, group_rows, length] of `shift_rows`.

    At the end of a finite stream the last partial group is padded with fully masked rows
    (`pad_remainder=True`) or dropped and counted.
    """

    def __init__(
        self,
        parent: grain.IterDataset,
        *,
        group_rows: int,
        pad_remainder: bool,
        shift_target: Literal["inputs", "targets", "none"],
        first_input_id: int,
    ):
        super().__init__(parent)
        self.group_rows = group_rows
        self.pad_remainder = pad_remainder
        self.shift_target = shift_target
        self.first_input_id = first_input_id

    def __iter__(self) -> _RowGroupsIterator:
        return _RowGroupsIterator(self._parent.__iter__(), self)

    def __str__(self) -> str:
        return (
            f"RowGroupsIterDataset(group_rows={self.group_rows}, "
            f"pad_remainder={self.pad_remainder}, shift_target={self.shift_target!r})"
        )


class _RowGroupsIterator(grain.DatasetIterator):
    def __init__(self, parent: grain.DatasetIterator, spec: RowGroupsIterDataset):
        super().__init__(parent)
        self._spec = spec
        self._exhausted = False

    def __next__(self) -> tuple[np.ndarray, Counter]:
        spec = self._spec
        if self._exhausted:
            raise StopIteration
        rows: list[Row] = list(itertools.islice(self._parent, spec.group_rows))
        counts: Counter = Counter()
        for row in rows:
            if row.counts:
                counts.update(row.counts)
        missing = spec.group_rows - len(rows)
        if missing:
            self._exhausted = True
            if rows and not spec.pad_remainder:
                LOGGER.warning(
                    "Dropped the last %d rows of the stream (drop_remainder=True).", len(rows)
                )
            if not rows or not spec.pad_remainder:
                raise StopIteration
            counts["padding_rows"] += missing
            counts["padding_tokens"] += missing * len(rows[0].targets)
        fields = shift_rows(
            [r.targets for r in rows],
            [r.segment_ids for r in rows],
            [r.positions for r in rows],
            rows=spec.group_rows,
            shift_target=spec.shift_target,
            first_input_id=spec.first_input_id,
        )
        return fields, counts

    def get_state(self) -> dict[str, Any]:
        return {"parent": self._parent.get_state(), "exhausted": self._exhausted}

    def set_state(self, state: dict[str, Any]) -> None:
        self._parent.set_state(state["parent"])
        self._exhausted = state["exhausted"]
