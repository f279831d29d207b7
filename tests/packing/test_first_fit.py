"""First fit in arrival order: the segment-tree search places exactly as a plain scan does."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from xlstm_data.packing import ALGORITHMS, place
from xlstm_data.packing.first_fit import first_fit


def reference_first_fit(lengths: list[int], capacity: int) -> tuple[list[int], list[int]]:
    """Row and offset of each document: scan the rows in order, take the first with room."""
    used: list[int] = []
    rows, offsets = [], []
    for length in lengths:
        if length == 0:
            rows.append(-1)
            offsets.append(0)
            continue
        row = next((r for r, u in enumerate(used) if u + length <= capacity), len(used))
        if row == len(used):
            used.append(0)
        rows.append(row)
        offsets.append(used[row])
        used[row] += length
    return rows, offsets


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 40), max_size=150), st.integers(40, 48))
def test_first_fit_matches_a_plain_scan(lengths, capacity):
    placement = first_fit(np.array(lengths, dtype=np.int64), capacity)
    rows, offsets = reference_first_fit(lengths, capacity)
    assert placement.row.tolist() == rows
    assert placement.offset.tolist() == offsets
    assert placement.num_rows == max(rows, default=-1) + 1


def test_documents_keep_their_order_within_a_row():
    placement = place(np.array([5, 3, 4, 2, 1]), 8, "first_fit")
    assert placement.row.tolist() == [0, 0, 1, 1, 1]
    assert placement.offset.tolist() == [0, 5, 0, 4, 6]


def test_every_algorithm_is_reachable_by_name():
    assert set(ALGORITHMS) == {"best_fit", "first_fit", "none"}
    assert place(np.array([3, 0, 2]), 8, "none").row.tolist() == [0, 1, 2]
