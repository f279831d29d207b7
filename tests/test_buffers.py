"""Host arrays placed for the devices and for fast copies."""

import numpy as np
import pytest

from xlstm_data.buffers import PAGE, aligned_empty, concatenate_planes, field_planes, is_planar


@pytest.mark.parametrize("shape", [(1,), (3, 5), (7, 4, 2048)])
def test_aligned_arrays_start_on_64_bytes(shape):
    array = aligned_empty(shape)
    assert array.shape == shape and array.dtype == np.int32 and array.flags.c_contiguous
    assert array.ctypes.data % 64 == 0


@pytest.mark.parametrize(("rows", "fields", "length"), [(1, 4, 16), (16, 4, 2048), (5, 6, 33)])
def test_each_field_of_any_rows_of_planes_is_one_aligned_block(rows, fields, length):
    planes = field_planes(rows, fields, length)
    assert planes.shape == (rows, fields, length) and planes.dtype == np.int32
    assert is_planar(planes) and is_planar(planes[rows // 2 :])
    for field in range(fields):
        for begin in range(rows):
            block = planes[begin:, field]
            assert block.flags.c_contiguous
            if length % 16 == 0:
                assert block.ctypes.data % 64 == 0


def test_consecutive_fields_start_half_a_page_apart():
    # The inputs are the targets shifted by one: blocks a multiple of 4 KiB apart would stall.
    for rows in (1, 16, 128):
        planes = field_planes(rows, 4, 2048)
        for field in range(3):
            gap = planes[:, field + 1].ctypes.data - planes[:, field].ctypes.data
            assert gap % PAGE == PAGE // 2


def test_a_row_major_batch_is_not_planar():
    assert not is_planar(np.zeros((3, 4, 8), np.int32))
    assert is_planar(np.zeros((1, 4, 8), np.int32))


def test_concatenated_planes_equal_numpy():
    parts = [np.arange(i * 24, (i + 1) * 24, dtype=np.int32).reshape(3, 2, 4) for i in range(3)]
    joined = concatenate_planes(parts)
    assert joined.ctypes.data % 64 == 0 and is_planar(joined)
    assert (joined == np.concatenate(parts)).all()
