"""Where a host's rows go on the mesh: the data axes, the rows each process holds, and the
transfer of a local batch into global `jax.Array`s."""

from __future__ import annotations

import functools
import logging
import threading
from collections import Counter
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from xlstm_data.buffers import is_planar
from xlstm_data.errors import ConfigError
from xlstm_data.llm_batch import LLMBatch
from xlstm_data.stages.shift import (
    BATCH_FIELDS,
    COMPACT_FIELDS,
    SHARED_LAYOUT,
    expand_compact,
    layout,
)

LOGGER = logging.getLogger(__name__)

# Mesh axes that split the batch, when the caller does not name them.
DATA_AXIS_NAMES = ("data", "dp", "fsdp", "replica", "batch")


def data_axes(mesh: Mesh, names: Sequence[str] | None = None) -> tuple[str, ...]:
    """The mesh axes the batch dimension is sharded over."""
    if names is not None:
        unknown = [n for n in names if n not in mesh.axis_names]
        if unknown:
            raise ConfigError(
                f"data_axis_names {unknown} are not axes of the mesh {mesh.axis_names}."
            )
        return tuple(names)
    axes = tuple(n for n in mesh.axis_names if n in DATA_AXIS_NAMES)
    if not axes:
        raise ConfigError(
            f"None of the mesh axes {mesh.axis_names} is a known data axis "
            f"{DATA_AXIS_NAMES}; pass data_axis_names=... to make_grain_iterator."
        )
    return axes


def data_parallel_size(mesh: Mesh, axes: Sequence[str]) -> int:
    return int(np.prod([mesh.shape[a] for a in axes]))


def host_rows(sharding: NamedSharding, global_shape: tuple[int, int]) -> tuple[int, int]:
    """[begin, end) of the global rows held by this process's devices."""
    slices = sharding.addressable_devices_indices_map(global_shape).values()
    begins = [s[0].start or 0 for s in slices]
    ends = [global_shape[0] if s[0].stop is None else s[0].stop for s in slices]
    return min(begins), max(ends)


def check_host_rows(
    mesh: Mesh, axes: Sequence[str], global_batch_size: int, host_index: int, host_count: int
) -> None:
    """Raises unless this process's devices hold the rows it loads as host `host_index`."""
    sharding = NamedSharding(mesh, PartitionSpec(tuple(axes)))
    begin, end = host_rows(sharding, (global_batch_size, 1))
    local = global_batch_size // host_count
    expected = (host_index * local, (host_index + 1) * local)
    if (begin, end) != expected:
        raise ConfigError(
            f"Process {jax.process_index()} holds rows [{begin}, {end}) of the global batch "
            f"on the mesh, but as data-loading host {host_index} of {host_count} it would load "
            f"rows [{expected[0]}, {expected[1]}). Order process_indices like the processes' "
            "devices along the mesh's data axes."
        )


class GlobalArrays:
    """Local batch (the fields stacked, [rows, 4 or 6, length]) → `LLMBatch` of global arrays.

    One dispatch of a compiled split that takes the stacked fields (each device's rows one
    contiguous block) and returns the arrays: a single host-to-device copy on accelerators;
    across processes the batch becomes a global array first
    (`jax.make_array_from_process_local_data`). The split compiles in the background
    (`compile_ahead`); until it is ready, batches go over field by field, so the first batch
    never waits for the compiler. On CPU devices in one process, a batch stored field by field
    (`field_planes`, as the packer writes them) needs no split: each field's rows become the
    devices' buffers without a copy (`_host_put`).
    """

    def __init__(
        self,
        mesh: Mesh,
        data_axis_names: tuple[str, ...],
        host_count: int,
        *,
        shift_target: str = "inputs",
        first_input_id: int = 0,
    ):
        self.host_count = host_count
        self.stacked_sharding = NamedSharding(mesh, PartitionSpec(data_axis_names))
        self.field_sharding = NamedSharding(mesh, PartitionSpec(data_axis_names))
        self.expand = functools.partial(
            expand_compact, shift_target=shift_target, first_input_id=first_input_id
        )
        self.split = _split(mesh, data_axis_names, shift_target, first_input_id)
        # One process holds the whole batch: the split can take the host array itself.
        self._local = host_count == 1 and self.stacked_sharding.is_fully_addressable
        on_cpu = all(device.platform == "cpu" for device in mesh.devices.flat)
        self._put = _host_put() if self._local and on_cpu else None
        self._targets: dict[tuple[int, int], tuple] = {}
        self._compiled: set[tuple[int, int, int]] = set()

    def compile_ahead(self, local_shape: tuple[int, int, int]) -> None:
        """Compiles the split for local batches of `local_shape` in a background thread, while
        the pipeline reads its first block (in one process by splitting a batch of zeros)."""
        rows, fields, length = local_shape
        spec = jax.ShapeDtypeStruct(
            (rows * self.host_count, fields, length), np.int32, sharding=self.stacked_sharding
        )

        def compile_split() -> None:
            if self._local:
                # A call, not `lower().compile()`: a host array argument would miss the
                # compiled one's cache entry and compile again (0.1 s) on the first batch.
                self.split(np.zeros(local_shape, np.int32))
            else:
                self.split.lower(spec).compile()
            self._compiled.add(local_shape)

        # Not a daemon: the interpreter must not finalize while XLA compiles (it aborts).
        threading.Thread(target=compile_split, name="compile-batch-split").start()

    def __call__(self, item: tuple[np.ndarray, Counter]) -> tuple[LLMBatch, Counter]:
        fields, counts = item
        rows, fields_count, length = fields.shape
        if self._put is not None and fields_count != COMPACT_FIELDS and is_planar(fields):
            arrays = [self._to_devices(fields[:, i]) for i in range(fields_count)]
        elif not self._compiled:  # the split is still compiling
            columns = [fields[:, i] for i in range(fields_count)]
            if fields_count == COMPACT_FIELDS:
                columns = list(self.expand(*columns))
            arrays = [self._field(column) for column in columns]
        else:
            if self._local:
                # The compiled split takes the host array itself: one dispatch, no separate
                # transfer call (on CPU devices an aligned array is not even copied).
                arrays = self.split(fields)
            else:
                global_shape = (rows * self.host_count, fields_count, length)
                stacked = jax.make_array_from_process_local_data(
                    self.stacked_sharding, fields, global_shape
                )
                arrays = self.split(stacked)
        slots = SHARED_LAYOUT if fields_count == COMPACT_FIELDS else layout(fields)
        return LLMBatch(**dict(zip(BATCH_FIELDS, (arrays[i] for i in slots), strict=True))), counts

    def _to_devices(self, field: np.ndarray) -> jax.Array:
        """One field [rows, length] (contiguous) as a global array: each device's rows are a
        view of it, which CPU devices use in place when aligned (the array keeps it alive)."""
        target = self._targets.get(field.shape)
        if target is None:
            indices = self.field_sharding.addressable_devices_indices_map(field.shape)
            aval = jax.core.ShapedArray(field.shape, field.dtype)
            target = self._targets[field.shape] = (aval, list(indices), list(indices.values()))
        aval, devices, indices = target
        return self._put(aval, self.field_sharding, [field[i] for i in indices], devices)

    def _field(self, local: np.ndarray) -> jax.Array:
        rows, length = local.shape
        return jax.make_array_from_process_local_data(
            self.field_sharding, np.ascontiguousarray(local), (rows * self.host_count, length)
        )


@functools.cache
def _host_put():
    """`put(aval, sharding, shards, devices)`: the C++ core of `jax.device_put` for host
    arrays, or None where this JAX lacks it in that form (checked once, on a tiny array).

    It is private JAX (`xla_client.batched_device_put`), taken for speed: a public
    `jax.device_put` of one field costs about 100 µs of Python per call on a 2-core host, the
    core 10 µs; without it batches go through the compiled split (about 200 µs a batch).
    """
    try:
        from jax._src.lib import xla_client

        put = xla_client.batched_device_put
        device = jax.devices("cpu")[0]
        probe = np.arange(4, dtype=np.int32).reshape(2, 2)
        sharding = jax.sharding.SingleDeviceSharding(device)
        aval = jax.core.ShapedArray(probe.shape, probe.dtype)
        if (np.asarray(put(aval, sharding, [probe], [device])) == probe).all():
            return put
    except Exception:  # any other JAX: the public path works everywhere
        LOGGER.info("No direct host-to-device put in this JAX: batches use the split.")
    return None


@functools.lru_cache(maxsize=32)
def _split(mesh: Mesh, data_axis_names: tuple[str, ...], shift_target: str, first_input_id: int):
    """The compiled split of a stacked batch into its arrays (compact batches: the derived
    inputs and positions too), shared by every iterator on the mesh (a training and an
    evaluation iterator compile it once)."""

    def split(stacked):
        columns = tuple(stacked[:, i] for i in range(stacked.shape[1]))
        if len(columns) == COMPACT_FIELDS:
            return expand_compact(
                *columns, shift_target=shift_target, first_input_id=first_input_id, xp=jnp
            )
        return columns

    sharding = NamedSharding(mesh, PartitionSpec(data_axis_names))
    return jax.jit(split, in_shardings=sharding, out_shardings=sharding)
