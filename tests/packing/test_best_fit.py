"""Best fit decreasing: the per-document loop and the histogram variant pack alike."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from xlstm_data.packing.best_fit import (
    best_fit_decreasing,
    histogram_best_fit_decreasing,
    per_document_best_fit_decreasing,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 40), max_size=80), st.integers(32, 40))
def test_best_fit_places_every_document_once_without_overlap(lengths, capacity):
    # Longer draws become row-filling documents (the pieces of long ones), placed first.
    lengths = np.minimum(np.array(lengths, dtype=np.int64), capacity)
    placement = best_fit_decreasing(lengths, capacity)
    used = np.zeros((placement.num_rows, capacity), dtype=int)
    for length, row, offset in zip(lengths, placement.row, placement.offset, strict=True):
        if length == 0:
            assert row == -1
            continue
        used[row, offset : offset + length] += 1
    assert used.max(initial=0) <= 1
    assert used.sum() == lengths.sum()
    # Best fit never opens a row while another row could take the document that opened it.
    assert placement.num_rows <= max(1, int(np.ceil(2 * lengths.sum() / capacity)) + 1)


def row_fill(lengths, placement) -> list[int]:
    """Tokens per row, sorted: equal for any two best-fit runs (rows with equal room are
    interchangeable, so only which of them takes a document may differ)."""
    placed = placement.row >= 0
    return sorted(
        np.bincount(
            placement.row[placed], weights=lengths[placed], minlength=placement.num_rows
        ).tolist()
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 48), max_size=120), st.integers(40, 48))
def test_histogram_best_fit_packs_exactly_like_the_per_document_loop(lengths, capacity):
    lengths = np.minimum(np.array(lengths, dtype=np.int64), capacity)  # some fill a row
    per_document = per_document_best_fit_decreasing(lengths, capacity)
    histogram = histogram_best_fit_decreasing(lengths, capacity)
    assert histogram.num_rows == per_document.num_rows
    assert row_fill(lengths, histogram) == row_fill(lengths, per_document)
    used = np.zeros((histogram.num_rows, capacity), dtype=int)
    for length, row, offset in zip(lengths, histogram.row, histogram.offset, strict=True):
        assert (row == -1) == (length == 0)
        if length:
            used[row, offset : offset + length] += 1
    assert used.max(initial=0) <= 1 and used.sum() == lengths.sum()
