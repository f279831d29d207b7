"""The packer: windows, rows that hold every token once, resume from any state, counts."""

from collections import Counter

import grain
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from xlstm_data.documents import Documents
from xlstm_data.packing import place
from xlstm_data.stages.pack import PackIterDataset, materialize_rows, segments_from_eod
from xlstm_data.stages.shift import field

blocks_strategy = st.lists(
    st.lists(st.lists(st.integers(1, 50), max_size=12), max_size=9), min_size=1, max_size=6
)


def rows_dataset(blocks, *, packed: bool, window_rows: int = 3, row_length: int = 12):
    source = grain.MapDataset.source([Documents.from_lists(b) for b in blocks])
    return PackIterDataset(
        source.to_iter_dataset(),
        row_length=row_length,
        window_rows=window_rows,
        algorithm="best_fit" if packed else "none",
    )


def row_tuples(iterator, count=None):
    """(targets, segment ids, positions) of each row."""
    out = []
    for row in iterator:
        names = ("targets", "targets_segmentation", "targets_position")
        out.append(tuple(field(row.values, name).tolist() for name in names))
        if count is not None and len(out) == count:
            break
    return out


@settings(max_examples=150, deadline=None)
@given(blocks_strategy, st.booleans(), st.integers(1, 4), st.data())
def test_restoring_any_state_continues_exactly(blocks, packed, window_rows, data):
    dataset = rows_dataset(blocks, packed=packed, window_rows=window_rows)
    reference = row_tuples(iter(dataset))
    stop = data.draw(st.integers(0, len(reference)))
    first = iter(dataset)
    if stop:
        assert row_tuples(first, stop) == reference[:stop]
    state = first.get_state()
    resumed = iter(dataset)
    resumed.set_state(state)
    assert row_tuples(resumed) == reference[stop:]


@settings(max_examples=100, deadline=None)
@given(blocks_strategy)
def test_packed_rows_hold_every_document_once(blocks):
    rows = row_tuples(iter(rows_dataset(blocks, packed=True)))
    found = []
    for targets, segments, _ in rows:
        targets, segments = np.array(targets), np.array(segments)
        found += [targets[segments == s].tolist() for s in range(1, segments.max(initial=0) + 1)]
    assert sorted(found) == sorted(d for b in blocks for d in b if d)


def test_counts_report_rows_tokens_and_padding():
    blocks = [[[1, 2, 3], [4] * 12, []], [[5, 6]]]
    rows = list(iter(rows_dataset(blocks, packed=True, window_rows=10)))
    counts = sum((r.counts for r in rows if r.counts), start=Counter())
    assert counts["rows"] == len(rows) == 2
    assert counts["tokens"] == 17
    assert counts["padding_tokens"] == 2 * 12 - 17
    assert counts["documents"] == 3


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.integers(1, 99), min_size=0, max_size=16), max_size=40), st.booleans())
def test_rows_hold_every_token_once_with_consistent_segments(docs, packed):
    row_length = 16
    documents = Documents.from_lists(docs)
    placement = place(documents.lengths, row_length, "best_fit" if packed else "none")
    targets, segments, positions = materialize_rows(documents, placement, row_length)
    # Every document is found, intact, as one segment of one row.
    found = []
    for row_tokens, row_segments, row_positions in zip(targets, segments, positions, strict=True):
        for segment in range(1, row_segments.max(initial=0) + 1):
            where = np.flatnonzero(row_segments == segment)
            assert (np.diff(where) == 1).all(), "a segment is contiguous"
            assert row_positions[where].tolist() == list(range(len(where)))
            found.append(row_tokens[where].tolist())
        assert (row_tokens[row_segments == 0] == 0).all()
        assert (row_positions[row_segments == 0] == 0).all()
    assert sorted(found) == sorted(d for d in docs if d)
    if not packed:
        assert len(targets) == len(docs)


def test_segments_are_inferred_from_eod_tokens():
    E = 9
    targets = np.array([[1, 2, E, 4, E, 5, 0, 0], [E, 3, 3, 3, 3, 3, 3, 3]], dtype=np.int32)
    valid = np.array([[1, 1, 1, 1, 1, 1, 0, 0], [1] * 8], dtype=np.int32)
    segments, positions = segments_from_eod(targets, valid, E)
    assert segments.tolist() == [[1, 1, 1, 2, 2, 3, 0, 0], [1, 2, 2, 2, 2, 2, 2, 2]]
    assert positions.tolist() == [[0, 1, 2, 0, 1, 0, 0, 0], [0, 0, 1, 2, 3, 4, 5, 6]]
