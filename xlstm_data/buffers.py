"""Host arrays placed for speed: JAX's CPU devices take an array without a copy only when it
is aligned to 64 bytes (NumPy does not promise that), and a copy between two arrays whose
addresses agree in their low 12 bits, shifted by a few elements, stalls on 4K aliasing (the
CPU takes the loads for reloads of the stores just made)."""

from __future__ import annotations

import math

import numpy as np

ALIGNMENT = 64


PAGE = 4096


def aligned_empty(
    shape: tuple[int, ...],
    dtype: np.dtype | type = np.int32,
    *,
    away_from: np.ndarray | None = None,
) -> np.ndarray:
    """An uninitialised C-contiguous array whose data starts on a 64-byte boundary, and half a
    page away from where `away_from`'s data starts (modulo a page), if given."""
    dtype = np.dtype(dtype)
    size = math.prod(shape) * dtype.itemsize
    raw = np.empty(size + PAGE, np.uint8)
    if away_from is None:
        target = 0
    else:
        target = (away_from.ctypes.data + PAGE // 2) % PAGE // ALIGNMENT * ALIGNMENT
    offset = (target - raw.ctypes.data) % PAGE
    return raw[offset : offset + size].view(dtype).reshape(shape)


def aligned_concatenate(arrays: list[np.ndarray]) -> np.ndarray:
    """`np.concatenate(arrays)` (along the first axis) into an aligned array."""
    rows = sum(len(a) for a in arrays)
    out = aligned_empty((rows, *arrays[0].shape[1:]), arrays[0].dtype)
    return np.concatenate(arrays, out=out)
