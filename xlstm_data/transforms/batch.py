"""Rows → fixed-size groups of rows with the `LLMBatch` fields, padded or dropped at the end."""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from typing import Any

import grain
import numpy as np

from xlstm_data.transforms.pack import Row

LOGGER = logging.getLogger(__name__)


class RowGroupsIterDataset(grain.IterDataset):
    """Grain IterDataset: `Row`s → `(fields, counts)` with `group_rows` rows per group; `fields`
    is the stacked int32 array [4 or 6, group_rows, length] of the rows' fields (`shift_rows`).

    Consecutive rows of one packing window are one slice; others are stacked. At the end of a
    finite stream the last partial group is padded with fully masked (all zero) rows
    (`pad_remainder=True`) or dropped and logged.
    """

    def __init__(self, parent: grain.IterDataset, *, group_rows: int, pad_remainder: bool):
        super().__init__(parent)
        self.group_rows = group_rows
        self.pad_remainder = pad_remainder

    def __iter__(self) -> _RowGroupsIterator:
        return _RowGroupsIterator(self._parent.__iter__(), self)

    def __str__(self) -> str:
        return (
            f"RowGroupsIterDataset(group_rows={self.group_rows}, "
            f"pad_remainder={self.pad_remainder})"
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
        fields = _join(rows)
        if missing:
            padding = np.zeros((fields.shape[0], missing, fields.shape[2]), np.int32)
            fields = np.concatenate([fields, padding], axis=1)
            counts["padding_rows"] += missing
            counts["padding_tokens"] += missing * fields.shape[2]
        return fields, counts

    def get_state(self) -> dict[str, Any]:
        return {"parent": self._parent.get_state(), "exhausted": self._exhausted}

    def set_state(self, state: dict[str, Any]) -> None:
        self._parent.set_state(state["parent"])
        self._exhausted = state["exhausted"]


def _join(rows: list[Row]) -> np.ndarray:
    """The rows' fields as one contiguous [4 or 6, rows, length] array: a slice of their window when
    they are consecutive rows of it, else stacked."""
    first = rows[0]
    consecutive = all(
        row.fields is first.fields and row.index == first.index + i for i, row in enumerate(rows)
    )
    if consecutive:
        return np.ascontiguousarray(first.fields[:, first.index : first.index + len(rows)])
    return np.stack([row.values for row in rows], axis=1)
