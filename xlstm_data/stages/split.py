"""Documents longer than a row: split into row-length pieces (no token lost), or truncated when
asked (the cut tokens counted). The rule is written once, on lengths, for the online stages and
for global plans."""

from __future__ import annotations

import dataclasses

import numpy as np

from xlstm_data.documents import Documents, positions_within


@dataclasses.dataclass
class Pieces:
    """Piece i is tokens [start[i], start[i] + length[i]) of document owner[i]."""

    owner: np.ndarray
    start: np.ndarray
    length: np.ndarray


def split_lengths(lengths: np.ndarray, max_length: int) -> Pieces:
    """Every document becomes ceil(n / max_length) consecutive pieces of at most `max_length`
    tokens (an empty document one empty piece)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    pieces = np.maximum(1, -(-lengths // max_length))
    owner = np.repeat(np.arange(len(lengths)), pieces)
    first = np.cumsum(pieces) - pieces
    start = (np.arange(len(owner)) - np.repeat(first, pieces)) * max_length
    return Pieces(owner, start, np.minimum(max_length, lengths[owner] - start))


def split_documents(documents: Documents, max_length: int) -> Documents:
    """The documents as pieces of at most `max_length` tokens, same tokens in the same order.
    Empty documents stay (as one empty piece) so that padding records keep their place."""
    lengths = documents.lengths
    if not len(lengths) or lengths.max() <= max_length:
        return documents
    documents.counts["split_documents"] += int((lengths > max_length).sum())
    pieces = split_lengths(lengths, max_length)
    return Documents(documents.tokens, pieces.length, documents.counts)


def truncate_documents(documents: Documents, max_length: int) -> Documents:
    """Every document cut to its first `max_length` tokens; the cut tokens are counted."""
    lengths = documents.lengths
    if not len(lengths) or lengths.max() <= max_length:
        return documents
    kept = np.minimum(lengths, max_length)
    keep_mask = positions_within(lengths) < np.repeat(kept, lengths)
    documents.counts["truncated_documents"] += int((lengths > max_length).sum())
    documents.counts["truncated_tokens"] += int((lengths - kept).sum())
    return Documents(documents.tokens[keep_mask], kept, documents.counts)


class SplitDocuments:
    """Grain map: every document of a block in pieces of at most `max_length` tokens."""

    def __init__(self, max_length: int):
        self.max_length = max_length

    def __call__(self, documents: Documents) -> Documents:
        return split_documents(documents, self.max_length)


class TruncateDocuments:
    """Grain map: every document of a block cut to `max_length` tokens."""

    def __init__(self, max_length: int):
        self.max_length = max_length

    def __call__(self, documents: Documents) -> Documents:
        return truncate_documents(documents, self.max_length)
