"""The packer: windows, rows that hold every token once, resume from any state, counts."""

import functools
import itertools
from collections import Counter

import grain
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xlstm_data.documents import Documents
from xlstm_data.packing import place
from xlstm_data.stages.pack import (
    PackIterDataset,
    RowLayout,
    materialize_rows,
    pack_fields,
    segments_from_eod,
)
from xlstm_data.stages.shift import BATCH_FIELDS, expand_compact, field

blocks_strategy = st.lists(
    st.lists(st.lists(st.integers(1, 50), max_size=12), max_size=9), min_size=1, max_size=6
)


def rows_dataset(
    blocks, *, packed: bool, window_rows: int = 3, row_length: int = 12, group_rows: int = 1
):
    source = grain.MapDataset.source([Documents.from_lists(b) for b in blocks])
    return PackIterDataset(
        source.to_iter_dataset(),
        row_length=row_length,
        window_rows=window_rows,
        algorithm="best_fit" if packed else "none",
        group_rows=group_rows,
    )


def row_tuples(iterator, count=None):
    """(targets, segment ids, positions) of each row, for `count` groups of rows."""
    out = []
    names = ("targets", "targets_segmentation", "targets_position")
    for groups, rows in enumerate(iterator, start=1):
        out += [tuple(field(row, name).tolist() for name in names) for row in rows.fields]
        if count is not None and groups == count:
            break
    return out


@settings(max_examples=150, deadline=None)
@given(blocks_strategy, st.booleans(), st.integers(1, 4), st.integers(1, 3), st.data())
def test_restoring_any_state_continues_exactly(blocks, packed, window_rows, group_rows, data):
    dataset = rows_dataset(blocks, packed=packed, window_rows=window_rows, group_rows=group_rows)
    reference = row_tuples(iter(dataset))
    stop = data.draw(st.integers(0, -(-len(reference) // group_rows)))  # groups
    taken = min(stop * group_rows, len(reference))  # rows: every group but the last is full
    first = iter(dataset)
    if stop:
        assert row_tuples(first, stop) == reference[:taken]
    state = first.get_state()
    resumed = iter(dataset)
    resumed.set_state(state)
    assert row_tuples(resumed) == reference[taken:]


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


@settings(max_examples=100, deadline=None)
@given(blocks_strategy, st.booleans(), st.integers(1, 4), st.integers(1, 3))
def test_each_group_counts_its_own_rows(blocks, packed, window_rows, group_rows):
    """A group's counts are the rows it holds, not its window's (the metrics of a step)."""
    dataset = rows_dataset(blocks, packed=packed, window_rows=window_rows, group_rows=group_rows)
    for rows in dataset:
        segments = field(rows.fields, "targets_segmentation")
        documents = sum(int(row.max(initial=0)) for row in segments)
        assert rows.counts["rows"] == len(rows.fields)
        assert (
            rows.counts["tokens"] == rows.counts["tokens:the source"] == int((segments > 0).sum())
        )
        assert rows.counts["padding_tokens"] == int((segments == 0).sum())
        assert rows.counts["documents"] == rows.counts["documents:the source"] == documents


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


def plain_fields(docs, placement, row_length, shift_target, first_input_id):
    """The six batch fields built the slow, obvious way: row by row, document by document."""
    rows = [[] for _ in range(placement.num_rows)]
    for doc, row, offset in zip(
        docs, placement.row.tolist(), placement.offset.tolist(), strict=True
    ):
        if row >= 0:
            rows[row].append((offset, doc))
    fields = {name: [] for name in BATCH_FIELDS}
    for row in rows:
        tokens, segments, positions = [], [], []
        for segment, (_, doc) in enumerate(sorted(row), start=1):
            tokens += doc
            segments += [segment] * len(doc)
            positions += list(range(len(doc)))
        padding = row_length - len(tokens)
        tokens, segments, positions = (x + [0] * padding for x in (tokens, segments, positions))
        if shift_target == "targets":
            same = [int(a == b and a > 0) for a, b in itertools.pairwise(segments)]
            values = {
                "inputs": tokens[:-1], "targets": tokens[1:],
                "inputs_position": positions[:-1], "inputs_segmentation": segments[:-1],
                "targets_position": [p * s for p, s in zip(positions[:-1], same, strict=True)],
                "targets_segmentation": [g * s for g, s in zip(segments[:-1], same, strict=True)],
            }  # fmt: skip
        else:
            inputs = tokens if shift_target == "none" else [first_input_id * (segments[0] > 0)]
            if shift_target == "inputs":
                inputs += tokens[:-1]
            values = {
                "inputs": inputs, "targets": tokens,
                "inputs_position": positions, "inputs_segmentation": segments,
                "targets_position": positions, "targets_segmentation": segments,
            }  # fmt: skip
        for name in BATCH_FIELDS:
            fields[name].append(values[name])
    return fields


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(0, 20), max_size=40),
    st.sampled_from(["best_fit", "first_fit", "none"]),
    st.sampled_from(["inputs", "targets", "none"]),
    st.booleans(),
)
def test_packed_fields_equal_a_plain_layout(lengths, algorithm, shift_target, compact):
    row_length = 20 + (shift_target == "targets")
    docs = [list(range(100 + 10 * i, 100 + 10 * i + n)) for i, n in enumerate(lengths)]
    documents = Documents.from_lists(docs)
    placement = place(documents.lengths, row_length, algorithm)
    fields = pack_fields(
        documents, placement, row_length, shift_target=shift_target, first_input_id=7,
        compact=compact,
    )  # fmt: skip
    if compact and shift_target != "targets":
        columns = expand_compact(
            fields[:, 0], fields[:, 1], shift_target=shift_target, first_input_id=7
        )
        names = ("inputs", "targets", "inputs_position", "inputs_segmentation")
        got = dict(zip(names, columns, strict=True))
        got |= {"targets_position": got["inputs_position"]}
        got |= {"targets_segmentation": got["inputs_segmentation"]}
    else:
        got = {name: field(fields, name) for name in BATCH_FIELDS}
    expected = plain_fields(docs, placement, row_length, shift_target, 7)
    for name in BATCH_FIELDS:
        assert np.asarray(got[name]).tolist() == expected[name], name


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 20), max_size=30),
    st.integers(0, 3),
    st.sampled_from([np.uint16, np.uint32, np.int32]),
    st.sampled_from(["inputs", "targets", "none"]),
    st.data(),
)
def test_rows_from_views_equal_rows_from_one_token_array(
    lengths, empty_rows, record_dtype, shift_target, data
):
    # The global plan lays its rows straight from each piece's slices of prefix (int32),
    # record (the source's dtype) and suffix: any cut of a document into views must give the
    # rows of its tokens back to back; empty pieces (of empty rows) have no views at all.
    row_length = 20 + (shift_target == "targets")
    documents = Documents.from_lists([list(range(1 + 50 * i, 1 + 50 * i + n))
                                      for i, n in enumerate(lengths)])  # fmt: skip
    views = []
    for begin, n in zip(documents.starts.tolist(), lengths, strict=True):
        a, b = sorted(data.draw(st.lists(st.integers(0, n), min_size=2, max_size=2)))
        token = documents.tokens[begin : begin + n]
        views.append((token[:a], token[a:b].astype(record_dtype), token[b:]))
    with_empty = np.concatenate([documents.lengths, np.zeros(empty_rows, np.int64)])
    for algorithm in ("best_fit", "none"):
        placement = place(with_empty, row_length, algorithm)
        layout = RowLayout.of(with_empty, placement, row_length)
        expected = layout.tokens(documents.tokens)
        got = layout.tokens_of_views(views)
        assert got.dtype == np.int32 and (got == expected).all()
        # and they are the documents' tokens, each whole in one row, the rest padding
        assert sorted(got[got > 0].tolist()) == sorted(documents.tokens.tolist())
        fields = layout.fields(
            functools.partial(layout.tokens_of_views, views), shift_target=shift_target,
            first_input_id=7,
        )  # fmt: skip
        reference = pack_fields(
            Documents(documents.tokens, with_empty), placement, row_length,
            shift_target=shift_target, first_input_id=7,
        )  # fmt: skip
        assert (fields == reference).all()


def test_tokens_are_written_into_the_block_given_or_refused():
    documents = Documents.from_lists([[1, 2, 3], [4, 5]])
    layout = RowLayout.of(documents.lengths, place(documents.lengths, 4, "best_fit"), 4)
    block = np.full((layout.num_rows, 4), -1, np.int32)
    assert layout.tokens(documents.tokens, out=block) is block
    assert sorted(block[block > 0].tolist()) == [1, 2, 3, 4, 5]
    # A block that cannot be written as one run (reshaping it would write into a copy).
    transposed = np.zeros((4, layout.num_rows), np.int32).T
    with pytest.raises(AttributeError, match="Incompatible shape"):
        layout.tokens(documents.tokens, out=transposed)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 70), max_size=30), st.booleans(), st.integers(1, 32))
def test_positions_from_ramps_and_by_arithmetic_agree(lengths, packed, row_length):
    """Both ways of writing positions (long pieces, short pieces) give 0, 1, … per piece."""
    pieces = [min(n, row_length) for n in lengths]
    documents = Documents.from_lists([[1] * n for n in pieces])
    placement = place(documents.lengths, row_length, "best_fit" if packed else "none")
    layout = RowLayout.of(documents.lengths, placement, row_length)
    expected = np.zeros((placement.num_rows, row_length), np.int32)
    for row, offset, n in zip(placement.row, placement.offset, pieces, strict=True):
        expected[row, offset : offset + n] = np.arange(n)
    for write in (layout.positions_from_ramps, layout.positions_by_arithmetic):
        out = np.full((placement.num_rows, row_length), -7, np.int32)
        write(out)
        assert (out == expected).all()
