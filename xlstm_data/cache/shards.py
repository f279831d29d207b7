"""Cache shards: ArrayRecord files of token arrays, one record per document.

A record holds the document's tokens as raw little-endian values of the cache's dtype. A shard
is written under a temporary name and renamed when whole, so a shard file that exists under
its final name is complete; leftovers of an interrupted write are removed before a run.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

import numpy as np

from xlstm_data.cache.metadata import ShardInfo
from xlstm_data.corpus import write_array_record_shards

T = TypeVar("T")

_PARTIAL_PREFIX = ".partial-shard"


def shard_file(index: int) -> str:
    return f"shard_{index:06d}.arecord"


def record_dtype(dtype: str) -> np.dtype:
    """The on-disk token type: `dtype`, little-endian."""
    return np.dtype(dtype).newbyteorder("<")


def lengths_file(shard: str) -> str:
    """The file next to a shard with its documents' token counts (int64, one per document)."""
    return shard.removesuffix(".arecord") + ".lengths.npy"


def write_shard(folder: Path, index: int, documents: list[np.ndarray]) -> ShardInfo:
    """Writes shard `index` of token arrays (already in the cache's on-disk dtype), and the
    documents' lengths before it, so a shard under its final name always has them."""
    (partial,) = write_array_record_shards(
        [d.tobytes() for d in documents], folder, num_shards=1, prefix=f"{_PARTIAL_PREFIX}{index}"
    )
    lengths = np.fromiter((d.size for d in documents), dtype=np.int64, count=len(documents))
    partial_lengths = folder / f"{_PARTIAL_PREFIX}{index}.lengths.npy"
    np.save(partial_lengths, lengths)
    os.replace(partial_lengths, folder / lengths_file(shard_file(index)))
    os.replace(partial, folder / shard_file(index))
    return ShardInfo(shard_file(index), len(documents), sum(d.size for d in documents))


def remove_partial_shards(folder: Path) -> None:
    for partial in folder.glob(f"{_PARTIAL_PREFIX}*"):
        partial.unlink()


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of `size` items (the last may be shorter)."""
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk
