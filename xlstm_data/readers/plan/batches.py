"""Batches from a plan: global batch b is rows [R_b, R_b + G_b) of the epoch-ordered plan.

The plan's rows are visited in a fresh seeded order every epoch. Epoch e is a stream of E row
slots (the plan's rows, cut down to whole global batches with `drop_remainder`, or padded up
with empty rows without it); slot i holds plan row `perm_e(i)`. Step b covers slots
[R_b, R_b + G_b) of the stream of all epochs (R_b sums the ramp-up batch sizes before b), and
host h of H reads the contiguous H-th of them that lands on its devices. A batch is therefore a
pure function of (plan, seed, step): the same on any number of hosts, restorable from the step.
"""

from __future__ import annotations

import dataclasses
import sys
from collections import Counter
from pathlib import Path
from typing import Literal

import grain
import numpy as np

from xlstm_data.documents import (
    MAX_PLAUSIBLE_VOCAB,
    Documents,
    outside_vocabulary,
    ranges_index,
)
from xlstm_data.errors import DataError, InvalidRecordError
from xlstm_data.packing import Placement
from xlstm_data.permutation import RandomPermutation
from xlstm_data.readers.plan.build import Plan
from xlstm_data.readers.skips import Skips
from xlstm_data.schedule import BatchSchedule
from xlstm_data.sources.protocol import DocumentSource
from xlstm_data.stages.batch import Finish
from xlstm_data.stages.epochs import epoch_length
from xlstm_data.stages.pack import RowLayout
from xlstm_data.telemetry import source_key

# About how many consecutive plan rows stay together when an epoch shuffles its rows: blocks
# are cut only where no document crosses (`Plan.group_starts`: the full pieces of a long
# document sit in consecutive rows, with the row of its last piece right after them), so a read
# finds each document's pieces together instead of reading the whole document once per piece
# (6x the tokens used, for books-length documents) or once per block it straddles.
SHUFFLE_BLOCK_ROWS = 64


def shuffle_blocks(group_starts: np.ndarray, size: int = SHUFFLE_BLOCK_ROWS) -> np.ndarray:
    """The first row of each block an epoch shuffles: the first group start in each stretch
    of `size` rows, so that blocks hold about `size` rows (more where a group is longer)."""
    starts = np.asarray(group_starts, dtype=np.int64)
    if not len(starts):
        return starts
    return starts[np.r_[True, np.diff(starts // size) > 0]]


class EpochSlots:
    """Which plan row sits in each slot of the stream of epochs (-1: an empty padding row).

    Each epoch visits the blocks of consecutive rows that begin at `block_starts`
    (`shuffle_blocks`) in its own seeded order; the rows themselves were filled from shuffled
    documents.
    """

    def __init__(
        self,
        num_rows: int,
        *,
        block_starts: np.ndarray,
        global_batch_size: int,
        drop_remainder: bool,
        max_steps_per_epoch: int | None,
        num_epochs: int | None,
        shuffle: bool,
        seed: int,
    ):
        self.num_rows = num_rows
        self.slots_per_epoch = epoch_length(
            num_rows,
            global_batch_size=global_batch_size,
            drop_remainder=drop_remainder,
            max_steps_per_epoch=max_steps_per_epoch,
            name="The plan",
            unit="rows",
        )
        self.num_epochs = num_epochs
        self.shuffle = shuffle
        self.seed = seed
        self.block_starts = np.asarray(block_starts, dtype=np.int64)
        self.block_sizes = np.diff(np.r_[self.block_starts, num_rows])
        self._order: tuple[int, np.ndarray, np.ndarray] | None = None  # epoch, blocks, slots

    @property
    def total(self) -> int | None:
        return None if self.num_epochs is None else self.slots_per_epoch * self.num_epochs

    def rows(self, slots: np.ndarray) -> np.ndarray:
        """Plan row of each slot, -1 for the empty rows that pad an epoch or follow the last."""
        rows = np.full(len(slots), -1, dtype=np.int64)
        epochs, within = np.divmod(slots, self.slots_per_epoch)
        valid = within < self.num_rows
        if self.total is not None:
            valid &= slots < self.total
        if not self.shuffle:
            rows[valid] = within[valid]
            return rows
        for epoch in np.unique(epochs[valid]).tolist():
            chosen = valid & (epochs == epoch)
            rows[chosen] = self._shuffled(epoch, within[chosen])
        return rows

    def _shuffled(self, epoch: int, positions: np.ndarray) -> np.ndarray:
        """The rows at `positions` of epoch `epoch`: its blocks in their seeded order."""
        if self._order is None or self._order[0] != epoch:
            count = len(self.block_starts)
            order = RandomPermutation(count, (self.seed, epoch))(np.arange(count))
            sizes = self.block_sizes[order]
            self._order = (epoch, order, np.cumsum(sizes) - sizes)
        _, order, first_slot = self._order
        place = np.searchsorted(first_slot, positions, side="right") - 1
        return self.block_starts[order[place]] + (positions - first_slot[place])


# Tokens of a host's rows whose documents are read together: one read call per file for the
# rows of many steps makes random reads several times cheaper than one call per step.
TOKENS_PER_READ = 1 << 20
# ... but never more steps than this, so that small batches do not read far ahead of need.
MAX_STEPS_PER_READ = 64


def steps_per_read(local_rows: int, row_length: int) -> int:
    """Steps whose rows hold about TOKENS_PER_READ tokens on one host (1 to 64)."""
    return max(1, min(MAX_STEPS_PER_READ, TOKENS_PER_READ // (local_rows * row_length)))


@dataclasses.dataclass
class RowPieces:
    """The pieces of some rows, row by row: piece i is tokens [start, start + length) of
    document `document` of source `source` (special tokens counted), at `offset` in row `row`
    (an index into the rows asked for)."""

    row: np.ndarray
    source: np.ndarray
    document: np.ndarray
    start: np.ndarray
    length: np.ndarray
    offset: np.ndarray


def without_skipped(
    pieces: RowPieces, row_step: np.ndarray, skips: Skips
) -> tuple[RowPieces, tuple[np.ndarray, np.ndarray] | None]:
    """The pieces without those of skipped documents (the rest of a row moves up, the row
    ends in more padding), and per row the (pieces, tokens) left out; `row_step` is each
    row's data step."""
    if not skips.documents or not len(pieces.row):
        return pieces, None
    drop = skips.dropped_pieces(pieces.source, pieces.document, row_step[pieces.row])
    rows = len(row_step)
    left_out = (
        np.bincount(pieces.row[drop], minlength=rows),
        np.bincount(pieces.row[drop], weights=pieces.length[drop], minlength=rows),
    )
    keep = ~drop
    row, length = pieces.row[keep], pieces.length[keep]
    row_tokens = np.bincount(row, weights=length, minlength=rows).astype(np.int64)
    offset = (np.cumsum(length) - length) - (np.cumsum(row_tokens) - row_tokens)[row]
    kept = RowPieces(row, pieces.source[keep], pieces.document[keep], pieces.start[keep],
                     length, offset)  # fmt: skip
    return kept, left_out


def _sums_between(values: np.ndarray, begins: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Sums of the rows [begin, end) of `values` for each (begin, end), in one pass."""
    totals = np.zeros((len(values) + 1, *values.shape[1:]), np.float64)
    np.cumsum(values, axis=0, out=totals[1:])
    return totals[ends] - totals[begins]


def row_pieces(plan: Plan, rows: np.ndarray) -> RowPieces:
    """The pieces of plan rows `rows` (-1: an empty row, no pieces), in O(pieces)."""
    real = rows >= 0
    begin = np.where(real, plan.row_starts[np.maximum(rows, 0)], 0)
    count = np.where(real, plan.row_starts[np.maximum(rows, 0) + 1] - begin, 0)
    pieces = ranges_index(begin, count)
    piece_row = np.repeat(np.arange(len(rows)), count)
    lengths = np.asarray(plan.piece_length[pieces], dtype=np.int64)
    # Pieces come row by row; a piece's offset is the tokens of its row before it.
    row_tokens = np.bincount(piece_row, weights=lengths, minlength=len(rows)).astype(np.int64)
    offset = (np.cumsum(lengths) - lengths) - (np.cumsum(row_tokens) - row_tokens)[piece_row]
    return RowPieces(
        piece_row,
        np.asarray(plan.piece_source[pieces], dtype=np.int64),
        np.asarray(plan.piece_document[pieces], dtype=np.int64),
        np.asarray(plan.piece_start[pieces], dtype=np.int64),
        lengths,
        offset,
    )


class PlanBatches(grain.MapDataset):
    """Element i: this host's local batches of `steps_per_read` steps from
    `first_step + i * steps_per_read` on, a list of `(fields, counts)` (see
    `one_batch_at_a_time` for the flat stream).

    The plan is reopened (memory-mapped) in every process from `plan_folder`; sources pickle
    as paths. Tokens are read only for the documents the rows hold.
    """

    def __init__(
        self,
        *,
        plan_folder: Path,
        sources: list[DocumentSource],
        prefixes: list[tuple[int, ...]],
        suffixes: list[tuple[int, ...]],
        slots: EpochSlots,
        schedule: BatchSchedule,
        host_index: int,
        host_count: int,
        row_length: int,
        shift_target: Literal["inputs", "targets", "none"],
        first_input_id: int,
        compact: bool,
        vocab_sizes: list[int | None],
        steps_per_read: int,
        names: list[str],
        first_step: int = 0,
        skips: Skips | None = None,
        step_offset: int = 0,
    ):
        """Steps are the plan's own (from 0); `step_offset` is the data step of its step 0
        (a schedule's stage), which `skips` are counted in."""
        super().__init__()
        self.plan_folder = plan_folder
        self.sources = sources
        self.prefixes, self.suffixes = prefixes, suffixes
        self.slots = slots
        self.schedule = schedule
        self.host_index, self.host_count = host_index, host_count
        self.row_length = row_length
        self.shift_target = shift_target
        self.first_input_id = first_input_id
        self.compact = compact
        self.vocab_sizes = vocab_sizes
        self.steps_per_read = steps_per_read
        self.names = names
        self.first_step = first_step
        self.skips = skips or Skips()
        self.step_offset = step_offset
        self._plan: Plan | None = None

    def __getstate__(self) -> dict:
        return self.__dict__ | {"_plan": None}

    @property
    def plan(self) -> Plan:
        if self._plan is None:
            self._plan = Plan.open(self.plan_folder)
        return self._plan

    def steps(self) -> int | None:
        """Delivered steps from `first_step` to the end (None: endless)."""
        if self.slots.total is None:
            return None
        end = self.schedule.steps_covering(self.slots.total)
        offset = self.step_offset
        return self.skips.kept_between(offset + self.first_step, offset + end)

    def __len__(self) -> int:
        steps = self.steps()
        return sys.maxsize if steps is None else -(-steps // self.steps_per_read)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return self.slice(index)
        first = int(index) * self.steps_per_read
        steps = self.steps()
        last = (
            first + self.steps_per_read
            if steps is None
            else min(first + self.steps_per_read, steps)
        )
        begin = self.step_offset + self.first_step
        chosen = [self.skips.nth_step(begin, n) - self.step_offset for n in range(first, last)]
        rows, step_rows = self.host_rows(chosen)
        row_step = np.repeat(np.asarray(chosen) + self.step_offset, step_rows)
        pieces, skipped = without_skipped(row_pieces(self.plan, rows), row_step, self.skips)
        fields, read_tokens = self._materialize(pieces, len(rows))
        # Tokens and pieces per (row, source), summed per step, for each batch's counts.
        sources = len(self.sources)
        cell = pieces.row * sources + pieces.source
        tokens = np.bincount(cell, pieces.length, len(rows) * sources).reshape(-1, sources)
        documents = np.bincount(cell[pieces.length > 0], minlength=len(rows) * sources)
        ends = np.cumsum(step_rows)
        begins = ends - np.asarray(step_rows)
        step_tokens, step_documents, step_real = (
            _sums_between(values, begins, ends).astype(np.int64).tolist()
            for values in (tokens, documents.reshape(-1, sources), rows >= 0)
        )
        if skipped is not None:
            step_skipped = _sums_between(np.stack(skipped, 1), begins, ends).astype(np.int64)
        keys = [(source_key("tokens", n), source_key("documents", n)) for n in self.names]
        batches = []
        for step, (begin, end) in enumerate(zip(begins.tolist(), ends.tolist(), strict=True)):
            by_source, real = step_tokens[step], step_real[step]
            used = sum(by_source)
            counts = Counter(
                rows=real,
                padding_rows=end - begin - real,
                tokens=used,
                padding_tokens=(end - begin) * self.row_length - used,
            )
            for (tokens_key, documents_key), n, d in zip(
                keys, by_source, step_documents[step], strict=True
            ):
                counts[tokens_key] += n
                counts[documents_key] += d
            if skipped is not None:
                counts["skipped_pieces"] += int(step_skipped[step, 0])
                counts["skipped_tokens"] += int(step_skipped[step, 1])
            if step == 0:  # the documents of all the steps are read at once
                counts["read_tokens"] = read_tokens
            batches.append((fields[begin:end], counts))
        return batches

    def host_rows(self, steps: list[int]) -> tuple[np.ndarray, list[int]]:
        """The plan rows of this host's part of the batches at `steps`, one after the other
        (-1: empty rows), and how many each step has."""
        local = [self.schedule.local_rows(step) for step in steps]
        first = [
            self.schedule.rows_before(step) + self.host_index * rows
            for step, rows in zip(steps, local, strict=True)
        ]
        return self.slots.rows(ranges_index(np.array(first), np.array(local))), local

    def _materialize(self, pieces: RowPieces, num_rows: int) -> tuple[np.ndarray, int]:
        """The stacked fields of `num_rows` rows holding `pieces`, and the tokens read."""
        views, read_tokens = self._piece_views(
            pieces.source, pieces.document, pieces.start, pieces.length
        )
        # Empty rows get an empty piece, so that every row exists in the placement.
        empty = np.flatnonzero(np.bincount(pieces.row, minlength=num_rows) == 0)
        placement = Placement(
            np.concatenate([pieces.row, empty]),
            np.concatenate([pieces.offset, np.zeros(len(empty), np.int64)]),
            num_rows,
        )
        lengths = np.concatenate([pieces.length, np.zeros(len(empty), np.int64)])
        layout = RowLayout.of(lengths, placement, self.row_length)

        def write_tokens(out: np.ndarray | None) -> np.ndarray:
            tokens = layout.tokens_of_views(views, out)
            self._check_vocabulary(tokens, layout, pieces.source, pieces.document)
            return tokens

        fields = layout.fields(
            write_tokens, shift_target=self.shift_target, first_input_id=self.first_input_id,
            compact=self.compact,
        )  # fmt: skip
        return fields, read_tokens

    def _piece_views(
        self, source: np.ndarray, document: np.ndarray, start: np.ndarray, length: np.ndarray
    ) -> tuple[list[tuple[np.ndarray, ...]], int]:
        """The tokens of every piece as its slices of the prefix, the record and the suffix
        (each document read once; the rows copy them), and the tokens of the records read."""
        views: list[tuple[np.ndarray, ...]] = [()] * len(source)
        read_tokens = 0
        for index in np.unique(source).tolist():
            chosen = np.flatnonzero(source == index)
            unique, inverse = np.unique(document[chosen], return_inverse=True)
            records = self.sources[index].__getitems__(unique)
            prefix = np.array(self.prefixes[index], np.int32)
            suffix = np.array(self.suffixes[index], np.int32)
            record_sizes = np.fromiter(map(len, records), np.int64, count=len(records))
            read_tokens += int(record_sizes.sum())
            sizes = record_sizes[inverse]
            # Piece [a, b) of prefix + record + suffix (an empty record has no special tokens,
            # so its pieces are empty), clipped to each of the three.
            a, b = start[chosen], start[chosen] + length[chosen]
            body = a - len(prefix), b - len(prefix)
            tail = body[0] - sizes, body[1] - sizes
            bounds = np.stack(
                [
                    np.minimum(a, len(prefix)), np.minimum(b, len(prefix)),
                    np.clip(body[0], 0, sizes), np.clip(body[1], 0, sizes),
                    np.clip(tail[0], 0, len(suffix)), np.clip(tail[1], 0, len(suffix)),
                ],
                axis=1,
            )  # fmt: skip
            short = np.flatnonzero((bounds[:, 1::2] - bounds[:, ::2]).sum(axis=1) < length[chosen])
            if len(short):
                record = int(document[chosen[short[0]]])
                raise DataError(
                    f"{self.sources[index].describe(record)} holds fewer tokens than the plan "
                    "says: the data changed after the plan was built. Restore the data, or delete "
                    "the plan folder (plan_dir), whose lengths and plan are then built again."
                )
            for piece, record, (p0, p1, r0, r1, s0, s1) in zip(
                chosen.tolist(), inverse.tolist(), bounds.tolist(), strict=True
            ):
                body = records[record][r0:r1]
                # Most pieces hold no special token: one view, one part for the rows' join.
                special = p0 < p1 or s0 < s1
                views[piece] = (prefix[p0:p1], body, suffix[s0:s1]) if special else (body,)
        return views, read_tokens

    def _check_vocabulary(
        self, tokens: np.ndarray, layout: RowLayout, source: np.ndarray, document: np.ndarray
    ) -> None:
        """Raises naming a document whose piece holds an id outside its source's vocabulary:
        every token the model sees is checked (the rows' `tokens`, laid out by `layout`), one
        pass per distinct vocabulary size."""
        slots = Documents(tokens.reshape(-1), layout.length)
        # A source without a known vocabulary is checked against the plausible bound, as online.
        vocab_sizes = [b or MAX_PLAUSIBLE_VOCAB for b in self.vocab_sizes]
        bounds = np.array(vocab_sizes)[source]
        for bound in sorted(set(vocab_sizes)):
            # The slots' pieces (the empty rows' pieces hold nothing; padding, 0, is outside
            # only a vocabulary of size 0).
            bad = layout.document[outside_vocabulary(slots, bound)]
            bad = bad[bad >= 0]
            bad = bad[bounds[bad] == bound]  # pieces of sources with this vocabulary
            if len(bad):
                piece = int(bad[0])
                raise InvalidRecordError(
                    f"{self.sources[int(source[piece])].describe(int(document[piece]))} holds "
                    f"ids outside [0, {bound}); the data does not belong to this vocabulary."
                )

    def __str__(self) -> str:
        return (
            f"PlanBatches(host {self.host_index}/{self.host_count}, from step "
            f"{self.first_step}, {self.plan_folder.name})"
        )


class FinishEach(grain.transforms.Map):
    """Every batch of a `PlanBatches` element through `finish`."""

    def __init__(self, finish: Finish):
        self.finish = finish

    def map(self, element: list) -> list:
        return [self.finish(batch) for batch in element]


class _Batches(grain.experimental.FlatMapTransform):
    """The list of a `PlanBatches` element, one batch at a time (each through `finish`)."""

    def __init__(self, max_fan_out: int, finish: Finish | None):
        self.max_fan_out = max_fan_out
        self.finish = finish

    def flat_map(self, element: list) -> list:
        return element if self.finish is None else FinishEach(self.finish).map(element)


def one_batch_at_a_time(
    chunks: grain.IterDataset, steps_per_read: int, finish: Finish | None = None
) -> grain.IterDataset:
    """The batches of a stream of `PlanBatches` elements, step after step (flattened after any
    worker processes, which hand out whole elements in order), each through `finish`."""
    return grain.experimental.FlatMapIterDataset(chunks, _Batches(steps_per_read, finish))
