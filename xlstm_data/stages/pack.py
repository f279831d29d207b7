"""The packer: documents → rows of `row_length` tokens, several documents per row (packed) or
one per row.

Packing works on arrays of lengths: a window of documents (about `window_rows` rows' worth of
tokens) is placed by a packing algorithm (`xlstm_data/packing/`), then its tokens are copied
into the rows with one concatenation of views. Only the placement loop runs per document, over
plain integers, so packing costs a few microseconds per document whatever the row length.

A window is a pure function of where it starts in the document stream, which makes the
iterator state small and restoring it cheap: (parent state before the window's first block,
documents to skip in that block, rows already emitted).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Literal

import grain
import numpy as np

from xlstm_data.buffers import aligned_empty, concatenate_planes, field_planes
from xlstm_data.documents import TOKEN_DTYPE, Documents
from xlstm_data.errors import DataError
from xlstm_data.packing import Placement, place
from xlstm_data.stages.shift import shift_inputs, shift_rows, stacked_field_count
from xlstm_data.telemetry import source_key


@dataclasses.dataclass(eq=False)
class Rows:
    """Rows [begin, end) of a window's stacked fields ([rows, 4 or 6, length], `shift_rows`),
    and what the pipeline counted up to them: documents, tokens, padding …, and the rows'
    tokens and documents per source (`tokens:NAME`), so per-source counts follow the rows a
    batch holds."""

    window: np.ndarray
    begin: int
    end: int
    counts: Counter

    @property
    def fields(self) -> np.ndarray:
        return self.window[self.begin : self.end]

    def __len__(self) -> int:
        return self.end - self.begin

    def as_group(self) -> tuple[np.ndarray, Counter]:
        """(fields, counts): plain arrays, which Grain's worker processes hand to the parent
        through shared memory."""
        return self.fields, self.counts

    @staticmethod
    def of_group(group: tuple[np.ndarray, Counter]) -> Rows:
        fields, counts = group
        return Rows(fields, 0, len(fields), counts)


def pack_fields(
    documents: Documents,
    placement: Placement,
    row_length: int,
    *,
    shift_target: Literal["inputs", "targets", "none"],
    first_input_id: int,
    eod_id: int | None = None,
    compact: bool = False,
) -> np.ndarray:
    """The stacked `LLMBatch` fields [rows, 4 or 6, length] of the rows of a placement (see
    `shift_rows`), or only the targets and segmentation [rows, 2, length] with `compact`;
    `eod_id` starts a segment after every EOD token inside a document.

    The common layouts are written in place, field by field (`field_planes`: CPU devices
    take its batches without a copy): the rows' tokens are gathered once, straight into the
    targets, the inputs are a shifted copy of them, positions and segmentation are
    whole-window array operations.
    """
    layout = RowLayout.of(documents.lengths, placement, row_length)
    return layout.fields(
        functools.partial(layout.tokens, documents.tokens), shift_target=shift_target,
        first_input_id=first_input_id, eod_id=eod_id, compact=compact,
    )  # fmt: skip


def materialize_rows(
    documents: Documents, placement: Placement, row_length: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(targets, segment ids, positions), each [num_rows, row_length] int32, of a placement."""
    layout = RowLayout.of(documents.lengths, placement, row_length)
    return layout.tokens(documents.tokens), *layout.segments_and_positions()


# Slots per piece (on average) from which positions are copied from a ramp: about where a
# copy per piece (a few hundred ns) costs what three passes over its slots do.
RAMP_PIECE_SLOTS = 512


@dataclasses.dataclass
class RowLayout:
    """The pieces that fill a placement's rows, in row order: each row's documents by offset,
    then its padding (start -1). Rows lie end to end, so the pieces tile rows x row_length
    slots, and every field is made by whole-window operations over a few hundred (long
    documents) to a few thousand (short ones) pieces, never by a loop over rows."""

    start: np.ndarray
    """Where the piece's tokens begin in the documents' tokens; -1 for padding."""
    length: np.ndarray
    segment: np.ndarray
    """1, 2, … along each row; 0 for padding."""
    offset: np.ndarray
    """Where the piece begins in its row."""
    document: np.ndarray
    """Which document the piece is; -1 for padding."""
    num_rows: int
    row_length: int

    @classmethod
    def of(cls, lengths: np.ndarray, placement: Placement, row_length: int) -> RowLayout:
        """The layout of documents of `lengths` placed by `placement`."""
        rows_count = placement.num_rows
        placed = np.flatnonzero(placement.row >= 0)
        order = placed[np.lexsort((placement.offset[placed], placement.row[placed]))]
        rows = placement.row[order]
        docs_per_row = np.bincount(rows, minlength=rows_count)
        docs_before_row = np.cumsum(docs_per_row) - docs_per_row
        used = np.bincount(rows, weights=lengths[order], minlength=rows_count)
        # Piece slots: row r's documents, then its padding; a document has r paddings before it.
        count = len(order) + rows_count
        doc_slots = np.arange(len(order)) + rows
        pad_slots = docs_before_row + docs_per_row + np.arange(rows_count)
        start = np.full(count, -1, np.int64)
        document = np.full(count, -1, np.int64)
        length = np.empty(count, np.int64)
        segment = np.zeros(count, np.int32)
        start[doc_slots] = (np.cumsum(lengths) - lengths)[order]
        document[doc_slots] = order
        length[doc_slots] = lengths[order]
        length[pad_slots] = row_length - used.astype(np.int64)
        segment[doc_slots] = np.arange(len(order)) - docs_before_row[rows] + 1
        row_of = np.repeat(np.arange(rows_count), docs_per_row + 1)
        offset = np.cumsum(length) - length - row_of * row_length
        return cls(start, length, segment, offset, document, rows_count, row_length)

    def tokens(self, values: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The rows' tokens [rows, row_length], 0 on padding, from the documents' tokens back
        to back: one concatenation of views (a single copy per token), into `out` (a
        contiguous [rows, row_length] block) or a new array."""
        zeros = np.zeros(self.row_length, TOKEN_DTYPE)
        spans = zip(self.start.tolist(), self.length.tolist(), strict=True)
        views = [values[s : s + n] if s >= 0 else zeros[:n] for s, n in spans if n]
        return self._join(views, out)

    def tokens_of_views(
        self, views: Sequence[Sequence[np.ndarray]], out: np.ndarray | None = None
    ) -> np.ndarray:
        """`tokens`, where document d's tokens are the arrays `views[d]` back to back (slices
        of the buffers they were read into, cast to int32 here): the rows are their only copy.
        `views[d]` is only read for documents of non-zero length."""
        zeros = np.zeros(self.row_length, TOKEN_DTYPE)
        spans = zip(self.document.tolist(), self.length.tolist(), strict=True)
        pieces = [v for d, n in spans if n for v in (views[d] if d >= 0 else (zeros[:n],))]
        return self._join(pieces, out)

    def _join(self, views: list[np.ndarray], out: np.ndarray | None) -> np.ndarray:
        if out is None:
            out = aligned_empty((self.num_rows, self.row_length), TOKEN_DTYPE)
        if views:
            flat = out.view()
            flat.shape = (-1,)  # raises, where reshape would silently write into a copy
            np.concatenate(views, out=flat)
        else:
            out.fill(0)
        return out

    def fields(
        self,
        write_tokens: Callable[[np.ndarray | None], np.ndarray],
        *,
        shift_target: Literal["inputs", "targets", "none"],
        first_input_id: int,
        eod_id: int | None = None,
        compact: bool = False,
    ) -> np.ndarray:
        """The stacked fields of the rows (see `pack_fields`). `write_tokens(out)` writes the
        rows' tokens into `out` ([rows, row_length]; a new array if None) and returns them."""
        compact = compact and shift_target != "targets"
        if shift_target == "targets" or eod_id is not None:
            tokens = write_tokens(None)
            segments, positions = self.segments_and_positions()
            if eod_id is not None:
                segments, positions = segments_from_eod(tokens, segments, eod_id)
            if compact:
                return np.stack([tokens, segments], axis=1)
            return shift_rows(
                tokens, segments, positions, shift_target=shift_target,
                first_input_id=first_input_id,
            )  # fmt: skip
        count = stacked_field_count(shift_target, compact)
        fields = field_planes(self.num_rows, count, self.row_length)
        if compact:
            write_tokens(fields[:, 0])
            self.segments(out=fields[:, 1])
            return fields
        tokens = write_tokens(fields[:, 1])
        self.segments(out=fields[:, 3])
        self.positions(out=fields[:, 2])
        shift_inputs(
            tokens, fields[:, 3], out=fields[:, 0], shift_target=shift_target,
            first_input_id=first_input_id,
        )  # fmt: skip
        return fields

    def segments_and_positions(self) -> tuple[np.ndarray, np.ndarray]:
        """Segment ids and positions [rows, row_length] int32 (`segments`, `positions`)."""
        shape = (self.num_rows, self.row_length)
        segments, positions = np.empty(shape, np.int32), np.empty(shape, np.int32)
        self.segments(out=segments)
        self.positions(out=positions)
        return segments, positions

    def segments(self, out: np.ndarray) -> None:
        out[...] = np.repeat(self.segment, self.length).reshape(out.shape)

    def positions(self, out: np.ndarray) -> None:
        """0, 1, … from each document's first slot; 0 on padding. Long pieces (books) are
        copies of a ramp, one write per slot; short ones are whole-window arithmetic, whose
        three passes over the slots cost less than a copy per piece."""
        if self.num_rows * self.row_length >= RAMP_PIECE_SLOTS * len(self.length):
            self.positions_from_ramps(out)
        else:
            self.positions_by_arithmetic(out)

    def positions_from_ramps(self, out: np.ndarray) -> None:
        """`positions`, as one concatenation of views of 0, 1, … (and of zeros for padding)."""
        ramp = np.arange(self.row_length, dtype=TOKEN_DTYPE)
        zeros = np.zeros(self.row_length, TOKEN_DTYPE)
        spans = zip(self.segment.tolist(), self.length.tolist(), strict=True)
        self._join([ramp[:n] if segment else zeros[:n] for segment, n in spans if n], out)

    def positions_by_arithmetic(self, out: np.ndarray) -> None:
        """`positions`: slot minus its piece's first slot (padding pieces count from
        -row_length, which the floor at 0 clears: against an array of zeros, as NumPy's
        maximum with a scalar is 4x slower)."""
        begins = np.where(self.segment > 0, self.offset, self.row_length).astype(np.int32)
        counting = np.repeat(begins, self.length).reshape(out.shape)
        np.subtract(np.arange(self.row_length, dtype=np.int32), counting, out=counting)
        np.maximum(counting, np.zeros(self.row_length, np.int32), out=out)


def segments_from_eod(
    targets: np.ndarray, segment_ids: np.ndarray, eod_id: int
) -> tuple[np.ndarray, np.ndarray]:
    """Segment ids and positions of rows that may hold several documents separated by EOD.

    A new segment starts at the beginning of a row and after every EOD token; padding
    (segment 0 on input) stays 0.
    """
    valid = segment_ids > 0
    starts = np.zeros(targets.shape, dtype=bool)
    starts[:, 0] = True
    starts[:, 1:] = targets[:, :-1] == eod_id
    starts &= valid
    segments = np.where(valid, np.cumsum(starts, axis=1), 0).astype(np.int32)
    index = np.broadcast_to(np.arange(targets.shape[1]), targets.shape)
    last_start = np.maximum.accumulate(np.where(starts, index, 0), axis=1)
    positions = np.where(valid, index - last_start, 0).astype(np.int32)
    return segments, positions


class PackIterDataset(grain.IterDataset):
    """Grain IterDataset: blocks of `Documents` (each ≤ row_length) → `Rows`, `group_rows`
    at a time (fewer at the end of a finite stream).

    `algorithm` ("best_fit", "first_fit"; see `xlstm_data.packing`) fills rows over windows of
    about `window_rows` rows' worth of tokens; "none" gives every document its own row (a window
    is then `window_rows` documents). `eod_id` (unpacked only) marks segment starts inside
    pre-tokenized records. A window's rows are shifted into the batch fields at once
    (`shift_target`, `first_input_id`), so batches of consecutive rows are slices.
    More than `empty_block_limit` blocks in a row without a token (a whole epoch of empty or
    skipped records) is an error naming `name`: an endless stream would never yield a row.
    The stream's first window holds `first_window_rows` (a batch, say), so the first batch does
    not wait for a whole window of documents to be read. `compact` rows hold only the targets
    and their segmentation (see `stages/shift.py`). Whole groups of rows leave at once, so a
    batch costs a few slices however many rows it has.
    """

    def __init__(
        self,
        parent: grain.IterDataset,
        *,
        row_length: int,
        window_rows: int,
        algorithm: str,
        shift_target: Literal["inputs", "targets", "none"] = "inputs",
        first_input_id: int = 0,
        eod_id: int | None = None,
        empty_block_limit: int | None = None,
        name: str = "the source",
        first_window_rows: int | None = None,
        compact: bool = False,
        group_rows: int = 1,
    ):
        super().__init__(parent)
        self.group_rows = group_rows
        self.row_length = row_length
        self.window_rows = window_rows
        self.first_window_rows = first_window_rows or window_rows
        self.compact = compact
        self.algorithm = algorithm
        self.shift_target = shift_target
        self.first_input_id = first_input_id
        self.eod_id = eod_id
        self.empty_block_limit = empty_block_limit
        self.name = name

    def __iter__(self) -> _PackIterator:
        return _PackIterator(self._parent.__iter__(), self)

    def __str__(self) -> str:
        return (
            f"PackIterDataset(row_length={self.row_length}, {self.algorithm}, "
            f"window_rows={self.window_rows})"
        )


class _PackIterator(grain.DatasetIterator):
    def __init__(self, parent: grain.DatasetIterator, spec: PackIterDataset):
        super().__init__(parent)
        self._spec = spec
        self._empty_blocks = 0
        self._reset(parent.get_state(), skip_documents=0, skip_rows=0, first_window=True)

    def _reset(
        self, block_state: Any, skip_documents: int, skip_rows: int, first_window: bool
    ) -> None:
        self._first_window = first_window  # whether the window to build next is the first
        self._window_is_first = first_window  # whether the current window was
        self._block: Documents | None = None
        self._block_state = block_state  # parent state before `self._block` was read
        self._next_document = skip_documents
        self._window_state = (block_state, skip_documents)
        self._fields: np.ndarray | None = None
        self._contents: list[list[int]] = []  # per row of the window: tokens, pieces before it
        self._next_row = skip_rows
        self._pending_counts: Counter = Counter()

    def _read_block(self) -> bool:
        self._block_state = self._parent.get_state()
        try:
            block = next(self._parent)
        except StopIteration:
            return False
        skip = self._next_document if self._block is None else 0
        self._block, self._next_document = block, skip
        self._pending_counts.update(block.counts)
        self._empty_blocks = 0 if block.lengths.any() else self._empty_blocks + 1
        limit = self._spec.empty_block_limit
        if limit is not None and self._empty_blocks > limit:
            raise DataError(
                f"{self._spec.name}: {self._empty_blocks} read blocks in a row (a whole epoch) "
                f"hold no token, so no row can be made ({dict(self._pending_counts)}): every "
                "record is empty or was skipped. Check the data (and invalid_records)."
            )
        return True

    def _take_window(self) -> Documents | None:
        """Documents of the next window, or None at the end of the stream."""
        spec = self._spec
        # A window holds window_rows rows' worth of tokens, or unpacked, window_rows documents.
        packs = spec.algorithm != "none"
        rows = spec.first_window_rows if self._first_window else spec.window_rows
        budget = rows * spec.row_length if packs else rows
        pieces: list[Documents] = []
        taken = 0
        while taken < budget:
            if self._block is None or self._next_document >= len(self._block):
                if not self._read_block():
                    break
                if not pieces:
                    self._window_state = (self._block_state, self._next_document)
                continue
            if not pieces:
                self._window_state = (self._block_state, self._next_document)
            lengths = self._block.lengths[self._next_document :]
            if packs:
                fits = int(np.searchsorted(np.cumsum(lengths), budget - taken, side="right"))
                count = max(fits, 1 if taken == 0 else 0)
                taken += int(lengths[:count].sum()) if count else budget
            else:
                count = min(len(lengths), budget - taken)
                taken += count
            if count:  # (none when the next document does not fit: the window is full)
                pieces.append(self._block.take(self._next_document, self._next_document + count))
                self._next_document += count
        if not pieces:
            return None
        return Documents.concatenate(pieces)

    def _build_window(self) -> bool:
        documents = self._take_window()
        if documents is None:
            return False
        self._window_is_first, self._first_window = self._first_window, False
        spec = self._spec
        placement = place(documents.lengths, spec.row_length, spec.algorithm)
        self._fields = pack_fields(
            documents,
            placement,
            spec.row_length,
            shift_target=spec.shift_target,
            first_input_id=spec.first_input_id,
            eod_id=spec.eod_id if spec.algorithm == "none" else None,
            compact=spec.compact,
        )
        rows, lengths = placement.row, documents.lengths
        placed = rows >= 0
        contents = np.stack(
            [
                np.bincount(rows[placed], lengths[placed], placement.num_rows),
                np.bincount(rows[placed & (lengths > 0)], minlength=placement.num_rows),
            ],
            axis=1,
        ).astype(np.int64)
        self._contents = np.concatenate([[[0, 0]], np.cumsum(contents, axis=0)]).tolist()
        return True

    def __next__(self) -> Rows:
        wanted, parts = self._spec.group_rows, []
        while wanted:
            if self._fields is None or self._next_row >= len(self._fields):
                skip_rows = self._next_row if self._fields is None else 0
                if not self._build_window():
                    break
                self._next_row = skip_rows
                if skip_rows:  # restored mid-window: what was counted before the save stays
                    self._pending_counts = Counter()
                continue
            begin = self._next_row
            self._next_row = min(len(self._fields), begin + wanted)
            wanted -= self._next_row - begin
            counts = self._take_counts(begin, self._next_row)
            parts.append(Rows(self._fields, begin, self._next_row, counts))
        if not parts:
            raise StopIteration
        return parts[0] if len(parts) == 1 else join_rows(parts)

    def _take_counts(self, begin: int, end: int) -> Counter:
        """What was counted since the last rows left, and the rows, tokens, padding and
        documents of the window's rows [begin, end): counts follow the rows that leave, so a
        batch's counts are its own rows' (not its window's)."""
        counts, self._pending_counts = self._pending_counts, Counter()
        (tokens_before, pieces_before), (tokens_after, pieces_after) = (
            self._contents[begin],
            self._contents[end],
        )
        tokens, pieces = tokens_after - tokens_before, pieces_after - pieces_before
        counts["rows"] += end - begin
        counts["tokens"] += tokens
        counts["padding_tokens"] += (end - begin) * self._spec.row_length - tokens
        counts["documents"] += pieces
        counts[source_key("tokens", self._spec.name)] += tokens
        counts[source_key("documents", self._spec.name)] += pieces
        return counts

    def get_state(self) -> dict[str, Any]:
        block_state, skip_documents = self._window_state
        if self._fields is not None and self._next_row >= len(self._fields):
            # Window used up: the next one starts where this one stopped reading.
            block_state, skip_documents, rows = self._block_state, self._next_document, 0
            first = False
        else:
            rows = self._next_row
            first = self._window_is_first if self._fields is not None else self._first_window
        return {
            "parent": block_state,
            "skip_documents": skip_documents,
            "skip_rows": rows,
            "first_window": first,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self._parent.set_state(state["parent"])
        self._reset(
            state["parent"], state["skip_documents"], state["skip_rows"], state["first_window"]
        )


def join_rows(parts: Sequence[Rows]) -> Rows:
    """The rows of `parts` as one `Rows`, their counts summed: a slice of the window when
    they are consecutive rows of one window, else the rows of the windows joined."""
    counts: Counter = Counter()
    for part in parts:
        counts.update(part.counts)
    first, last = parts[0], parts[-1]
    consecutive = all(
        a.window is b.window and a.end == b.begin for a, b in itertools.pairwise(parts)
    )
    if consecutive:
        return Rows(first.window, first.begin, last.end, counts)
    joined = concatenate_planes([part.fields for part in parts])
    return Rows(joined, 0, len(joined), counts)
