"""Chunking, special tokens, packing, shifting and segment inference on whole blocks."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from xlstm_data.documents import Documents, positions_within, ranges_index
from xlstm_data.transforms.best_fit import (
    best_fit_decreasing,
    histogram_best_fit_decreasing,
    per_document_best_fit_decreasing,
)
from xlstm_data.transforms.chunk import chunk_documents, truncate_documents
from xlstm_data.transforms.pack import materialize_rows, one_per_row, segments_from_eod
from xlstm_data.transforms.shift import BATCH_FIELDS, field, shift_rows
from xlstm_data.transforms.tokenize import special_token_ids

document_lists = st.lists(st.lists(st.integers(1, 500), max_size=60), max_size=40)


def as_lists(documents: Documents) -> list[list[int]]:
    ends = np.cumsum(documents.lengths)
    return [
        documents.tokens[e - n : e].tolist() for e, n in zip(ends, documents.lengths, strict=True)
    ]


def test_ranges_index_matches_python():
    starts, lengths = np.array([5, 0, 9, 2]), np.array([3, 0, 2, 1])
    expected = [5, 6, 7, 9, 10, 2]
    assert ranges_index(starts, lengths).tolist() == expected
    assert positions_within(np.array([2, 0, 3])).tolist() == [0, 1, 0, 1, 2]


@given(document_lists, st.integers(1, 17))
def test_chunking_keeps_every_token_in_order(docs, max_length):
    documents = Documents.from_lists(docs)
    chunked = chunk_documents(documents, max_length)
    assert chunked.tokens.tolist() == documents.tokens.tolist()
    assert (chunked.lengths <= max_length).all()
    expected = []
    for doc in docs:
        expected += [doc[i : i + max_length] for i in range(0, len(doc), max_length)] or [[]]
    assert as_lists(chunked) == expected
    assert chunked.counts["split_documents"] == sum(len(d) > max_length for d in docs)


@given(document_lists, st.integers(1, 17))
def test_truncation_keeps_prefixes_and_counts_the_rest(docs, max_length):
    truncated = truncate_documents(Documents.from_lists(docs), max_length)
    assert as_lists(truncated) == [d[:max_length] for d in docs]
    assert truncated.counts["truncated_tokens"] == sum(max(0, len(d) - max_length) for d in docs)


@given(document_lists, st.booleans(), st.lists(st.integers(600, 700), max_size=2, unique=True))
def test_special_tokens_wrap_non_empty_documents(docs, bos, end_ids):
    prefix = (999,) if bos else ()
    expected = [[*prefix, *d, *end_ids] if d else [] for d in docs]
    from_lists = Documents.from_lists(docs, prefix=prefix, suffix=tuple(end_ids))
    from_arrays = Documents.from_lists(
        [np.array(d, np.int32) for d in docs], prefix=prefix, suffix=tuple(end_ids)
    )
    assert as_lists(from_lists) == expected
    assert as_lists(from_arrays) == expected


def test_eos_and_eod_are_appended_once_when_equal():
    class Tok:
        bos_id, eos_id = 1, 2

    assert special_token_ids(
        tokenizer=Tok(), add_bos=True, add_eos=True, add_eod=True, eod_token_id=2
    ) == (1, (2,))
    assert special_token_ids(
        tokenizer=Tok(), add_bos=False, add_eos=True, add_eod=True, eod_token_id=7
    ) == (None, (2, 7))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 32), max_size=80), st.integers(32, 40))
def test_best_fit_places_every_document_once_without_overlap(lengths, capacity):
    lengths = np.array(lengths, dtype=np.int64)
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
@given(st.lists(st.integers(0, 40), max_size=120), st.integers(40, 48))
def test_histogram_best_fit_packs_exactly_like_the_per_document_loop(lengths, capacity):
    lengths = np.array(lengths, dtype=np.int64)
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


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.integers(1, 99), min_size=0, max_size=16), max_size=40), st.booleans())
def test_rows_hold_every_token_once_with_consistent_segments(docs, packed):
    row_length = 16
    documents = Documents.from_lists(docs)
    placement = (
        best_fit_decreasing(documents.lengths, row_length)
        if packed
        else one_per_row(documents.lengths)
    )
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


def shift(tokens, segments, positions, shift_target):
    fields = shift_rows(
        np.array(tokens, np.int32),
        np.array(segments, np.int32),
        np.array(positions, np.int32),
        shift_target=shift_target,
        first_input_id=9,
    )
    return {name: field(fields, name).tolist() for name in BATCH_FIELDS}


def test_shift_matches_the_documented_example():
    E = 9
    batch = shift(
        [[1, 2, 3, E, 4, 5, E, 0], [0] * 8],
        [[1, 1, 1, 1, 2, 2, 2, 0], [0] * 8],
        [[0, 1, 2, 3, 0, 1, 2, 0], [0] * 8],
        "inputs",
    )
    assert batch["targets"] == [[1, 2, 3, E, 4, 5, E, 0], [0] * 8]
    assert batch["inputs"] == [[E, 1, 2, 3, E, 4, 5, E], [0] * 8]
    assert batch["targets_segmentation"] == [[1, 1, 1, 1, 2, 2, 2, 0], [0] * 8]
    assert batch["inputs_segmentation"] == [[1, 1, 1, 1, 2, 2, 2, 0], [0] * 8]
    assert batch["targets_position"] == [[0, 1, 2, 3, 0, 1, 2, 0], [0] * 8]
    assert batch["inputs_position"] == [[0, 1, 2, 3, 0, 1, 2, 0], [0] * 8]


def test_left_shift_uses_one_more_token_and_masks_cross_document_targets():
    E = 9
    batch = shift(
        [[1, 2, E, 4, 5, E, 0, 0, 0]], [[1, 1, 1, 2, 2, 2, 0, 0, 0]],
        [[0, 1, 2, 0, 1, 2, 0, 0, 0]], "targets",
    )  # fmt: skip
    assert batch["inputs"] == [[1, 2, E, 4, 5, E, 0, 0]]
    assert batch["targets"] == [[2, E, 4, 5, E, 0, 0, 0]]
    assert batch["targets_segmentation"] == [[1, 1, 0, 2, 2, 0, 0, 0]]
    assert batch["inputs_segmentation"] == [[1, 1, 1, 2, 2, 2, 0, 0]]
    assert batch["targets_position"] == [[0, 1, 0, 0, 1, 0, 0, 0]]
    assert shift([[3, 4]], [[1, 1]], [[0, 1]], "none")["inputs"] == [[3, 4]]


def test_segments_are_inferred_from_eod_tokens():
    E = 9
    targets = np.array([[1, 2, E, 4, E, 5, 0, 0], [E, 3, 3, 3, 3, 3, 3, 3]], dtype=np.int32)
    valid = np.array([[1, 1, 1, 1, 1, 1, 0, 0], [1] * 8], dtype=np.int32)
    segments, positions = segments_from_eod(targets, valid, E)
    assert segments.tolist() == [[1, 1, 1, 2, 2, 3, 0, 0], [1, 2, 2, 2, 2, 2, 2, 2]]
    assert positions.tolist() == [[0, 1, 2, 0, 1, 0, 0, 0], [0, 0, 1, 2, 3, 4, 5, 6]]
