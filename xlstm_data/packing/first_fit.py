"""First fit in arrival order: each document goes into the first row (by index) with room.

Documents keep their stream order inside and across rows as far as room allows, which Grain's
`FirstFitPackIterDataset` users expect. The rows' free room sits in a max segment tree whose
leaves start full (rows not opened yet), so finding the first row with room is one descent:
O(log documents) plain integer steps per document.
"""

from __future__ import annotations

import numpy as np

from xlstm_data.packing.placement import Placement


def first_fit(lengths: np.ndarray, capacity: int) -> Placement:
    """Places documents (each at most `capacity` long) in order, each into the first row that
    still has room for it."""
    lengths = np.asarray(lengths, dtype=np.int64)
    count = len(lengths)
    row_of = np.full(count, -1, dtype=np.int64)
    offset_of = np.zeros(count, dtype=np.int64)
    leaves = 1 << max(0, int(count - 1).bit_length())
    free = [capacity] * (2 * leaves)  # free[1] is the root; leaves start at `leaves`
    num_rows = 0
    for doc, length in enumerate(lengths.tolist()):
        if length == 0:
            continue
        node = 1
        while node < leaves:
            node = 2 * node if free[2 * node] >= length else 2 * node + 1
        row = node - leaves
        row_of[doc], offset_of[doc] = row, capacity - free[node]
        num_rows = max(num_rows, row + 1)
        free[node] -= length
        node //= 2
        while node:
            free[node] = max(free[2 * node], free[2 * node + 1])
            node //= 2
    return Placement(row_of, offset_of, num_rows)
