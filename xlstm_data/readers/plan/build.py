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


def choose_documents(
    lengths: Sequence[np.ndarray],
    weights: Sequence[float],
    *,
    seed: int,
    plan_tokens: int | None,
    shuffle: bool = True,
) -> tuple[ChosenDocuments, dict]:
    """Steps 1 and 2: each source's share of the epoch, interleaved by token position."""
    weights = np.asarray(weights, dtype=np.float64) / np.sum(weights)
    totals = np.array([int(np.asarray(n).sum()) for n in lengths], dtype=np.float64)
    if (totals == 0).any():
        empty = int(np.flatnonzero(totals == 0)[0])
        raise DataError(f"Source {empty} of the plan holds no tokens.")
    epoch_tokens = plan_tokens or float((totals / weights).max())
    targets = weights * epoch_tokens
    sources, documents, keys = [], [], []
    for index, (source_lengths, target) in enumerate(zip(lengths, targets, strict=True)):
        chosen = _passes(
            np.asarray(source_lengths, np.int64), target, seed=(seed, index) if shuffle else None
        )
        chosen_lengths = np.asarray(source_lengths, np.int64)[chosen]
        before = np.cumsum(chosen_lengths) - chosen_lengths
        keys.append((before + chosen_lengths / 2) / target)
        documents.append(chosen)
        sources.append(np.full(len(chosen), index, dtype=np.int16))
    order = np.argsort(np.concatenate(keys), kind="stable")
    source = np.concatenate(sources)[order]
    document = np.concatenate(documents)[order]
    length = np.concatenate([np.asarray(n, np.int64) for n in lengths])  # indexed below
    offsets = np.cumsum([0, *[len(n) for n in lengths[:-1]]])
    length = length[offsets[source] + document]
    realised = np.bincount(source, weights=length, minlength=len(lengths)) / length.sum()
    report = {
        "epoch_tokens": int(length.sum()),
        "documents": len(document),
        "source_tokens": totals.astype(np.int64).tolist(),
        "weights": np.round(weights, 6).tolist(),
        "realised_token_share": np.round(realised, 6).tolist(),
        "largest_share_deviation": float(np.abs(realised - weights).max()),
        "epochs_per_source": np.round(targets / totals, 4).tolist(),
    }
    return ChosenDocuments(source, document, length), report


def _passes(lengths: np.ndarray, target: float, *, seed: tuple[int, int] | None) -> np.ndarray:
    """Documents (non-empty ones) of whole passes, each in a seeded order (in order when `seed`
    is None), plus the start of one more, reaching `target` tokens (a document counts when its
    middle lies within the target)."""
    candidates = np.flatnonzero(lengths > 0)
    total = lengths[candidates].sum()
    full = int(target // total)

    def one_pass(number: int) -> np.ndarray:
        if seed is None:
            return candidates
        return np.random.default_rng([*seed, number]).permutation(candidates)

    passes = [one_pass(p) for p in range(full)]
    last = one_pass(full)
    cumulative = np.cumsum(lengths[last]) - lengths[last] / 2
    passes.append(last[: int(np.searchsorted(cumulative, target - full * total))])
    return np.concatenate(passes)


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
) -> Plan:
    """The plan of one epoch over sources with these document lengths (special tokens
    included), mixed by `weights` in tokens; sources with `truncate[s]` keep only the first
    row's worth of each document."""
    chosen, report = choose_documents(
        lengths, weights, seed=seed, plan_tokens=plan_tokens, shuffle=shuffle
    )
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
    rows = np.empty(len(length), dtype=np.int64)
    offsets = np.empty(len(length), dtype=np.int64)
    num_rows = 0
    windows = np.split(np.arange(len(length)), bounds)
    for window in tqdm(windows, desc="packing plan", unit="window", disable=not progress):
        placement = place(length[window], row_length, algorithm)
        rows[window] = placement.row + num_rows
        offsets[window] = placement.offset
        num_rows += placement.num_rows
    order = np.lexsort((offsets, rows))
    row_starts = np.searchsorted(rows[order], np.arange(num_rows + 1))
    tokens = int(length.sum())
    report |= {
        "rows": num_rows,
        "row_length": row_length,
        "pieces": len(length),
        "split_documents": int((np.bincount(owner) > 1).sum()),
        "truncated_tokens": truncated_tokens,
        "packing": algorithm,
        "padding_fraction": round(1 - tokens / (num_rows * row_length), 6),
        "window_rows": window_rows,
        "seed": seed,
    }
    return Plan(
        row_starts=row_starts.astype(np.int64),
        piece_source=chosen.source[owner][order],
        piece_document=chosen.document[owner][order],
        piece_start=start[order],
        piece_length=length[order].astype(np.int32),
        report=report,
    )
