"""Local batches → global arrays: compact batches (targets and segmentation only, the rest
derived on the devices) give exactly the fields the host computes, before and after the split
is compiled; on CPU devices a batch stored field by field is used in place."""

from collections import Counter

import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec

from xlstm_data import GrainArrayRecordsDataConfig, MemmapDataConfig
from xlstm_data.buffers import field_planes
from xlstm_data.config.settings import loader_settings
from xlstm_data.loader import MultiHostDataLoadIterator
from xlstm_data.readers.inputs import open_inputs
from xlstm_data.readers.online import OnlineReader
from xlstm_data.readers.plan.reader import PlanReader
from xlstm_data.schedule import BatchSchedule
from xlstm_data.sharding import GlobalArrays
from xlstm_data.stages.shift import BATCH_FIELDS, SHARED_LAYOUT

MESH = jax.make_mesh((8,), ("data",))


def batches(configs, reader_class, compact: bool, steps: int) -> list[list[np.ndarray]]:
    settings = loader_settings(configs)
    schedule = BatchSchedule(settings.global_batch_size, None, host_count=1, data_parallel_size=8)
    reader = reader_class(
        open_inputs(configs), [1.0] * len(configs), settings, schedule=schedule,
        host_index=0, host_count=1, compact=compact,
    )  # fmt: skip
    assert reader.compact == compact
    with MultiHostDataLoadIterator(reader, MESH, data_axis_names=("data",)) as iterator:
        return [[np.asarray(a) for a in vars(next(iterator)).values()] for _ in range(steps)]


@pytest.mark.parametrize(
    ("packing", "shift"), [("best_fit", "inputs"), ("none", "inputs"), ("best_fit", "none")]
)
def test_compact_batches_equal_full_ones_online(token_data, packing, shift):
    config = GrainArrayRecordsDataConfig(
        data_path=token_data[0], global_batch_size=16, max_target_length=32, tokenize_data=False,
        eod_token_id=5, packing=packing, shift_target=shift, shuffle_data=True, worker_count=0,
    )  # fmt: skip
    full, compact = (batches([config], OnlineReader, c, steps=12) for c in (False, True))
    for a, b in zip(full, compact, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)


def test_compact_batches_equal_full_ones_with_a_plan(tmp_path):
    rng = np.random.default_rng(0)
    documents = [np.r_[rng.integers(10, 900, int(n)), 2] for n in rng.integers(1, 200, 300)]
    np.save(tmp_path / "tokens.npy", np.concatenate(documents).astype(np.uint16))
    config = MemmapDataConfig(
        data_files=str(tmp_path / "tokens.npy"), records="documents", eod_token_id=2,
        global_batch_size=8, max_target_length=64, shift_target="inputs", plan="global",
        plan_dir=str(tmp_path / "plans"), shuffle_data=True, worker_count=0,
    )  # fmt: skip
    full, compact = (batches([config], PlanReader, c, steps=12) for c in (False, True))
    for a, b in zip(full, compact, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize(("shape", "axes"), [((8,), ("data",)), ((4, 2), ("data", "model"))])
def test_a_batch_stored_field_by_field_reaches_cpu_devices_in_place(shape, axes):
    # The packer's batches (field_planes) become the devices' buffers without a copy; a
    # row-major batch takes the split; both give each field's rows to the devices that hold
    # them (replicated over a model axis).
    mesh = jax.make_mesh(shape, axes)
    to_global = GlobalArrays(mesh, ("data",), host_count=1)
    stacked = field_planes(16, 4, 32)
    stacked[...] = np.random.default_rng(0).integers(0, 1000, stacked.shape)
    planar, _ = to_global((stacked, Counter()))
    row_major, _ = to_global((np.ascontiguousarray(stacked), Counter()))
    for name, slot in zip(BATCH_FIELDS, SHARED_LAYOUT, strict=True):
        for batch in (planar, row_major):
            array = getattr(batch, name)
            assert array.sharding.spec == PartitionSpec("data")
            np.testing.assert_array_equal(np.asarray(array), stacked[:, slot])
        rows_per_device = 16 // shape[0]
        for shard in getattr(planar, name).addressable_shards:
            begin = shard.index[0].start or 0
            assert shard.data.unsafe_buffer_pointer() == stacked[begin:, slot].ctypes.data
            assert begin % rows_per_device == 0
