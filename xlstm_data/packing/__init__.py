"""Packing algorithms: given document lengths and a row capacity, which row each document
goes into and where. Every algorithm returns a `Placement`; `place` picks one by name (the
`packing` config field), for the online packer and for global plans alike.

To add an algorithm: write `name(lengths, capacity) -> Placement` in a module of its own and
add it to `ALGORITHMS`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from xlstm_data.packing.best_fit import best_fit_decreasing
from xlstm_data.packing.first_fit import first_fit
from xlstm_data.packing.placement import Placement, one_per_row

ALGORITHMS: dict[str, Callable[[np.ndarray, int], Placement]] = {
    "best_fit": best_fit_decreasing,
    "first_fit": first_fit,
    "none": one_per_row,
}


def place(lengths: np.ndarray, capacity: int, algorithm: str) -> Placement:
    """Places documents of `lengths` (each at most `capacity`) into rows by `algorithm`."""
    return ALGORITHMS[algorithm](np.asarray(lengths, dtype=np.int64), capacity)


__all__ = ["ALGORITHMS", "Placement", "place"]
