"""Where each document of a window goes: the result every packing algorithm returns."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass
class Placement:
    """Document i goes into row `row[i]`, starting at `offset[i]` (row -1: empty, not placed)."""

    row: np.ndarray
    offset: np.ndarray
    num_rows: int


def one_per_row(lengths: np.ndarray, capacity: int = 0) -> Placement:
    """Every document (empty ones too, as fully masked rows) in a row of its own."""
    count = len(lengths)
    return Placement(np.arange(count, dtype=np.int64), np.zeros(count, np.int64), count)
