"""Host arrays placed for speed: JAX's CPU devices take an array without a copy only when it
is contiguous and aligned to 64 bytes (NumPy does not promise that), and a copy between two
arrays whose addresses agree in their low 12 bits, shifted by a few elements, stalls on 4K
aliasing (the CPU takes the loads for reloads of the stores just made)."""

from __future__ import annotations

import math

import numpy as np

PAGE = 4096


def aligned_empty(shape: tuple[int, ...], dtype: np.dtype | type = np.int32) -> np.ndarray:
    """An uninitialised C-contiguous array whose data starts on a page boundary."""
    dtype = np.dtype(dtype)
    size = math.prod(shape) * dtype.itemsize
    raw = np.empty(size + PAGE, np.uint8)
    offset = -raw.ctypes.data % PAGE
    return raw[offset : offset + size].view(dtype).reshape(shape)


def field_planes(rows: int, fields: int, length: int) -> np.ndarray:
    """An uninitialised stacked batch [rows, fields, length] int32 stored field by field:
    each field of any run of rows is one contiguous block (aligned to 64 bytes when a row is a
    multiple of 64 bytes), so CPU devices take every field of a batch sliced from it without a
    copy. Consecutive fields start half a page apart modulo a page, so writing one field
    shifted from the next (inputs from targets) does not stall on 4K aliasing."""
    size = rows * length * np.dtype(np.int32).itemsize
    stride = -(-size // PAGE) * PAGE + PAGE // 2
    planes = aligned_empty((fields, stride // np.dtype(np.int32).itemsize))
    return planes[:, : rows * length].reshape(fields, rows, length).transpose(1, 0, 2)


def is_planar(stacked: np.ndarray) -> bool:
    """Whether every field of a stacked batch [rows, fields, length] is one contiguous block."""
    rows, _, length = stacked.shape
    itemsize = stacked.itemsize
    return stacked.strides[2] == itemsize and (rows == 1 or stacked.strides[0] == length * itemsize)


def concatenate_planes(stacked: list[np.ndarray]) -> np.ndarray:
    """Stacked batches [rows, fields, length] joined along the rows, into `field_planes`."""
    _, fields, length = stacked[0].shape
    out = field_planes(sum(len(s) for s in stacked), fields, length)
    return np.concatenate(stacked, out=out)
