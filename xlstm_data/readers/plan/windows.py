"""One window of a plan, packed on its own (a worker's task).

Window j holds, from every source s, the documents whose middle lies in
[j B w_s, (j + 1) B w_s): B tokens of the mixture at its weights w. Their order in the window
is by key middle / w_s, which spreads each source evenly over the epoch, so any stretch of
the plan holds the sources in their weights. A window knows its documents from thresholds
alone, so windows are independent: they are packed in parallel and in memory of one window.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from xlstm_data.packing import Placement, place
from xlstm_data.readers.plan.streams import Streams
from xlstm_data.stages.split import split_lengths


@dataclasses.dataclass(frozen=True)
class Cut:
    """Where a window starts or ends in one source's stream: at the first document whose
    middle is at least `threshold`, in chunk `chunk` or right after it (`before` tokens
    precede the chunk: the last chunk whose start lies below the threshold)."""

    threshold: float
    chunk: int
    before: int


@dataclasses.dataclass(frozen=True)
class WindowJob:
    streams: Streams
    weights: tuple[float, ...]
    """Normalised; sources of weight 0 have no cuts."""
    begin: tuple[Cut | None, ...]
    end: tuple[Cut | None, ...]
    row_length: int
    algorithm: str
    truncate: tuple[bool, ...]
    free_rows: int | None = None
    """The rows left in a finite stage: when the window needs more, it takes the longest run
    of whole documents that fits and fills exactly these rows."""


@dataclasses.dataclass
class Window:
    """The window's rows as pieces in row order; what it took from each source."""

    row_pieces: np.ndarray
    piece_source: np.ndarray
    piece_document: np.ndarray
    piece_start: np.ndarray
    piece_length: np.ndarray
    group_starts: np.ndarray
    """Rows where a group begins: a run of rows that no document crosses (`rows_by_document`)."""
    source_tokens: np.ndarray
    documents: int
    split_documents: int
    truncated_tokens: int
    stream_end: tuple[int, ...]
    """Per source: the stream position after the last document the window took."""

    @property
    def rows(self) -> int:
        return len(self.row_pieces)

    @property
    def pieces(self) -> int:
        return len(self.piece_length)


def pack_window(job: WindowJob) -> Window:
    streams, count = job.streams, len(job.weights)
    sources, documents, lengths, keys, positions = [], [], [], [], []
    stream_begin, stream_end = list(streams.start), list(streams.start)
    for source, (begin, end) in enumerate(zip(job.begin, job.end, strict=True)):
        if begin is None or end is None:
            continue
        low, before = streams.locate(source, begin.threshold, begin.chunk, begin.before)
        high, _ = streams.locate(source, end.threshold, end.chunk, end.before)
        chosen, chosen_lengths = streams.documents(source, low, high)
        middle = before + np.cumsum(chosen_lengths) - chosen_lengths / 2
        kept = np.flatnonzero(chosen_lengths > 0)
        sources.append(np.full(len(kept), source, dtype=np.int16))
        documents.append(chosen[kept])
        lengths.append(chosen_lengths[kept])
        keys.append(middle[kept] / job.weights[source])
        positions.append(low + kept)
        stream_begin[source], stream_end[source] = low, high
    order = np.argsort(np.concatenate(keys), kind="stable")
    source = np.concatenate(sources)[order]
    document = np.concatenate(documents)[order]
    length = np.concatenate(lengths)[order]
    position = np.concatenate(positions)[order]

    pieces = split_lengths(length, job.row_length)
    owner, start, piece_length = pieces.owner, pieces.start, pieces.length
    kept = (start == 0) | ~np.asarray(job.truncate, bool)[source[owner]]
    cut = np.where(kept, 0, piece_length)
    owner, start, piece_length = owner[kept], start[kept], piece_length[kept]
    placement = place(piece_length, job.row_length, job.algorithm)
    used, rows = len(length), placement.num_rows
    if job.free_rows is not None and rows > job.free_rows:
        count_pieces, placement = _fill(owner, piece_length, job, job.free_rows)
        used = int(owner[count_pieces - 1]) + 1 if count_pieces else 0
        owner, start, piece_length = (a[:count_pieces] for a in (owner, start, piece_length))
        rows = job.free_rows  # the stage ends with these rows, however full
        for index in range(count):  # each source's stream goes on after its last taken document
            taken = position[:used][source[:used] == index]
            stream_end[index] = int(taken[-1]) + 1 if len(taken) else stream_begin[index]
    placement, group_starts = rows_by_document(placement, owner)
    # A finite stage's last rows may stay empty: each is a group of its own.
    group_starts = np.r_[group_starts, np.arange(placement.num_rows, rows)]
    in_order = np.lexsort((placement.offset, placement.row))
    piece_source = source[owner]
    return Window(
        row_pieces=np.bincount(placement.row, minlength=rows).astype(np.int64),
        piece_source=piece_source[in_order],
        piece_document=document[owner][in_order],
        piece_start=start[in_order],
        piece_length=piece_length[in_order].astype(np.int32),
        group_starts=group_starts,
        source_tokens=np.bincount(piece_source, weights=piece_length, minlength=count).astype(
            np.int64
        ),
        documents=used,
        split_documents=int((np.bincount(owner) > 1).sum()) if len(owner) else 0,
        truncated_tokens=int(cut[pieces.owner < used].sum()),
        stream_end=tuple(stream_end),
    )


def rows_by_document(placement: Placement, owner: np.ndarray) -> tuple[Placement, np.ndarray]:
    """The placement with its rows renumbered so that each document's rows lie together, and
    the rows where each group of them begins.

    An epoch visits shuffled blocks of consecutive rows and reads a document once per block
    that holds a piece of it. Every row of full pieces belongs to one document, and each
    document's last piece sits in one row (shared with other documents' last pieces), so each
    such row goes right after the full rows of all the documents it ends, in the window's order
    (its first document's). On long documents an epoch then reads each document about once
    instead of twice (the plan reader counts `read_tokens`). A group (a row and the full rows
    of the documents it ends) is the shortest run of rows that no document crosses, so blocks
    cut at group starts never split a document (`batches.shuffle_blocks`). `owner`: the
    document of each piece, ascending; every piece is placed (row >= 0).
    """
    rows = placement.num_rows
    if not len(owner):
        return placement, np.arange(rows)
    documents, pieces = int(owner[-1]) + 1, len(owner)
    last = np.flatnonzero(np.r_[owner[1:] != owner[:-1], True])
    # The row each document's rows gather around: the row of its last piece.
    home_of_document = np.zeros(documents, np.int64)
    home_of_document[owner[last]] = placement.row[last]
    home = np.arange(rows)
    home[placement.row] = home_of_document[owner]
    first_document = np.full(rows, documents, np.int64)
    np.minimum.at(first_document, home_of_document, np.arange(documents))
    # A full row's piece index: pieces are in document order, so this orders a group's full
    # rows by document, then by place in it (a group has one home row: its value only breaks
    # no tie). Keys are unique, so one argsort of a combined key gives the order.
    piece_index = np.zeros(rows, np.int64)
    piece_index[placement.row] = np.arange(pieces)
    is_home = home == np.arange(rows)
    order = np.argsort((first_document[home] * 2 + is_home) * pieces + piece_index)
    renumbered = np.empty(rows, np.int64)
    renumbered[order] = np.arange(rows)
    group = first_document[home][order]
    group_starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    return Placement(renumbered[placement.row], placement.offset, rows), group_starts


def _fill(owner: np.ndarray, length: np.ndarray, job: WindowJob, free_rows: int):
    """(pieces, placement) of the longest run of the window's first pieces that ends with a
    whole document and fits `free_rows` rows: the last window of a finite stage."""
    ends = np.flatnonzero(np.r_[owner[1:] != owner[:-1], True]) + 1
    candidates = np.r_[0, ends]
    low, high = 0, len(candidates) - 1  # candidates[low] fits; find the largest that does
    while low < high:
        middle = (low + high + 1) // 2
        if place(length[: candidates[middle]], job.row_length, job.algorithm).num_rows <= free_rows:
            low = middle
        else:
            high = middle - 1
    count = int(candidates[low])
    return count, place(length[:count], job.row_length, job.algorithm)
