"""A seeded permutation of [0, n) that is computed per index, never materialised.

`RandomPermutation(n, seed)(positions)` maps a whole array of positions at once. Random access
is what makes resuming O(1): the record at any step is found without replaying the epoch, and
memory stays constant however large n is. It is a 4-round Feistel network on the smallest even
number of bits covering n, with cycle walking to stay inside [0, n).
"""

from __future__ import annotations

import numpy as np

_ROUNDS = 4
_BLOCK = 1 << 15
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)


def _mix(values: np.ndarray, key: np.uint64) -> np.ndarray:
    """splitmix64 finaliser of (values ^ key): a fast, well-spread round function (in place
    on one new array: it runs over every position of a plan twice)."""
    z = values ^ key
    z ^= z >> np.uint64(30)
    z *= _MIX_1
    z ^= z >> np.uint64(27)
    z *= _MIX_2
    z ^= z >> np.uint64(31)
    return z


class RandomPermutation:
    """Bijection of [0, size) determined by `seed` (any sequence of ints, e.g. (seed, epoch))."""

    def __init__(self, size: int, seed: int | tuple[int, ...]):
        if size < 1:
            raise ValueError(f"Cannot permute an empty range (size={size}).")
        self.size = size
        half_bits = max(1, (int(size - 1).bit_length() + 1) // 2)
        self._half_bits = np.uint64(half_bits)
        self._half_mask = np.uint64((1 << half_bits) - 1)
        entropy = [seed] if isinstance(seed, int) else list(seed)
        self._keys = np.random.SeedSequence(entropy).generate_state(_ROUNDS, dtype=np.uint64)

    def _feistel(self, x: np.ndarray) -> np.ndarray:
        left = x >> self._half_bits
        right = x & self._half_mask
        for key in self._keys:
            mixed = _mix(right, key)
            mixed &= self._half_mask
            mixed ^= left
            left, right = right, mixed
        left <<= self._half_bits
        left |= right
        return left

    def __call__(self, positions: np.ndarray | int) -> np.ndarray:
        positions = np.asarray(positions, dtype=np.int64)
        if positions.size and (positions.min() < 0 or positions.max() >= self.size):
            raise IndexError(f"positions must lie in [0, {self.size}).")
        values = positions.astype(np.uint64).reshape(-1)
        with np.errstate(over="ignore"):
            for begin in range(0, len(values), _BLOCK):  # blocks that stay in the CPU's cache
                block = self._feistel(values[begin : begin + _BLOCK])
                # Cycle walking: re-apply the bijection of the larger domain until in [0, size).
                walking = np.flatnonzero(block >= np.uint64(self.size))
                while len(walking):
                    moved = self._feistel(block[walking])
                    block[walking] = moved
                    walking = walking[moved >= np.uint64(self.size)]
                values[begin : begin + _BLOCK] = block
        return values.astype(np.int64).reshape(positions.shape)


class ChunkedPermutation:
    """A `RandomPermutation` evaluated a chunk of consecutive positions at a time, with the
    last chunks kept: callers that walk positions in order (epochs, plan rows) pay the
    vectorised cost once per chunk instead of once per small request."""

    def __init__(self, size: int, seed: int | tuple[int, ...], chunk: int = 1 << 15):
        self.permutation = RandomPermutation(size, seed)
        self.chunk = chunk
        self._cache: dict[int, np.ndarray] = {}

    def _values(self, index: int) -> np.ndarray:
        if index not in self._cache:
            if len(self._cache) >= 2:  # the current chunk and the next suffice
                self._cache.pop(next(iter(self._cache)))
            start = index * self.chunk
            stop = min(self.permutation.size, start + self.chunk)
            self._cache[index] = self.permutation(np.arange(start, stop))
        return self._cache[index]

    def __call__(self, positions: np.ndarray) -> np.ndarray:
        positions = np.asarray(positions, dtype=np.int64)
        chunks = positions // self.chunk
        out = np.empty(positions.shape, dtype=np.int64)
        for index in np.unique(chunks).tolist():
            chosen = chunks == index
            out[chosen] = self._values(index)[positions[chosen] - index * self.chunk]
        return out


class EpochPermutations:
    """A fresh `ChunkedPermutation` of [0, size) per epoch, seeded by (seed, epoch); the current
    epoch's is kept, since readers walk epochs one after the other."""

    def __init__(self, size: int, seed: int):
        self.size = size
        self.seed = seed
        self._current: tuple[int, ChunkedPermutation] | None = None

    def __call__(self, epoch: int, positions: np.ndarray) -> np.ndarray:
        if self._current is None or self._current[0] != epoch:
            self._current = (epoch, ChunkedPermutation(self.size, (self.seed, epoch)))
        return self._current[1](positions)
