"""The chunked, parallel plan build against a straightforward one that holds every stream in
memory: the same plan, array for array, whatever the chunks and the workers."""

import collections
import filecmp
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from plan_data import built_plan

from xlstm_data.packing import Placement, place
from xlstm_data.permutation import RandomPermutation
from xlstm_data.readers.plan.build import Plan, build_plan
from xlstm_data.readers.plan.parallel import ProcessPool
from xlstm_data.readers.plan.windows import rows_by_document
from xlstm_data.stages.split import split_lengths


def reference_plan(lengths, weights, *, row_length, seed, window_rows, shuffle, truncate,
                   start, rows, algorithm="best_fit"):  # fmt: skip
    """Every stream in memory; window j takes the documents whose middle lies in
    [j B w_s, (j + 1) B w_s); a finite stage's last window takes the most whole documents
    that fit, found by bisection."""
    weights = np.asarray(weights) / np.sum(weights)
    totals = np.array([n.sum() for n in lengths])
    window = float(window_rows * row_length)
    epoch = None if rows is not None else (totals[weights > 0] / weights[weights > 0]).max()
    # A finite stage: enough tokens for its rows even when every document is truncated.
    longest = max(row_length, *(int(n.max()) for n in lengths))
    needed = epoch if epoch is not None else 4 * rows * longest + 4 * window
    count = int(np.ceil(epoch / window)) if epoch is not None else int(needed / window) + 2
    streams, cuts = [], {}  # cuts[s][j]: where window j starts in source s's stream
    for s, n in enumerate(lengths):
        if weights[s] == 0:
            continue
        ids, positions, number = [], [], start[s] // len(n)
        reach = (epoch if epoch is not None else (count + 1) * window) * weights[s] + n.max()
        while sum(n[i].sum() for i in ids) <= reach:
            order = RandomPermutation(len(n), (seed, s, number))(np.arange(len(n)))
            first = max(start[s] - number * len(n), 0)
            ids.append((order if shuffle else np.arange(len(n)))[first:])
            positions.append(number * len(n) + np.arange(first, len(n)))
            number += 1
        ids, positions = np.concatenate(ids), np.concatenate(positions)
        middle = np.cumsum(n[ids]) - n[ids] / 2
        bounds = np.arange(count + 1) * (window * weights[s])
        index = np.minimum(np.searchsorted(bounds, middle, side="right") - 1, count - 1)
        end = np.inf if epoch is None else epoch * weights[s]
        keep = (n[ids] > 0) & (middle < end)
        streams.append((np.full(keep.sum(), s), ids[keep], n[ids][keep],
                        middle[keep] / weights[s], index[keep], positions[keep]))  # fmt: skip
        bounds[-1] = end if epoch is not None else bounds[-1]
        cuts[s] = positions[np.searchsorted(middle, np.minimum(bounds, end), side="left")]
    arrays = {name: [np.zeros(1, np.int64)] if name == "row_starts" else [] for name in Plan.ARRAYS}
    taken_rows, stream_end = 0, list(start)
    for j in range(count):
        picked = [[x[index == j] for x in stream] for stream in streams for index in [stream[4]]]
        source, document, length, key, _, position = (
            np.concatenate(x) for x in zip(*picked, strict=True)
        )
        order = np.argsort(key, kind="stable")
        source, document, length, position = (
            x[order] for x in (source, document, length, position)
        )

        def layout(used, source=source, length=length):
            return _layout(source[:used], length[:used], truncate, row_length, algorithm)

        used = len(length)
        owner, first, size, placement = layout(used)
        free = None if rows is None else rows - taken_rows
        if free is not None and placement.num_rows > free:
            low, high = 0, len(length)
            while low < high:
                middle = (low + high + 1) // 2
                low, high = (
                    (middle, high) if layout(middle)[3].num_rows <= free else (low, middle - 1)
                )
            used = low
            owner, first, size, placement = layout(used)
        finished = free is not None and used < len(length)  # the stage ends here
        for s in cuts:
            mine = position[:used][source[:used] == s]
            stream_end[s] = int(cuts[s][j + 1])
            if finished:
                stream_end[s] = int(mine[-1]) + 1 if len(mine) else int(cuts[s][j])
        in_order = np.lexsort((placement.offset, placement.row))
        num_rows = free if finished else placement.num_rows
        arrays["group_starts"].append(
            taken_rows + np.r_[plain_group_starts(placement, owner), placement.num_rows : num_rows]
        )
        arrays["row_starts"].append(
            sum(map(len, arrays["piece_length"]))
            + np.cumsum(np.bincount(placement.row, minlength=num_rows))
        )
        arrays["piece_source"].append(source[owner][in_order])
        arrays["piece_document"].append(document[owner][in_order])
        arrays["piece_start"].append(first[in_order])
        arrays["piece_length"].append(size[in_order])
        taken_rows += num_rows
        if rows is not None and taken_rows >= rows:
            break
    return {k: np.concatenate(v) for k, v in arrays.items()}, stream_end


def _layout(source, length, truncate, row_length, algorithm):
    pieces = split_lengths(length, row_length)
    kept = (pieces.start == 0) | ~np.asarray(truncate)[source[pieces.owner]]
    owner, size = pieces.owner[kept], pieces.length[kept]
    placement = plain_rows_by_document(place(size, row_length, algorithm), owner.tolist())
    return owner, pieces.start[kept], size, placement


def plain_rows_by_document(placement, owner):
    """Rows renumbered the obvious way: a document's rows go with the row of its last piece,
    that row after the full rows of all the documents it ends, groups in document order."""
    pieces_of = collections.defaultdict(list)
    for piece, row in enumerate(placement.row.tolist()):
        pieces_of[row].append(piece)
    home = {document: row for document, row in zip(owner, placement.row.tolist(), strict=True)}

    def key(row):
        documents = [owner[piece] for piece in pieces_of[row]]
        group = home[documents[0]]
        first = min(d for d, h in home.items() if h == group)
        return (first, row == group, min(pieces_of[row]))

    order = sorted(range(placement.num_rows), key=key)
    renumbered = {row: new for new, row in enumerate(order)}
    rows = np.array([renumbered[row] for row in placement.row.tolist()], dtype=np.int64)
    return Placement(rows, placement.offset, placement.num_rows)


def plain_group_starts(placement, owner):
    """Every row boundary that no document's rows cross, found row by row."""
    rows_of = collections.defaultdict(list)
    for document, row in zip(owner.tolist(), placement.row.tolist(), strict=True):
        rows_of[document].append(row)
    crossed = {r for rows in rows_of.values() for r in range(min(rows) + 1, max(rows) + 1)}
    return np.array([r for r in range(placement.num_rows) if r not in crossed], np.int64)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(1, 50), min_size=1, max_size=30),
    st.sampled_from(["best_fit", "first_fit", "none"]),
)
def test_each_documents_rows_lie_together(lengths, algorithm):
    row_length = 8
    pieces = split_lengths(np.array(lengths, dtype=np.int64), row_length)
    placement = place(pieces.length, row_length, algorithm)
    grouped, group_starts = rows_by_document(placement, pieces.owner)
    # Groups begin exactly where no document's rows cross.
    assert np.array_equal(group_starts, plain_group_starts(grouped, pieces.owner))
    # The same rows, renumbered: each row keeps its pieces at their offsets.
    moved = {}
    for old, new in zip(placement.row.tolist(), grouped.row.tolist(), strict=True):
        assert moved.setdefault(old, new) == new
    assert sorted(moved.values()) == list(range(placement.num_rows)) == sorted(moved)
    assert np.array_equal(grouped.offset, placement.offset)
    # Every row that ends documents follows all their full rows, without a gap.
    for home in set(grouped.row[np.r_[pieces.owner[1:] != pieces.owner[:-1], True]].tolist()):
        ended = set(pieces.owner[grouped.row == home].tolist())
        rows = sorted(set(grouped.row[np.isin(pieces.owner, list(ended))].tolist()))
        assert rows == list(range(home - len(rows) + 1, home + 1))


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    sources=st.integers(1, 3),
    row_length=st.integers(4, 24),
    window_rows=st.integers(1, 8),
    shuffle=st.booleans(),
    chunk=st.integers(1, 9),
)
def test_the_chunked_build_is_the_straightforward_one(data, sources, row_length, window_rows,
                                                      shuffle, chunk):  # fmt: skip
    # Empty, 1-token and much-longer-than-a-row documents, in sources of 1 to 40 documents.
    document = st.sampled_from([0, 1, 2, 5, 9, 17, 60]) | st.integers(0, 30)
    lengths = [np.array(data.draw(st.lists(document, min_size=1, max_size=40)), dtype=np.int64)
               for _ in range(sources)]  # fmt: skip
    if any(n.sum() == 0 for n in lengths):
        return
    weights = data.draw(st.lists(st.floats(0.05, 1.0), min_size=sources, max_size=sources))
    truncate = data.draw(st.lists(st.booleans(), min_size=sources, max_size=sources))
    start = [data.draw(st.integers(0, 3 * len(n))) for n in lengths]
    rows = data.draw(st.none() | st.integers(1, 30))
    setup = dict(row_length=row_length, seed=5, window_rows=window_rows, shuffle=shuffle,
                 truncate=truncate, start=start, rows=rows)  # fmt: skip
    plan = built_plan(lengths, weights, progress=False, chunk=chunk, **setup)
    expected, stream_end = reference_plan(lengths, weights, **setup)
    for name in Plan.ARRAYS:
        assert np.array_equal(getattr(plan, name), expected[name]), name
        assert getattr(plan, name).dtype == Plan.DTYPES[name]
    assert plan.report["stream_end"] == stream_end
    assert plan.num_rows == (rows if rows is not None else plan.report["rows"])
    assert plan.report["epoch_tokens"] == int(plan.piece_length.sum())


def test_workers_and_chunks_do_not_change_a_byte(tmp_path):
    rng = np.random.default_rng(0)
    lengths = [rng.lognormal(np.log(300), 1.2, n).astype(np.int64) for n in (30_000, 9_000)]
    lengths[0][::97] = 0
    setup = dict(row_length=2048, seed=1, window_rows=64, progress=False)
    build_plan(lengths, [0.7, 0.3], tmp_path / "one", **setup)
    pool = ProcessPool(2)
    try:
        build_plan(lengths, [0.7, 0.3], tmp_path / "two", workers=pool, chunk=333, **setup)
    finally:
        pool.close()
    names = sorted(os.listdir(tmp_path / "one"))
    assert (
        names
        == sorted(os.listdir(tmp_path / "two"))
        == sorted([f"{n}.npy" for n in Plan.ARRAYS] + ["report.json"])
    )
    assert all(filecmp.cmp(tmp_path / "one" / n, tmp_path / "two" / n, shallow=False)
               for n in names)  # fmt: skip


def test_windows_hold_a_bounded_number_of_documents(tmp_path, monkeypatch):
    from xlstm_data.readers.plan import build

    monkeypatch.setattr(build, "MAX_WINDOW_DOCUMENTS", 500)
    lengths = [np.full(20_000, 3, dtype=np.int64)]
    plan = build_plan(lengths, [1.0], tmp_path / "plan", row_length=60, seed=0,
                      window_rows=10_000, progress=False)  # fmt: skip
    assert plan.report["window_tokens"] == pytest.approx(1500)  # 500 documents of 3
    assert plan.report["documents"] == 20_000 and plan.report["padding_fraction"] < 0.02


@pytest.mark.parametrize("spec", ["abc", 0, "-2"])
def test_a_bad_workers_value_names_the_choices(spec):
    from xlstm_data.errors import ConfigError
    from xlstm_data.readers.plan.parallel import plan_workers

    with pytest.raises(ConfigError, match="'auto', 'ray' or 'ray:ADDRESS'"):
        plan_workers(spec)
