"""Each source of a plan as an endless stream of seeded passes over its documents, read a
range of positions at a time.

Stream position p of a source of n documents is document `permutation_k(p mod n)` of pass
k = p // n (`RandomPermutation` seeded by (seed, source, k); in order without shuffling), so
any range of the stream is computed without the positions before it: the plan is built in
chunks, by as many workers as there are, and its memory does not grow with the corpus.
Empty documents keep their positions but never enter a plan.

A document's *middle* is the tokens of the stream before it plus half its own, counted from
the stream's start (the stage's first position). Plans cut streams where the middle crosses a
token threshold; `Streams.locate` finds that position from the prefix sums of fixed chunks of
the stream (`chunk_sums`), reading one chunk.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from xlstm_data.permutation import RandomPermutation


@dataclasses.dataclass(frozen=True)
class Streams:
    """What a worker needs to read any range of any source's stream (small and picklable: the
    lengths are `.npy` files every worker memory-maps)."""

    lengths_files: tuple[str, ...]
    """Per source: tokens per document, special tokens included (int32 `.npy`)."""
    counts: tuple[int, ...]
    seed: int
    shuffle: bool
    start: tuple[int, ...]
    """Per source: the stream position the plan starts at."""
    chunks: tuple[int, ...]
    """Per source: positions per chunk of `chunk_sums` (at most a pass, so that a chunk
    spans at most two passes)."""

    def documents(self, source: int, begin: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        """(document ids, lengths) at stream positions [begin, end) of `source`."""
        size = self.counts[source]
        positions = np.arange(begin, end, dtype=np.int64)
        within = positions % size
        documents = within
        if self.shuffle:
            documents = np.empty_like(within)
            for number in range(begin // size, (end - 1) // size + 1 if end > begin else 0):
                inside = slice(
                    max(begin, number * size) - begin, min(end, (number + 1) * size) - begin
                )
                documents[inside] = _permutation(size, self.seed, source, number)(within[inside])
        return documents, self._lengths(source)[documents].astype(np.int64)

    def _lengths(self, source: int) -> np.ndarray:
        """The memory-mapped lengths, kept mapped for the plans of the last two builds (a
        long-lived Ray worker holds no more of them open)."""
        mapped = _MAPPED.get(self.lengths_files)
        if mapped is None:
            mapped = [np.load(path, mmap_mode="r") for path in self.lengths_files]
            while len(_MAPPED) >= 2:
                _MAPPED.pop(next(iter(_MAPPED)), None)
            _MAPPED[self.lengths_files] = mapped
        return mapped[source]

    def chunk_positions(self, source: int, chunk: int) -> tuple[int, int]:
        begin = self.start[source] + chunk * self.chunks[source]
        return begin, begin + self.chunks[source]

    def locate(self, source: int, threshold: float, chunk: int, before: int) -> tuple[int, int]:
        """(position, tokens before it) of the first document of `source` whose middle is at
        least `threshold`, given that chunk `chunk` (with `before` tokens before it) is the last
        one starting below the threshold (or chunk 0): documents before it end below the
        threshold, those after it start at or above it."""
        begin, end = self.chunk_positions(source, chunk)
        _, lengths = self.documents(source, begin, end)
        ends = before + np.cumsum(lengths)
        found = int(np.searchsorted(ends - lengths / 2, threshold, side="left"))
        return begin + found, int(ends[found - 1]) if found else before


def chunk_sums(task: tuple[Streams, int, int, int]) -> np.ndarray:
    """Tokens in each of `count` chunks of `source`'s stream from chunk `first` on: a
    worker's task (streams, source, first, count)."""
    streams, source, first, count = task
    begin, _ = streams.chunk_positions(source, first)
    _, lengths = streams.documents(source, begin, begin + count * streams.chunks[source])
    return lengths.reshape(count, streams.chunks[source]).sum(axis=1)


_MAPPED: dict[tuple[str, ...], list[np.ndarray]] = {}


def release_lengths() -> None:
    """Unmaps the lengths files of this process (the driver's, once a plan is built)."""
    _MAPPED.clear()


@functools.lru_cache(maxsize=64)
def _permutation(size: int, seed: int, source: int, number: int) -> RandomPermutation:
    return RandomPermutation(size, (seed, source, number))
