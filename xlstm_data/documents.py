"""A block of documents as two flat arrays, the unit every transform works on.

Moving whole blocks instead of single documents keeps per-document Python overhead off the hot
path: a transform touches a block with a handful of numpy calls, whatever its size.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import Counter

import numpy as np

TOKEN_DTYPE = np.int32
# Token ids are below this bound for every real vocabulary; raw text read as int32 is not
# (four ASCII bytes make a number above 5 * 10^8). The bound checked when none is known.
MAX_PLAUSIBLE_VOCAB = 1 << 24


def as_token_ids(values: np.ndarray) -> np.ndarray:
    """Integer ids as TOKEN_DTYPE; ids beyond its range become -1 or its maximum (outside
    every vocabulary, so the vocabulary check names them) instead of wrapping into valid ids
    (2^32 + 5 would become 5)."""
    if np.can_cast(values.dtype, TOKEN_DTYPE):
        return values.astype(TOKEN_DTYPE, copy=False)
    return np.clip(values, -1, np.iinfo(TOKEN_DTYPE).max).astype(TOKEN_DTYPE)


@dataclasses.dataclass
class Documents:
    """Ragged documents: `tokens` holds them back to back, `lengths[i]` is the size of document i.

    `counts` travels with the block so that what a stage drops or pads (empty records,
    truncated tokens, padding records) reaches the iterator and the logs, whatever the number
    of worker processes.
    """

    tokens: np.ndarray
    lengths: np.ndarray
    counts: Counter = dataclasses.field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.tokens = np.asarray(self.tokens, dtype=TOKEN_DTYPE)
        self.lengths = np.asarray(self.lengths, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.lengths)

    @functools.cached_property
    def starts(self) -> np.ndarray:
        """Offset of each document in `tokens` (blocks are not modified once built)."""
        return np.cumsum(self.lengths) - self.lengths

    def take(self, begin: int, end: int) -> Documents:
        """Documents [begin, end) as a new block (counts stay with the original)."""
        starts = self.starts
        token_begin = int(starts[begin]) if begin < len(self) else len(self.tokens)
        token_end = int(starts[end]) if end < len(self) else len(self.tokens)
        return Documents(self.tokens[token_begin:token_end], self.lengths[begin:end])

    @staticmethod
    def from_lists(
        documents: list[list[int]] | list[np.ndarray],
        *,
        prefix: tuple[int, ...] = (),
        suffix: tuple[int, ...] = (),
    ) -> Documents:
        """One block from per-document token lists or arrays, in a single copy.

        `prefix` (BOS) and `suffix` (EOS/EOD) wrap every non-empty document; empty documents
        stay empty, so a record without text does not become a lone EOD.
        """
        raw = np.fromiter((len(d) for d in documents), dtype=np.int64, count=len(documents))
        lengths = np.where(raw > 0, raw + len(prefix) + len(suffix), 0)
        if not documents or not raw.any():
            return Documents(np.zeros(0, TOKEN_DTYPE), lengths)
        if isinstance(documents[0], np.ndarray):
            before, after = np.array(prefix, TOKEN_DTYPE), np.array(suffix, TOKEN_DTYPE)
            pieces = [
                piece
                for document in documents
                if len(document)
                for piece in (before, document, after)
            ]
            return Documents(np.concatenate(pieces).astype(TOKEN_DTYPE, copy=False), lengths)
        flat = np.fromiter(
            (t for d in documents if d for part in (prefix, d, suffix) for t in part),
            dtype=TOKEN_DTYPE,
            count=int(lengths.sum()),
        )
        return Documents(flat, lengths)

    @staticmethod
    def concatenate(blocks: list[Documents]) -> Documents:
        """One block of the documents of `blocks` (the tokens of a single block are not
        copied) with their counts summed."""
        counts: Counter = Counter()
        for block in blocks:
            counts.update(block.counts)
        if not blocks:
            return Documents(np.zeros(0, TOKEN_DTYPE), np.zeros(0, np.int64), counts)
        if len(blocks) == 1:
            return Documents(blocks[0].tokens, blocks[0].lengths, counts)
        return Documents(
            np.concatenate([b.tokens for b in blocks]),
            np.concatenate([b.lengths for b in blocks]),
            counts,
        )


def ranges_index(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of `arange(s, s + n)` for each (s, n), computed without a Python loop."""
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    nonzero = lengths > 0
    starts = np.asarray(starts, dtype=np.int64)[nonzero]
    lengths = lengths[nonzero]
    # Each run continues from the previous one except at run boundaries, where it jumps.
    steps = np.ones(total, dtype=np.int64)
    run_begins = np.cumsum(lengths) - lengths
    steps[0] = starts[0]
    steps[run_begins[1:]] = starts[1:] - (starts[:-1] + lengths[:-1] - 1)
    return np.cumsum(steps)


def positions_within(lengths: np.ndarray) -> np.ndarray:
    """0, 1, …, n-1 for each length n, concatenated."""
    lengths = np.asarray(lengths, dtype=np.int64)
    return ranges_index(np.zeros_like(lengths), lengths)


def outside_vocabulary(documents: Documents, bound: int) -> np.ndarray:
    """Indices of the documents that hold an id outside [0, bound)."""
    tokens = documents.tokens
    # One pass: a negative id viewed as unsigned is above every bound.
    if not tokens.size or int(tokens.view(f"u{tokens.itemsize}").max()) < bound:
        return np.zeros(0, dtype=np.int64)
    outside = (tokens < 0) | (tokens >= bound)
    document_of_token = np.repeat(np.arange(len(documents)), documents.lengths)
    return np.unique(document_of_token[outside])
