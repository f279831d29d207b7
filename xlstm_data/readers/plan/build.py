"""Building a global plan: which pieces of which documents fill each row of an epoch.

Everything here works on arrays of document lengths, never on tokens:

1. **Mixture by tokens.** A plan epoch holds N tokens, by default the fewest that use every
   document of every source at least once at the given weights (N = max T_s / w_s for source
   token totals T_s). Source s contributes w_s * N tokens: whole passes over its documents,
   each in a fresh seeded order (in source order without shuffling), then the part of one more
   pass that reaches its share.
2. **Interleaving.** Every chosen document gets the key (tokens of its source before it plus
   half its own) / (its source's share); sorting by key spreads each source evenly over the
   epoch, so any stretch of it holds the sources in their weights.
3. **Splitting.** Documents longer than a row become row-length pieces (the rule of
   `stages/split.py`); no token is dropped, unless a source truncates (its first piece only).
4. **Packing.** Consecutive windows of about `window_rows` rows' worth of pieces are placed by
   the packing algorithm (`xlstm_data/packing/`; best fit's histogram variant takes seconds
   for 10^8 documents).

Rows are numbered window after window; the order in which an epoch visits them is a separate
seeded permutation per epoch (see batches.py), so the plan is built once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from tqdm import tqdm

from xlstm_data.errors import DataError
from xlstm_data.packing import place
from xlstm_data.stages.split import split_lengths


@dataclasses.dataclass
class Plan:
    """Rows as runs of pieces: row r holds pieces [row_starts[r], row_starts[r + 1]), in order.

    A piece is tokens [piece_start, piece_start + piece_length) of document piece_document of
    source piece_source, counted with the special tokens the pipeline adds.
    """

    row_starts: np.ndarray
    piece_source: np.ndarray
    piece_document: np.ndarray
    piece_start: np.ndarray
    piece_length: np.ndarray
    report: dict

    ARRAYS = ("row_starts", "piece_source", "piece_document", "piece_start", "piece_length")

    @property
    def num_rows(self) -> int:
        return len(self.row_starts) - 1


@dataclasses.dataclass
class ChosenDocuments:
    """The documents of one plan epoch, in plan order."""

    source: np.ndarray
    document: np.ndarray
    length: np.ndarray
    position: np.ndarray
    """Each document's place in its source's stream of passes."""


def choose_documents(
    lengths: Sequence[np.ndarray],
    weights: Sequence[float],
    *,
    seed: int,
    plan_tokens: float | None,
    shuffle: bool = True,
    start: Sequence[int] | None = None,
) -> tuple[ChosenDocuments, dict]:
    """Steps 1 and 2: each source's share of the epoch, interleaved by token position.

    Each source's documents come from its stream of seeded passes, from stream position
    `start[s]` on (0: the first document of the first pass); `position` of each chosen
    document is its place in that stream, so a later stage can continue after it. A source of
    weight 0 gives no documents.
    """
    weights = np.asarray(weights, dtype=np.float64) / np.sum(weights)
    totals = np.array([int(np.asarray(n).sum()) for n in lengths], dtype=np.float64)
    if (totals[weights > 0] == 0).any():
        empty = int(np.flatnonzero((totals == 0) & (weights > 0))[0])
        raise DataError(f"Source {empty} of the plan holds no tokens.")
    used = weights > 0
    epoch_tokens = plan_tokens or float((totals[used] / weights[used]).max())
    targets = weights * epoch_tokens
    start = [0] * len(lengths) if start is None else list(start)
    sources, documents, positions, keys = [], [], [], []
    for index, (source_lengths, target) in enumerate(zip(lengths, targets, strict=True)):
        source_lengths = np.asarray(source_lengths, np.int64)
        chosen = (
            _stream(source_lengths, target, seed=(seed, index) if shuffle else None,
                    start=start[index])
            if target > 0
            else np.zeros(0, np.int64)
        )  # fmt: skip
        chosen_lengths = source_lengths[chosen]
        before = np.cumsum(chosen_lengths) - chosen_lengths
        keys.append((before + chosen_lengths / 2) / max(target, 1.0))
        documents.append(chosen)
        positions.append(start[index] + np.arange(len(chosen), dtype=np.int64))
        sources.append(np.full(len(chosen), index, dtype=np.int16))
    order = np.argsort(np.concatenate(keys), kind="stable")
    source = np.concatenate(sources)[order]
    document = np.concatenate(documents)[order]
    position = np.concatenate(positions)[order]
    length = np.concatenate([np.asarray(n, np.int64) for n in lengths])  # indexed below
    offsets = np.cumsum([0, *[len(n) for n in lengths[:-1]]])
    length = length[offsets[source] + document]
    report = {
        "source_tokens": totals.astype(np.int64).tolist(),
        "weights": np.round(weights, 6).tolist(),
        "epochs_per_source": np.round(targets / np.maximum(totals, 1), 4).tolist(),
    }
    return ChosenDocuments(source, document, length, position), report


def _stream(
    lengths: np.ndarray, target: float, *, seed: tuple[int, int] | None, start: int = 0
) -> np.ndarray:
    """Documents (non-empty ones) of the source's stream of passes, each pass in its own
    seeded order (in order when `seed` is None), from stream position `start` on, reaching
    `target` tokens (a document counts when its middle lies within the target)."""
    candidates = np.flatnonzero(lengths > 0)
    total = int(lengths[candidates].sum())

    def one_pass(number: int) -> np.ndarray:
        if seed is None:
            return candidates
        return np.random.default_rng([*seed, number]).permutation(candidates)

    number, skip = divmod(start, len(candidates))
    first = one_pass(number)[skip:]
    first_tokens = int(lengths[first].sum())
    if target <= first_tokens:
        passes = [first]
    else:
        full = int((target - first_tokens) // total)
        passes = [
            first,
            *(one_pass(number + 1 + p) for p in range(full)),
            one_pass(number + 1 + full),
        ]
    stream = np.concatenate(passes)
    middle = np.cumsum(lengths[stream]) - lengths[stream] / 2
    return stream[: int(np.searchsorted(middle, target))]


def build_plan(
    lengths: Sequence[np.ndarray],
    weights: Sequence[float],
    *,
    row_length: int,
    seed: int,
    window_rows: int,
    plan_tokens: int | None = None,
    algorithm: str = "best_fit",
    shuffle: bool = True,
    truncate: Sequence[bool] | None = None,
    progress: bool = True,
    start: Sequence[int] | None = None,
    rows: int | None = None,
) -> Plan:
    """The plan of one epoch over sources with these document lengths (special tokens
    included), mixed by `weights` in tokens; sources with `truncate[s]` keep only the first
    row's worth of each document. Each source's documents start at stream position
    `start[s]`. With `rows`, the plan is a finite stage of exactly that many rows: documents
    are taken until the rows are full (the next stage starts at `report["stream_end"]`)."""
    tokens = plan_tokens
    while True:
        if rows is not None:  # enough documents for the rows, with room for padding
            tokens = (rows + 2 * window_rows) * row_length * 1.05 if tokens is None else tokens
        chosen, report = choose_documents(
            lengths, weights, seed=seed, plan_tokens=tokens, shuffle=shuffle, start=start
        )
        plan = _pack(
            chosen,
            report | {"seed": seed},
            lengths,
            row_length=row_length,
            window_rows=window_rows,
            algorithm=algorithm,
            truncate=truncate,
            progress=progress,
            rows=rows,
        )
        if plan is not None:
            return plan
        tokens *= 2  # the stage's rows need more documents than estimated


def _pack(
    chosen: ChosenDocuments,
    report: dict,
    lengths: Sequence[np.ndarray],
    *,
    row_length: int,
    window_rows: int,
    algorithm: str,
    truncate: Sequence[bool] | None,
    progress: bool,
    rows: int | None,
) -> Plan | None:
    """Steps 3 and 4; None when `rows` rows cannot be filled from the chosen documents."""
    pieces = split_lengths(chosen.length, row_length)
    owner, start, length = pieces.owner, pieces.start, pieces.length
    truncated_tokens = 0
    if truncate is not None and any(truncate):
        kept = (start == 0) | ~np.asarray(truncate, bool)[chosen.source[owner]]
        truncated_tokens = int(length[~kept].sum())
        owner, start, length = owner[kept], start[kept], length[kept]
    budget = window_rows * row_length
    window_of = (np.cumsum(length) - length) // budget
    bounds = np.flatnonzero(np.diff(window_of)) + 1
    piece_rows = np.full(len(length), -1, dtype=np.int64)
    offsets = np.zeros(len(length), dtype=np.int64)
    num_rows, used = 0, len(length)
    windows = np.split(np.arange(len(length)), bounds)
    for window in tqdm(windows, desc="packing plan", unit="window", disable=not progress):
        placement = place(length[window], row_length, algorithm)
        if rows is not None and num_rows + placement.num_rows > rows:
            count, placement = _fill(window, owner, length, row_length, algorithm, rows - num_rows)
            used = int(window[0]) + count
            window = window[:count]
            piece_rows[window] = placement.row + num_rows
            offsets[window] = placement.offset
            num_rows = rows
            break
        piece_rows[window] = placement.row + num_rows
        offsets[window] = placement.offset
        num_rows += placement.num_rows
    else:
        if rows is not None and num_rows < rows:
            return None
    documents = int(owner[used - 1]) + 1 if used else 0
    # A document split across the stage's end: its pieces past the end are cut.
    cut_tokens = int(length[used:][owner[used:] < documents].sum())
    owner, start, length = owner[:used], start[:used], length[:used]
    piece_rows, offsets = piece_rows[:used], offsets[:used]
    order = np.lexsort((offsets, piece_rows))
    row_starts = np.searchsorted(piece_rows[order], np.arange(num_rows + 1))
    tokens = int(length.sum())
    source = chosen.source[owner]
    realised = np.bincount(source, weights=length, minlength=len(lengths)) / max(tokens, 1)
    weights = np.asarray(report["weights"])
    stream_end = [
        int(chosen.position[:documents][chosen.source[:documents] == s].max(initial=-1)) + 1
        for s in range(len(lengths))
    ]
    report = report | {
        "epoch_tokens": tokens,
        "documents": documents,
        "realised_token_share": np.round(realised, 6).tolist(),
        "largest_share_deviation": float(np.abs(realised - weights).max()),
        "rows": num_rows,
        "row_length": row_length,
        "pieces": len(length),
        "split_documents": int((np.bincount(owner) > 1).sum()) if len(owner) else 0,
        "truncated_tokens": truncated_tokens,
        "stage_cut_tokens": cut_tokens,
        "packing": algorithm,
        "padding_fraction": round(1 - tokens / max(num_rows * row_length, 1), 6),
        "window_rows": window_rows,
        "stream_end": stream_end,
    }
    return Plan(
        row_starts=row_starts.astype(np.int64),
        piece_source=source[order],
        piece_document=chosen.document[owner][order],
        piece_start=start[order],
        piece_length=length[order].astype(np.int32),
        report=report,
    )


def _fill(
    window: np.ndarray,
    owner: np.ndarray,
    length: np.ndarray,
    row_length: int,
    algorithm: str,
    free_rows: int,
):
    """(pieces, placement) of the longest prefix of `window` that ends with a whole document
    and fits `free_rows` rows: the last window of a finite stage."""
    ends = np.flatnonzero(np.r_[owner[window][1:] != owner[window][:-1], True]) + 1
    candidates = np.r_[0, ends]
    low, high = 0, len(candidates) - 1  # candidates[low] fits; find the largest that does
    while low < high:
        middle = (low + high + 1) // 2
        if place(length[window[: candidates[middle]]], row_length, algorithm).num_rows <= free_rows:
            low = middle
        else:
            high = middle - 1
    count = int(candidates[low])
    return count, place(length[window[:count]], row_length, algorithm)
