"""Host arrays placed for the devices and for fast copies."""

import numpy as np
import pytest

from xlstm_data.buffers import PAGE, aligned_concatenate, aligned_empty


@pytest.mark.parametrize("shape", [(1,), (3, 5), (7, 4, 2048)])
def test_aligned_arrays_start_on_64_bytes(shape):
    array = aligned_empty(shape)
    assert array.shape == shape and array.dtype == np.int32 and array.flags.c_contiguous
    assert array.ctypes.data % 64 == 0


def test_an_array_away_from_another_starts_half_a_page_off_it():
    for _ in range(20):
        other = aligned_empty((16, 4, 2048))
        array = aligned_empty((16, 2048), away_from=other)
        assert (array.ctypes.data - other.ctypes.data) % PAGE == PAGE // 2
        assert array.ctypes.data % 64 == 0


def test_aligned_concatenate_equals_numpy():
    parts = [np.arange(i * 6, (i + 1) * 6, dtype=np.int32).reshape(3, 2) for i in range(3)]
    joined = aligned_concatenate(parts)
    assert joined.ctypes.data % 64 == 0
    assert (joined == np.concatenate(parts)).all()
