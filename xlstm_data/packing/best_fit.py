"""Best-fit decreasing placement of documents into rows, for a few hundred or 10^8 documents.

Both variants compute the same packing: longest documents first, each into the open row with
the least room that still fits it (ties: the row opened first). The per-document loop is the
fastest for a packing window of a few hundred documents; the histogram variant works on counts
of documents per length, so its Python loop runs once per (length, row group) and not once per
document, which makes a global plan of 10^8 documents take seconds.
"""

from __future__ import annotations

import bisect
import collections

import numpy as np

from xlstm_data.packing.placement import Placement

# Above this many documents the histogram variant is faster.
HISTOGRAM_ABOVE = 20_000


def best_fit_decreasing(lengths: np.ndarray, capacity: int) -> Placement:
    """Places documents (each at most `capacity` long) into as few rows as best fit allows."""
    lengths = np.asarray(lengths, dtype=np.int64)
    if len(lengths) > HISTOGRAM_ABOVE:
        return histogram_best_fit_decreasing(lengths, capacity)
    return per_document_best_fit_decreasing(lengths, capacity)


def per_document_best_fit_decreasing(lengths: np.ndarray, capacity: int) -> Placement:
    count = len(lengths)
    row_of = np.full(count, -1, dtype=np.int64)
    offset_of = np.zeros(count, dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")
    # Row-filling documents (the pieces of long ones) come first and each opens a row of its
    # own: placed at once, without the loop.
    full = int(np.count_nonzero(lengths >= capacity)) if capacity > 0 else 0
    row_of[order[:full]] = np.arange(full)
    open_rows: list[tuple[int, int]] = []  # (free tokens, row), sorted
    used: list[int] = [capacity] * full  # tokens used per row
    rest = order[full:]
    for doc, length in zip(rest.tolist(), lengths[rest].tolist(), strict=True):
        if length == 0:
            break  # sorted: the rest is empty too
        slot = bisect.bisect_left(open_rows, (length, -1))
        if slot == len(open_rows):
            row = len(used)
            used.append(0)
        else:
            _, row = open_rows.pop(slot)
        row_of[doc] = row
        offset_of[doc] = used[row]
        used[row] += length
        if used[row] < capacity:
            bisect.insort(open_rows, (capacity - used[row], row))
    return Placement(row_of, offset_of, len(used))


class _RowGroups:
    """Open rows grouped by free space; a group is a run of consecutive row ids [start, stop).
    The free spaces that have a group are kept sorted, so the best fit is one bisection."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.groups: collections.defaultdict[int, collections.deque[list[int]]] = (
            collections.defaultdict(collections.deque)
        )
        self.free_sizes: list[int] = []  # sorted; those whose group is not empty

    def smallest_free_at_least(self, length: int) -> int | None:
        slot = bisect.bisect_left(self.free_sizes, length)
        return self.free_sizes[slot] if slot < len(self.free_sizes) else None

    def add(self, free: int, start: int, count: int) -> None:
        if free > 0 and count > 0:
            if not self.groups[free]:
                bisect.insort(self.free_sizes, free)
            self.groups[free].append([start, count])

    def take(self, free: int, count: int) -> tuple[int, int]:
        """Removes up to `count` rows (one run) of the first group with `free` room."""
        group = self.groups[free][0]
        taken = min(count, group[1])
        start = group[0]
        group[0] += taken
        group[1] -= taken
        if not group[1]:
            self.groups[free].popleft()
            if not self.groups[free]:
                self.free_sizes.pop(bisect.bisect_left(self.free_sizes, free))
        return start, taken


def histogram_best_fit_decreasing(lengths: np.ndarray, capacity: int) -> Placement:
    """Best fit decreasing on the histogram of lengths.

    Rows with the same free room are interchangeable, so they are kept as runs of row ids.
    Documents of one length go, run by run, into the rows with the least room that fits them;
    a row with room for q of them takes q (as the per-document loop would, one after the
    other). Each step records a move (length, first row, rows, offset); documents of a length
    are then dealt to the moves' slots in stream order with a few vectorised calls.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    counts = np.bincount(lengths, minlength=capacity + 1)
    rows = _RowGroups(capacity)
    moves: list[tuple[int, int, int, int]] = []  # (length, first row, rows, offset)
    next_row = 0
    for length in (np.flatnonzero(counts[1:])[::-1] + 1).tolist():
        need = int(counts[length])
        while need:
            free = rows.smallest_free_at_least(length)
            if free is None:  # open as many new rows as the documents need
                free, start = capacity, next_row
                taken = -(-need // (capacity // length))
                next_row += taken
            else:
                start, taken = rows.take(free, -(-need // (free // length)))
            need -= _fill(rows, moves, start, taken, free, length, need)
    return _deal(lengths, moves, next_row)


def _fill(
    rows: _RowGroups,
    moves: list[tuple[int, int, int, int]],
    start: int,
    taken: int,
    free: int,
    length: int,
    need: int,
) -> int:
    """Puts up to `need` documents of `length` into the run of `taken` rows with `free` room,
    row after row, each row taking as many as fit; returns how many it placed."""
    per_row = free // length
    offset = rows.capacity - free
    full_rows = min(taken, need // per_row)
    if full_rows:
        moves.extend((length, start, full_rows, offset + k * length) for k in range(per_row))
        rows.add(free - per_row * length, start, full_rows)
    placed = full_rows * per_row
    if full_rows < taken:  # the last row takes the few that are left
        rest = need - placed
        moves.extend((length, start + full_rows, 1, offset + k * length) for k in range(rest))
        rows.add(free - rest * length, start + full_rows, 1)
        placed += rest
    return placed


def _deal(lengths: np.ndarray, moves: list[tuple[int, int, int, int]], num_rows: int) -> Placement:
    """Assigns documents to the moves' slots: within a length, in stream order."""
    row_of = np.full(len(lengths), -1, dtype=np.int64)
    offset_of = np.zeros(len(lengths), dtype=np.int64)
    if not moves:
        return Placement(row_of, offset_of, num_rows)
    _, move_row, move_rows, move_offset = (np.array(m, np.int64) for m in zip(*moves, strict=True))
    # Moves come length by length (longest first); sort documents the same way.
    order = np.lexsort((np.arange(len(lengths)), -lengths))
    order = order[: int(move_rows.sum())]
    first = np.cumsum(move_rows) - move_rows
    within = np.arange(len(order)) - np.repeat(first, move_rows)
    row_of[order] = np.repeat(move_row, move_rows) + within
    offset_of[order] = np.repeat(move_offset, move_rows)
    return Placement(row_of, offset_of, num_rows)
