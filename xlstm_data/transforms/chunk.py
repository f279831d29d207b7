"""Splitting (or, if asked, truncating) documents longer than a row."""

from __future__ import annotations

import numpy as np

from xlstm_data.documents import Documents, positions_within


def chunk_documents(documents: Documents, max_length: int) -> Documents:
    """Every document longer than `max_length` becomes ceil(n / max_length) consecutive pieces.

    No token is lost: the pieces hold the same tokens in the same order. Empty documents stay
    (as one empty piece) so that padding records keep their place.
    """
    lengths = documents.lengths
    if not len(lengths) or lengths.max() <= max_length:
        return documents
    pieces = np.maximum(1, -(-lengths // max_length))
    first_piece = np.cumsum(pieces) - pieces
    piece_lengths = np.full(int(pieces.sum()), max_length, dtype=np.int64)
    last_piece = first_piece + pieces - 1
    piece_lengths[last_piece] = lengths - (pieces - 1) * max_length
    documents.counts["split_documents"] += int((pieces > 1).sum())
    return Documents(documents.tokens, piece_lengths, documents.counts)


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


class Chunk:
    """Grain map: fits every document of a block into rows of `max_length` tokens."""

    def __init__(self, max_length: int, truncate: bool):
        self.max_length = max_length
        self.truncate = truncate

    def __call__(self, documents: Documents) -> Documents:
        if self.truncate:
            return truncate_documents(documents, self.max_length)
        return chunk_documents(documents, self.max_length)
