"""Where the lines of a text file are, found with numpy over the bytes (no Python loop per line)."""

from __future__ import annotations

import numpy as np

# Scanned in pieces so a multi-gigabyte file never needs a same-sized temporary mask.
_PIECE_BYTES = 64 << 20


def line_spans(content: np.ndarray, piece_bytes: int = _PIECE_BYTES) -> np.ndarray:
    """(n, 2) int64 [start, end) byte offsets of the non-empty lines of `content`.

    Lines end at b"\\n" (not included); empty lines are not documents, so they are left out.
    """
    newlines = [
        np.flatnonzero(content[start : start + piece_bytes] == ord("\n")) + start
        for start in range(0, len(content), piece_bytes)
    ]
    ends = np.concatenate([*newlines, [len(content)]]).astype(np.int64)
    starts = np.concatenate([[0], ends[:-1] + 1]).astype(np.int64)
    keep = ends > starts
    return np.stack([starts[keep], ends[keep]], axis=1)


def spans_fit(spans: np.ndarray, content: np.ndarray) -> bool:
    """Whether spans read back from the cache are the line spans of `content`: shape, order,
    and a line break (or the file's edge) on both sides of every line."""
    if spans.ndim != 2 or spans.shape[1] != 2 or spans.dtype != np.int64:
        return False
    if not len(spans):
        return not len(line_spans(content))
    starts, ends = spans[:, 0], spans[:, 1]
    if not (
        starts[0] >= 0
        and ends[-1] <= len(content)
        and np.all(ends > starts)
        and np.all(starts[1:] > ends[:-1])
    ):
        return False
    newline = ord("\n")
    before = content[starts[starts > 0] - 1]
    after = content[ends[ends < len(content)]]
    return bool(np.all(before == newline) and np.all(after == newline))
