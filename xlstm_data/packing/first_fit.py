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
    # First fit never leaves two rows each at most half full (the later one's documents would
    # have fit into the earlier), so it opens at most 2 * tokens / capacity + 1 rows.
    most_rows = min(count, 2 * int(lengths.sum()) // max(capacity, 1) + 1)
    leaves = 1 << max(0, int(most_rows - 1).bit_length())
    free = [capacity] * (2 * leaves)  # free[1] is the root; leaves start at `leaves`
    rows, offsets, num_rows = row_of.tolist(), offset_of.tolist(), 0
    for doc, length in enumerate(lengths.tolist()):
        if length == 0:
            continue
        node = 1
        while node < leaves:
            node = 2 * node if free[2 * node] >= length else 2 * node + 1
        rows[doc], offsets[doc] = node - leaves, capacity - free[node]
        num_rows = max(num_rows, node - leaves + 1)
        free[node] -= length
        while node > 1:  # the room of the ancestors, up to the first that does not change
            node //= 2
            room = max(free[2 * node], free[2 * node + 1])
            if free[node] == room:
                break
            free[node] = room
    return Placement(np.array(rows, np.int64), np.array(offsets, np.int64), num_rows)
