"""Data-loading hosts simulated in one process, for `doctor`, `inspect` and `bench`.

Each simulated host runs the reader a real host would build (`api.build_reader` with its
index among K hosts), so its local batches are the ones that host would put on its devices;
only the transfer to devices and the hosts' agreement at the end of a finite stream are left
out, and `run_hosts` predicts the latter from every host's batch count.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from xlstm_data.api import build_reader
from xlstm_data.config import DataConfig
from xlstm_data.readers.inputs import Input
from xlstm_data.stages.shift import BATCH_FIELDS, FULL_LAYOUT, SHARED_LAYOUT
from xlstm_data.telemetry import per_source


def batch_field(reader: Any, fields: np.ndarray, name: str) -> np.ndarray:
    """One `LLMBatch` field ([rows, length]) of a non-compact stacked local batch."""
    layout = FULL_LAYOUT if reader.stacked_fields == len(FULL_LAYOUT) else SHARED_LAYOUT
    return fields[:, layout[BATCH_FIELDS.index(name)]]


def segment_lengths(segmentation: np.ndarray) -> np.ndarray:
    """Tokens of every segment (document piece) of a batch's rows, row by row."""
    rows, length = segmentation.shape
    cells = (np.arange(rows)[:, None] * (length + 1) + segmentation)[segmentation > 0]
    counts = np.bincount(cells, minlength=rows * (length + 1))
    return counts[counts > 0]


@dataclasses.dataclass
class StepFigures:
    """What one host's local batch at one step held."""

    rows: int
    tokens: int
    """Real target tokens (slots whose segmentation is not 0)."""
    slots: int
    source_tokens: dict[str, int]
    """Tokens per source the pipeline counted for this batch (online readers count whole
    packing windows, so a batch may carry the count of several)."""
    done_s: float
    """Seconds since the host's reader was asked for batches."""


@dataclasses.dataclass
class HostRun:
    host: int
    steps: list[StepFigures]
    counts: Counter
    ended: bool
    """Whether the host's stream ended before the step limit."""
    segment_lengths: np.ndarray

    @property
    def batches(self) -> int:
        return len(self.steps)

    @property
    def first_batch_s(self) -> float:
        return self.steps[0].done_s if self.steps else float("nan")

    @property
    def tokens(self) -> int:
        return sum(s.tokens for s in self.steps)

    @property
    def slots(self) -> int:
        return sum(s.slots for s in self.steps)

    @property
    def padding_fraction(self) -> float:
        return 1 - self.tokens / self.slots if self.slots else float("nan")

    def as_delivered(self, steps: int, reader: Any) -> HostRun:
        """The run as the real loader delivers it when all hosts agree on `steps` batches:
        cut there (drop_remainder), or followed by fully masked batches."""
        figures = self.steps[:steps]
        for step in range(len(figures), steps):
            rows, length = reader.batch_shape(step)
            rows //= reader.host_count
            slots = rows * length
            done = figures[-1].done_s if figures else 0.0
            figures.append(StepFigures(rows, 0, slots, {}, done))
        return dataclasses.replace(self, steps=figures)

    def source_tokens(self) -> Counter:
        """Tokens per source of the batches delivered."""
        total: Counter = Counter()
        for step in self.steps:
            total.update(step.source_tokens)
        return total

    def steady_rate(self, what: str = "tokens") -> float:
        """Tokens (or slots) per second after the first batch (which pays for the start)."""
        if len(self.steps) < 2:
            return float("nan")
        elapsed = self.steps[-1].done_s - self.steps[0].done_s
        total = sum(getattr(s, what) for s in self.steps[1:])
        return total / elapsed if elapsed > 0 else float("inf")


def host_readers(
    configs: Sequence[DataConfig],
    weights: Sequence[float] | None,
    inputs: Sequence[Input],
    *,
    hosts: int,
    devices_per_host: int,
) -> Iterator[Any]:
    """The reader of each of `hosts` hosts, one after another (each opened when needed)."""
    for host in range(hosts):
        yield build_reader(
            configs,
            weights,
            host_index=host,
            host_count=hosts,
            data_parallel_size=hosts * devices_per_host,
            inputs=inputs,
        )


def run_host(
    reader: Any,
    *,
    steps: int,
    first_step: int = 0,
    on_batch: Callable[[int, np.ndarray], None] | None = None,
) -> HostRun:
    """Up to `steps` local batches of one host from `first_step`, with what each held;
    `on_batch(step, fields)` sees every stacked batch (for progress bars or inspection)."""
    started = time.perf_counter()
    iterator = iter(reader.batches(first_step))
    figures, counts, lengths, ended = [], Counter(), [], False
    try:
        for step in range(first_step, first_step + steps):
            try:
                fields, batch_counts = next(iterator)
            except StopIteration:
                ended = True
                break
            segmentation = batch_field(reader, fields, "targets_segmentation")
            batch_counts = batch_counts or Counter()
            counts.update(batch_counts)
            lengths.append(segment_lengths(segmentation))
            figures.append(
                StepFigures(
                    rows=len(fields),
                    tokens=int(np.count_nonzero(segmentation)),
                    slots=segmentation.size,
                    source_tokens=per_source(batch_counts),
                    done_s=time.perf_counter() - started,
                )
            )
            if on_batch is not None:
                on_batch(step, fields)
    finally:
        close = getattr(iterator, "close", None)  # Grain iterators with threads or workers
        if close is not None:
            close()
    joined = np.concatenate(lengths) if lengths else np.zeros(0, np.int64)
    return HostRun(reader.host_index, figures, counts, ended, joined)
