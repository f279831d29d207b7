"""Global record keys over a list of files: which file, which record in it, grouped by file."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


class RecordFiles:
    """Records numbered across files: file i holds keys [ends[i] - counts[i], ends[i])."""

    def __init__(self, records_per_file: list[int] | np.ndarray):
        self.counts = np.asarray(records_per_file, dtype=np.int64)
        self.ends = np.cumsum(self.counts)

    def __len__(self) -> int:
        return int(self.ends[-1]) if len(self.ends) else 0

    def locate(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(file index, record index within that file) of each key."""
        keys = np.asarray(keys, dtype=np.int64)
        if keys.size and (keys.min() < 0 or keys.max() >= len(self)):
            raise IndexError(f"record keys must lie in [0, {len(self)}).")
        file_index = np.searchsorted(self.ends, keys, side="right")
        return file_index, keys - (self.ends[file_index] - self.counts[file_index])

    def by_file(self, keys: np.ndarray) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """(file index, positions of its keys in `keys`, their records in it, ascending), file
        by file: one read call per file, in file order."""
        file_index, local = self.locate(keys)
        order = np.lexsort((local, file_index))
        bounds = np.flatnonzero(np.diff(file_index[order])) + 1
        for group in np.split(order, bounds) if len(order) else []:
            yield int(file_index[group[0]]), group, local[group]
