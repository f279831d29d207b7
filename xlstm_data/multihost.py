"""Local batches → global `jax.Array`s on the mesh, with equal step counts on every host."""

from __future__ import annotations

import logging
import math
import weakref
from collections import Counter
from collections.abc import Sequence
from typing import Any

import grain
import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from xlstm_data.batch import LLMBatch
from xlstm_data.rampup import BatchSchedule
from xlstm_data.setup_fingerprint import STATE_FORMAT_VERSION, setup_differences
from xlstm_data.transforms.shift import layout

LOGGER = logging.getLogger(__name__)


def _close(handle: list[grain.DatasetIterator | None]) -> None:
    iterator, handle[0] = handle[0], None
    close = getattr(iterator, "close", None)
    if close is not None:
        close()


# Mesh axes that split the batch, when the caller does not name them.
DATA_AXIS_NAMES = ("data", "dp", "fsdp", "replica", "batch")


def data_axes(mesh: Mesh, names: Sequence[str] | None = None) -> tuple[str, ...]:
    """The mesh axes the batch dimension is sharded over."""
    if names is not None:
        unknown = [n for n in names if n not in mesh.axis_names]
        if unknown:
            raise ValueError(
                f"data_axis_names {unknown} are not axes of the mesh {mesh.axis_names}."
            )
        return tuple(names)
    axes = tuple(n for n in mesh.axis_names if n in DATA_AXIS_NAMES)
    if not axes:
        raise ValueError(
            f"None of the mesh axes {mesh.axis_names} is a known data axis "
            f"{DATA_AXIS_NAMES}; pass data_axis_names=... to make_grain_iterator."
        )
    return axes


def host_rows(sharding: NamedSharding, global_shape: tuple[int, int]) -> tuple[int, int]:
    """[begin, end) of the global rows held by this process's devices."""
    slices = sharding.addressable_devices_indices_map(global_shape).values()
    begins = [s[0].start or 0 for s in slices]
    ends = [global_shape[0] if s[0].stop is None else s[0].stop for s in slices]
    return min(begins), max(ends)


class GlobalArrays:
    """Local batch (the fields stacked, [4 or 6, rows, length]) → `LLMBatch` of global arrays.

    One transfer of the stacked fields, then one compiled split into the arrays: a third of the
    cost of separate transfers, and a single host-to-device copy on accelerators.
    """

    def __init__(self, mesh: Mesh, data_axis_names: tuple[str, ...], host_count: int):
        self.host_count = host_count
        self.stacked_sharding = NamedSharding(mesh, PartitionSpec(None, data_axis_names))
        self.split = jax.jit(
            lambda stacked: tuple(stacked[i] for i in range(stacked.shape[0])),
            out_shardings=NamedSharding(mesh, PartitionSpec(data_axis_names)),
        )

    def __call__(self, item: tuple[np.ndarray, Counter]) -> tuple[LLMBatch, Counter]:
        fields, counts = item
        fields_count, rows, length = fields.shape
        global_shape = (fields_count, rows * self.host_count, length)
        stacked = jax.make_array_from_process_local_data(
            self.stacked_sharding, fields, global_shape
        )
        arrays = self.split(stacked)
        return LLMBatch(*(arrays[i] for i in layout(fields))), counts


class MultiHostDataLoadIterator:
    """Iterator of `LLMBatch`es of global `jax.Array`s, sharded over the mesh's data axes.

    Each host feeds the rows of its devices from its own Grain pipeline. When a finite epoch
    can give hosts different numbers of batches (packing, chunking), the hosts agree on every
    step: with `drop_remainder=False` a host that has run out sends fully masked batches until
    all have; with `drop_remainder=True` all stop when the first one runs out.
    """

    state_is_host_independent = False
    """Whether a state saved on one host (count) restores on any: true only for global plans."""

    def __init__(
        self,
        dataset: grain.IterDataset,
        global_mesh: Mesh,
        *,
        schedule: BatchSchedule,
        max_target_length: int,
        data_axis_names: Sequence[str],
        host_index: int,
        host_count: int,
        sync_end: bool,
        drop_remainder: bool,
        steps_per_epoch: int | None,
        setup: dict[str, Any],
        stacked_fields: int,
        device_prefetch: int = 0,
        reset_after_epoch: bool = False,
        first_step: int = 0,
    ):
        self.dataset = dataset
        self.global_mesh = global_mesh
        self.schedule = schedule
        self.max_target_length = max_target_length
        self.sharding = NamedSharding(global_mesh, PartitionSpec(tuple(data_axis_names)))
        self._to_global = GlobalArrays(global_mesh, tuple(data_axis_names), host_count)
        self.host_index = host_index
        self.host_count = host_count
        self.sync_end = sync_end
        self.drop_remainder = drop_remainder
        self.steps_per_epoch = steps_per_epoch
        self.reset_after_epoch = reset_after_epoch
        self.setup = setup
        self.stacked_fields = stacked_fields
        self.device_prefetch = device_prefetch
        self.counts: Counter = Counter()
        """What the pipeline has read, packed, padded and dropped on this host so far."""
        self.first_step = first_step
        self.step = first_step
        self._check_host_rows()
        self._open()

    def _open(self) -> None:
        transfers = grain.experimental.ThreadPrefetchIterDataset(
            self.dataset.map(self._to_global), prefetch_buffer_size=self.device_prefetch
        )
        self._handle = [iter(transfers)]
        # Close prefetch threads and workers at exit, before the interpreter tears down the
        # modules their clean-up needs (Grain's iterators fail in __del__ after that).
        self._finalizer = weakref.finalize(self, _close, self._handle)

    @property
    def _iterator(self) -> grain.DatasetIterator:
        if self._handle[0] is None:
            raise RuntimeError("The iterator is closed.")
        return self._handle[0]

    def _check_host_rows(self) -> None:
        shape = (self.schedule.global_batch_size, self.max_target_length)
        begin, end = host_rows(self.sharding, shape)
        local = self.schedule.global_batch_size // self.host_count
        expected = (self.host_index * local, (self.host_index + 1) * local)
        if (begin, end) != expected:
            raise ValueError(
                f"Process {jax.process_index()} holds rows [{begin}, {end}) of the global batch "
                f"on the mesh, but as data-loading host {self.host_index} of {self.host_count} "
                f"it would load rows [{expected[0]}, {expected[1]}). Order process_indices like "
                "the processes' devices along the mesh's data axes."
            )

    def __iter__(self) -> MultiHostDataLoadIterator:
        return self

    def __len__(self) -> int:
        if self.steps_per_epoch is None:
            raise TypeError(
                "The number of batches per epoch is not known in advance: packing, splitting "
                "long documents, ramp-up or an infinite stream make it depend on the data. "
                "Without packing, truncate_documents=True gives a fixed length."
            )
        return self.steps_per_epoch

    def _next_global(self) -> tuple[LLMBatch, Counter] | None:
        try:
            return next(self._iterator)
        except StopIteration:
            return None

    def _agree_on_end(self, has_batch: bool) -> tuple[bool, bool]:
        """(stop now, this host pads) after all hosts told whether they still have a batch."""
        if not self.sync_end or jax.process_count() == 1:
            return not has_batch, False
        flags = multihost_utils.process_allgather(np.array([int(has_batch)], np.int32))
        any_has, all_have = bool(flags.max()), bool(flags.min())
        if self.drop_remainder:
            return not all_have, False
        return not any_has, not has_batch

    def __next__(self) -> LLMBatch:
        item = self._next_global()
        stop, pad = self._agree_on_end(item is not None)
        if stop:
            if item is not None:
                LOGGER.warning(
                    "Host %d dropped a batch at the end of the stream: another host "
                    "ran out first (drop_remainder=True).",
                    self.host_index,
                )
            self._end_of_epoch()
            raise StopIteration
        if pad:
            rows = self.schedule.local_rows(self.step)
            zeros = np.zeros((self.stacked_fields, rows, self.max_target_length), np.int32)
            item = self._to_global(
                (zeros, Counter(padding_rows=rows, padding_tokens=zeros[0].size))
            )
        batch, counts = item
        self.counts.update(counts)
        self.step += 1
        return batch

    def close(self) -> None:
        """Stops prefetch threads and worker processes."""
        self._finalizer()

    def __enter__(self) -> MultiHostDataLoadIterator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _end_of_epoch(self) -> None:
        if self.reset_after_epoch:
            self.close()
            self._open()
            self.step = self.first_step

    @property
    def padding_fraction(self) -> float:
        """Share of row slots that held padding instead of tokens, so far on this host."""
        slots = self.counts["tokens"] + self.counts["padding_tokens"]
        return self.counts["padding_tokens"] / slots if slots else math.nan

    def get_state(self) -> dict[str, Any]:
        """This host's position: small, JSON-serialisable, restorable in O(1) with `set_state`."""
        return {
            "version": STATE_FORMAT_VERSION,
            "step": self.step,
            "setup": self.setup,
            "pipeline": self._iterator.get_state(),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Continues exactly after the batch the state was taken at (no data is replayed).

        Raises ValueError naming every difference when the state comes from another setup
        (host count, data, seed, batch shape, packing, tokenizer, workers …).
        """
        if state.get("version") != STATE_FORMAT_VERSION:
            raise ValueError(
                f"Iterator state format {state.get('version')!r} is not "
                f"{STATE_FORMAT_VERSION}; it was saved by another xlstm-data version."
            )
        differences = setup_differences(state["setup"], self.setup)
        if differences:
            raise ValueError(
                "Cannot restore the data iterator: the state was saved with another setup ("
                + "; ".join(differences)
                + "). Restore with the setup it was saved with; "
                "resuming on another number of hosts is not supported by this iterator."
            )
        self._iterator.set_state(state["pipeline"])
        self.step = state["step"]

    def __str__(self) -> str:
        return (
            f"MultiHostDataLoadIterator(host {self.host_index}/{self.host_count}):\n{self.dataset}"
        )
