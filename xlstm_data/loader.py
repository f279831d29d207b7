"""The loader: a reader's local batches → global `jax.Array`s on the mesh, one step after another.

The loader knows nothing of sources, packing or plans. A reader (readers/online.py,
readers/plan/reader.py) supplies local batches from any step and its part of the iterator
state; the loader has each batch turned into global arrays where the reader makes it (a global
plan's read threads), makes the hosts agree where a finite stream can end at different steps
on different hosts, counts, and saves or restores the state.
"""

from __future__ import annotations

import logging
import math
import weakref
from collections import Counter
from collections.abc import Sequence
from typing import Any, Protocol

import grain
import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh

from xlstm_data.epoch_window import EpochWindow, window_lengths
from xlstm_data.errors import ConfigError
from xlstm_data.llm_batch import LLMBatch
from xlstm_data.schedule import BatchSchedule
from xlstm_data.sharding import GlobalArrays, check_host_rows
from xlstm_data.stages.batch import Finish

LOGGER = logging.getLogger(__name__)

STATE_FORMAT_VERSION = 3
"""Version of `get_state()`'s layout; states of another version are refused."""


class Reader(Protocol):
    """What the loader needs of a reader."""

    schedule: BatchSchedule
    host_index: int
    host_count: int
    max_target_length: int
    stacked_fields: int
    """Arrays per stacked batch (4, 6 when the targets shift left, 2 when compact)."""
    shift_target: str
    first_input_id: int
    """The token that opens every shifted input row (for compact batches)."""
    ends_unevenly: bool
    """Whether hosts may run out at different steps (finite, data-dependent streams)."""
    drop_remainder: bool
    steps_per_epoch: int | None
    """Batches per epoch where the reader knows them exactly (one row per record, or a plan)."""
    dataset_size: int
    """Records (plan documents) per epoch; for a mixture, as xlstm-jax counts them."""
    max_steps_per_epoch: int | None
    num_epochs: int | None
    state_is_host_independent: bool
    """Whether a state saved on one host (count) restores on any."""
    report: dict[str, Any]
    """What the reader planned: records or rows per epoch, padding, shares …"""

    def batches(self, first_step: int, finish: Finish | None = None) -> grain.IterDataset:
        """Local batches `(stacked fields, counts)` from `first_step` on, each passed through
        `finish` (if given) where the reader makes it: a global plan read in this process
        finishes its batches in its read threads, off the consuming thread."""
        ...

    def save(self, step: int, pipeline_state: Any) -> dict[str, Any]:
        """The reader's part of a state at `step`, given the pipeline iterator's state."""
        ...

    def documents_at(self, step: int) -> list[dict[str, Any]]:
        """The pieces of every row of the global batch at `step` (see the loader's)."""
        ...

    def batch_shape(self, step: int) -> tuple[int, int]:
        """(rows, tokens per row) of the global batch at `step`."""
        ...

    def next_step(self, step: int) -> int:
        """The first data step from `step` on that is delivered (skip_steps jumps)."""
        ...

    def step_metrics(self, step: int) -> dict[str, Any] | None:
        """Global figures of the batch at `step`, where the reader knows them."""
        ...

    def load(self, state: dict[str, Any]) -> tuple[int, Any | None]:
        """(step, pipeline state) of a saved state, after checking that it belongs to this
        reader; a pipeline state of None means: rebuild the pipeline at that step."""
        ...


def _close(handle: list[grain.DatasetIterator | None]) -> None:
    iterator, handle[0] = handle[0], None
    close = getattr(iterator, "close", None)  # Grain iterators with threads or workers
    if close is not None:
        close()


class HostAgreement:
    """Whether to stop, or to pad, when a host's stream ends: with `drop_remainder=False` a host
    that has run out sends fully masked batches until all have; with `drop_remainder=True` all
    stop when the first one runs out. Only streams that can end unevenly need the collective."""

    def __init__(self, needed: bool, drop_remainder: bool):
        self.needed = needed and jax.process_count() > 1
        self.drop_remainder = drop_remainder

    def __call__(self, has_batch: bool) -> tuple[bool, bool]:
        """(stop now, this host pads)."""
        if not self.needed:
            return not has_batch, False
        flags = multihost_utils.process_allgather(np.array([int(has_batch)], np.int32))
        any_has, all_have = bool(flags.max()), bool(flags.min())
        if self.drop_remainder:
            return not all_have, False
        return not any_has, not has_batch


class MultiHostDataLoadIterator:
    """Iterator of `LLMBatch`es of global `jax.Array`s, sharded over the mesh's data axes.

    Each host feeds the rows of its devices from its own reader; `counts` says what this host
    read, packed, padded and dropped so far. `next(iterator)` walks the stream; a `for` loop
    walks one epoch window of at most `len(iterator)` batches (see `epoch_window.py`).
    """

    def __init__(
        self,
        reader: Reader,
        global_mesh: Mesh,
        *,
        data_axis_names: Sequence[str],
        device_prefetch: int = 0,
        reset_after_epoch: bool = False,
        first_step: int = 0,
    ):
        check_host_rows(
            global_mesh,
            data_axis_names,
            reader.schedule.global_batch_size,
            reader.host_index,
            reader.host_count,
        )
        self.reader = reader
        self.global_mesh = global_mesh
        self._to_global = GlobalArrays(
            global_mesh,
            tuple(data_axis_names),
            reader.host_count,
            shift_target=reader.shift_target,
            first_input_id=reader.first_input_id,
        )
        self._agree = HostAgreement(reader.ends_unevenly, reader.drop_remainder)
        self.device_prefetch = device_prefetch
        self.reset_after_epoch = reset_after_epoch
        self.counts: Counter = Counter()
        """What the pipeline has read, packed, padded and dropped on this host so far."""
        first_step = reader.next_step(first_step)
        self.first_step = first_step
        self.step = first_step
        """The data step of the next batch (it jumps over skip_steps)."""
        self._last: tuple[int, Counter] | None = None  # the last batch's step and counts
        self.lengths = window_lengths(reader)
        self.dataset_size = reader.dataset_size
        """Records per epoch (plan documents; for a mixture, as xlstm-jax counts them)."""
        self.window_step = 0
        """Batches taken in the current epoch window."""
        self._restored = False  # the next `for` loop continues the restored window
        self._ended = False
        self._to_global.compile_ahead(self._local_shape(first_step))
        self._open(first_step)

    def _open(self, step: int) -> None:
        # Batches arrive as global arrays: the reader transfers them where it makes them.
        self.dataset = self.reader.batches(step, finish=self._to_global)
        batches = self.dataset
        if self.device_prefetch:  # the whole pipeline runs ahead in a thread of its own
            batches = grain.experimental.ThreadPrefetchIterDataset(
                batches, prefetch_buffer_size=self.device_prefetch
            )
        self._handle = [iter(batches)]
        # Close prefetch threads and workers at exit, before the interpreter tears down the
        # modules their clean-up needs (Grain's iterators fail in __del__ after that).
        self._finalizer = weakref.finalize(self, _close, self._handle)

    @property
    def _iterator(self) -> grain.DatasetIterator:
        if self._handle[0] is None:
            raise RuntimeError("The iterator is closed.")
        return self._handle[0]

    @property
    def state_is_host_independent(self) -> bool:
        return self.reader.state_is_host_independent

    @property
    def report(self) -> dict[str, Any]:
        """What the reader planned (a global plan: documents, tokens, rows, padding, split
        documents, realised token share per source against its weight, epochs per source)."""
        return self.reader.report

    def metrics(self) -> dict[str, Any]:
        """Figures of the last batch, to log per step: tokens, padding and `tokens:NAME` /
        `documents:NAME` per source; with a global plan also the stage and its epoch, for the
        whole global batch (the same on any host count); online, this host's rows."""
        if self._last is None:
            return {}
        step, counts = self._last
        known = self.reader.step_metrics(step)
        if known is not None:
            return {"step": step, "scope": "global"} | known
        slots = counts["tokens"] + counts["padding_tokens"]
        padding = counts["padding_tokens"] / slots if slots else math.nan
        return {"step": step, "scope": "host", "padding_fraction": padding} | dict(counts)

    def batch_shape(self, step: int | None = None) -> tuple[int, int]:
        """(rows, tokens per row) of the global batch at `step` (default: the next one), so a
        trainer knows the shape before it arrives: within a schedule's stage it stays the same,
        so a step function compiles once per stage."""
        return self.reader.batch_shape(self.step if step is None else step)

    def _local_shape(self, step: int) -> tuple[int, int, int]:
        rows, length = self.reader.batch_shape(step)
        return rows // self.reader.host_count, self.reader.stacked_fields, length

    def documents_at(self, step: int) -> list[dict[str, Any]]:
        """The pieces of every row of the global batch at `step` (source, record, where it
        lives, token range [start, end), row and offset), without reading any step: a global
        plan's batches are a function of the step (online readers refuse: ConfigError)."""
        return self.reader.documents_at(step)

    @property
    def iterator_length(self) -> int:
        """Batches per epoch: exact for unpacked rows of one record each and for global plans,
        else records per epoch / global batch size (xlstm-jax's count: an upper bound when
        packed documents fit a row; `max_steps_per_epoch` caps it)."""
        return self.lengths.iterator_length

    def __len__(self) -> int:
        return self.lengths.iterator_length

    def __iter__(self) -> EpochWindow:
        """A new epoch window, or the rest of the window a restored state was saved in."""
        limit = self.lengths.window_limit
        if not self._restored or (limit is not None and self.window_step >= limit):
            self.reset()
        self._restored = False
        return EpochWindow(self)

    def reset(self) -> None:
        """Starts a new epoch window. The data goes on where it was, unless the stream has
        ended or `reset_after_epoch` is set: then it starts over."""
        self.window_step = 0
        if self._ended or self._at_step_limit() or self.reset_after_epoch:
            self._restart()

    def _at_step_limit(self) -> bool:
        limit = self.lengths.step_limit
        return limit is not None and self.step >= limit

    def __next__(self) -> LLMBatch:
        if self._at_step_limit():
            item = None  # all batches of a finite stream are out
        else:
            try:
                item = next(self._iterator)
            except StopIteration:
                item = None
        stop, pad = self._agree(item is not None)
        if stop:
            if item is not None:
                LOGGER.warning(
                    "Host %d dropped a batch at the end of the stream: another host ran out "
                    "first (drop_remainder=True).",
                    self.reader.host_index,
                )
            self._end_of_epoch()
            raise StopIteration
        if pad:
            shape = self._local_shape(self.step)
            rows = shape[0]
            padding = Counter(padding_rows=rows, padding_tokens=rows * shape[2])
            item = self._to_global((np.zeros(shape, np.int32), padding))
        batch, counts = item
        self.counts.update(counts)
        self._last = (self.step, counts)
        self.step = self.reader.next_step(self.step + 1)
        self.window_step += 1
        return batch

    def close(self) -> None:
        """Stops prefetch threads and worker processes."""
        self._finalizer()

    def __enter__(self) -> MultiHostDataLoadIterator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _end_of_epoch(self) -> None:
        self._ended = True
        if self.reset_after_epoch:
            self._restart()

    def _restart(self) -> None:
        """From the beginning of the data (step 0)."""
        self.close()
        self.step = self.first_step = self.reader.next_step(0)
        self._ended = False
        self._open(self.step)

    @property
    def padding_fraction(self) -> float:
        """Share of row slots that held padding instead of tokens, so far on this host."""
        slots = self.counts["tokens"] + self.counts["padding_tokens"]
        return self.counts["padding_tokens"] / slots if slots else math.nan

    def get_state(self) -> dict[str, Any]:
        """This host's position: small, JSON-serialisable, restorable in O(1) with `set_state`."""
        reader_state = self.reader.save(self.step, self._iterator.get_state())
        window = {"window_step": self.window_step}
        return {"version": STATE_FORMAT_VERSION, "step": self.step, **window, **reader_state}

    def set_state(self, state: dict[str, Any]) -> None:
        """Continues exactly after the batch the state was taken at (no data is replayed).

        Raises ConfigError naming every difference when the state comes from another setup
        (host count, data, seed, batch shape, packing, tokenizer, workers …).
        """
        if not isinstance(state, dict) or state.get("version") != STATE_FORMAT_VERSION:
            found = state.get("version") if isinstance(state, dict) else state
            raise ConfigError(
                f"Iterator state format {found!r} is not {STATE_FORMAT_VERSION}; it was saved by "
                "another xlstm-data version (or is not an iterator state). Restart the data "
                "iterator from the step instead (start_from_step, or a global plan's state)."
            )
        window_step = state.get("window_step")
        if not isinstance(window_step, int) or window_step < 0:
            raise ConfigError(
                f"Cannot restore the data iterator: its window_step {window_step!r} is not a "
                "step count; restore the state as get_state() returned it."
            )
        step, pipeline_state = self.reader.load(state)
        if pipeline_state is None:
            self.close()
            self._open(step)
        else:
            self._iterator.set_state(pipeline_state)
        self.first_step = step if pipeline_state is None else self.first_step
        self.step = step
        self.window_step = window_step
        self._restored, self._ended = True, False

    def __str__(self) -> str:
        host = f"host {self.reader.host_index}/{self.reader.host_count}"
        return f"MultiHostDataLoadIterator({host}):\n{self.dataset}"
