"""Building a global plan: which pieces of which documents fill each row of an epoch.

Everything here works on document lengths, never on tokens, and in windows of bounded size,
so a plan of 10^9 documents is built in the memory of a few windows, by as many workers as
there are (`parallel.py`: local processes or Ray):

1. **Mixture by tokens.** A plan epoch holds N tokens, by default the fewest that use every
   document of every source at least once at the given weights (N = max T_s / w_s for source
   token totals T_s). Source s contributes w_s * N tokens from its stream of seeded passes
   (`streams.py`): the documents whose middle lies within its first w_s * N tokens.
2. **Windows.** Window j takes the documents whose middle lies in [j B w_s, (j + 1) B w_s) of
   each source (B: `window_rows` rows of tokens, fewer when that would be over 2^21 documents)
   and orders them by middle / w_s, which spreads each source evenly over the epoch
   (`windows.py`). The driver finds where each window starts in each stream from prefix sums
   of fixed chunks of the streams (computed by the workers first).
3. **Splitting.** Documents longer than a row become row-length pieces (the rule of
   `stages/split.py`); no token is dropped, unless a source truncates (its first piece only).
4. **Packing.** Each window's pieces are placed by the packing algorithm
   (`xlstm_data/packing/`), and the driver appends them to the plan's files in window order,
   holding at most 2 windows per worker.

Rows are numbered window after window; the order in which an epoch visits them is a separate
seeded permutation per epoch (see batches.py), so the plan is built once.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import math
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from xlstm_data.errors import DataError
from xlstm_data.io import NpyWriter, atomic_folder
from xlstm_data.readers.plan.parallel import Workers, plan_workers
from xlstm_data.readers.plan.streams import Streams, chunk_sums, release_lengths
from xlstm_data.readers.plan.windows import Cut, Window, WindowJob, pack_window

REPORT_FILE = "report.json"
MAX_WINDOW_DOCUMENTS = 1 << 21
"""Documents per window on average at most (B is set from the mixture's mean length): a
window's arrays stay within a few hundred MB."""
CHUNK_POSITIONS = 4096
"""Stream positions per prefix-sum chunk: a window reads one chunk per source to find its
start."""
CHUNKS_PER_TASK = 1024
_WRITE_BLOCK = 1 << 22


@dataclasses.dataclass
class Plan:
    """Rows as runs of pieces: row r holds pieces [row_starts[r], row_starts[r + 1]), in order.

    A piece is tokens [piece_start, piece_start + piece_length) of document piece_document of
    source piece_source, counted with the special tokens the pipeline adds. `group_starts`
    are the rows where a run of rows begins that no document crosses: an epoch shuffles
    blocks cut there, so that it reads each document once.
    """

    row_starts: np.ndarray
    piece_source: np.ndarray
    piece_document: np.ndarray
    piece_start: np.ndarray
    piece_length: np.ndarray
    group_starts: np.ndarray
    report: dict

    PIECE_ARRAYS = ("piece_source", "piece_document", "piece_start", "piece_length")
    ARRAYS = ("row_starts", *PIECE_ARRAYS, "group_starts")

    DTYPES = {"row_starts": np.int64, "piece_source": np.int16, "piece_document": np.int64,
              "piece_start": np.int64, "piece_length": np.int32,
              "group_starts": np.int64}  # fmt: skip

    @property
    def num_rows(self) -> int:
        return len(self.row_starts) - 1

    @classmethod
    def open(cls, folder: Path) -> Plan:
        """A stored plan, its arrays memory-mapped (nothing is read until used)."""
        arrays = {name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in cls.ARRAYS}
        return cls(**arrays, report=json.loads((folder / REPORT_FILE).read_text()))


def build_plan(
    lengths: Sequence[np.ndarray],
    weights: Sequence[float],
    folder: Path,
    *,
    row_length: int,
    seed: int,
    window_rows: int,
    plan_tokens: int | None = None,
    algorithm: str = "best_fit",
    shuffle: bool = True,
    truncate: Sequence[bool] | None = None,
    progress: bool = True,
    start: Sequence[int] | None = None,
    rows: int | None = None,
    workers: Workers | int | str | None = None,
    chunk: int = CHUNK_POSITIONS,
    report: dict | None = None,
) -> Plan:
    """Builds into `folder` the plan of one epoch over sources with these document lengths
    (special tokens included; arrays, memory maps or anything sliced in blocks, read once),
    mixed by `weights` in tokens; sources with `truncate[s]` keep only the first row's worth
    of each document. Each source's documents start at stream position `start[s]`. With
    `rows`, the plan is a finite stage of exactly that many rows: documents are taken until
    the rows are full (the next stage starts at `report["stream_end"]`). `workers` run the
    tasks (`plan_workers`); the plan does not depend on them, nor on `chunk`. `report` is
    stored with the plan's own."""
    runner = workers if isinstance(workers, Workers) else plan_workers(workers)
    folder, count = Path(folder), len(lengths)
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Beside the plan, not in it: workers may still map the files when it is renamed.
    scratch = Path(tempfile.mkdtemp(prefix=f".{folder.name}.lengths.", dir=folder.parent))
    try:
        with atomic_folder(folder) as partial:
            streams, totals = _write_lengths(lengths, scratch, seed=seed, shuffle=shuffle,
                                             start=start, chunk=chunk)  # fmt: skip
            builder = _Builder(
                streams, totals, np.asarray(weights, np.float64) / np.sum(weights), runner,
                row_length=row_length, window_rows=window_rows, plan_tokens=plan_tokens,
                algorithm=algorithm, truncate=tuple(truncate or [False] * count), rows=rows,
            )  # fmt: skip
            plan_report = builder.write(partial, progress) | {"seed": seed} | (report or {})
            (partial / REPORT_FILE).write_text(json.dumps(plan_report, indent=1) + "\n")
    finally:
        release_lengths()
        if runner is not workers:
            runner.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return Plan.open(folder)


def _write_lengths(
    lengths: Sequence[np.ndarray],
    folder: Path,
    *,
    seed: int,
    shuffle: bool,
    start: Sequence[int] | None,
    chunk: int,
) -> tuple[Streams, np.ndarray]:
    """Each source's lengths as an int32 `.npy` file the workers map, and its token total."""
    files, counts, totals = [], [], []
    for index in range(len(lengths)):
        source = lengths[index]
        path = folder / f"source{index}.npy"
        total = 0
        with contextlib.closing(NpyWriter(path, np.int32)) as writer:
            for begin in range(0, len(source), _WRITE_BLOCK):
                block = np.asarray(source[begin : begin + _WRITE_BLOCK], dtype=np.int64)
                if len(block) and (block.min() < 0 or block.max() >= 2**31):
                    raise DataError(
                        f"Source {index} of the plan has a document length outside [0, 2^31) "
                        f"near document {begin}: its lengths are damaged."
                    )
                writer.append(block)
                total += int(block.sum())
        files.append(str(path))
        counts.append(writer.size)
        totals.append(total)
        del source
    chunks = tuple(max(1, min(chunk, n)) for n in counts)
    streams = Streams(tuple(files), tuple(counts), seed, shuffle,
                      tuple(start or [0] * len(lengths)), chunks)  # fmt: skip
    return streams, np.array(totals, dtype=np.int64)


class _Builder:
    """Drives one build: prefix sums of the streams, then the windows in order."""

    def __init__(
        self,
        streams: Streams,
        totals: np.ndarray,
        weights: np.ndarray,
        runner: Workers,
        *,
        row_length: int,
        window_rows: int,
        plan_tokens: int | None,
        algorithm: str,
        truncate: tuple[bool, ...],
        rows: int | None,
    ):
        used = weights > 0
        if (totals[used] == 0).any():
            empty = int(np.flatnonzero((totals == 0) & used)[0])
            raise DataError(f"Source {empty} of the plan holds no tokens.")
        self.streams, self.totals, self.weights, self.runner = streams, totals, weights, runner
        self.row_length, self.algorithm, self.truncate, self.rows = (
            row_length, algorithm, truncate, rows
        )  # fmt: skip
        self.window_rows = window_rows
        self.epoch_tokens = None if rows is not None else float(
            plan_tokens or (totals[used] / weights[used]).max()
        )  # fmt: skip
        self.tokens_per_position = totals / np.maximum(streams.counts, 1)
        documents_per_token = (weights[used] / self.tokens_per_position[used]).sum()
        self.window_tokens = float(
            max(1.0, min(window_rows * row_length, MAX_WINDOW_DOCUMENTS / documents_per_token))
        )
        self.sums = [np.zeros(1, np.int64) for _ in weights]
        """Per source: tokens before each computed chunk of its stream, and after the last."""

    def write(self, folder: Path, progress: bool) -> dict:
        """Packs the windows into the plan's files in `folder`; returns the report."""
        with contextlib.ExitStack() as stack:
            writers = {
                name: stack.enter_context(contextlib.closing(NpyWriter(folder / f"{name}.npy", t)))
                for name, t in Plan.DTYPES.items()
            }
            return self._write(writers, stack, progress)

    def _write(
        self, writers: dict[str, NpyWriter], stack: contextlib.ExitStack, progress: bool
    ) -> dict:
        writers["row_starts"].append(np.zeros(1, np.int64))
        count = len(self.weights)
        taken = dict(rows=0, pieces=0, documents=0, split_documents=0, truncated_tokens=0)
        source_tokens = np.zeros(count, np.int64)
        stream_end = self.streams.start
        submitted: collections.deque[WindowJob] = collections.deque()
        windows = (
            None if self.epoch_tokens is None else math.ceil(self.epoch_tokens / self.window_tokens)
        )
        bar = stack.enter_context(
            tqdm(total=windows, desc="planning", unit=" windows", disable=not progress)
        )
        # The chunk sums every window needs, in one parallel pass (a stage: its estimate).
        in_flight = None
        if windows is not None:
            self._cover(self._thresholds(windows, last=True))
        else:
            needed = self.rows * self.row_length * 1.1 + 2 * self.window_tokens
            self._cover(np.where(self.weights > 0, needed * self.weights, np.nan))
            in_flight = math.ceil(needed / self.window_tokens)  # no windows packed for nothing
        results = self.runner.map(pack_window, self._jobs(windows, submitted), in_flight)
        stack.callback(results.close)
        for window in results:
            job = submitted.popleft()
            if self.rows is not None and taken["rows"] + window.rows > self.rows:
                free_rows = self.rows - taken["rows"]
                window = pack_window(dataclasses.replace(job, free_rows=free_rows))
            self._append(writers, window, taken["pieces"], taken["rows"])
            for key in taken:
                taken[key] += getattr(window, key)
            source_tokens += window.source_tokens
            stream_end = window.stream_end
            bar.update()
            if self.rows is not None and taken["rows"] >= self.rows:
                break
        tokens = int(source_tokens.sum())
        realised = source_tokens / max(tokens, 1)
        epochs = (
            source_tokens if self.epoch_tokens is None else self.weights * self.epoch_tokens
        ) / np.maximum(self.totals, 1)
        return {
            "source_tokens": self.totals.tolist(),
            "weights": np.round(self.weights, 6).tolist(),
            "epochs_per_source": np.round(epochs, 4).tolist(),
            "epoch_tokens": tokens,
            "documents": taken["documents"],
            "realised_token_share": np.round(realised, 6).tolist(),
            "largest_share_deviation": float(np.abs(realised - self.weights).max()),
            "rows": taken["rows"],
            "row_length": self.row_length,
            "pieces": taken["pieces"],
            "split_documents": taken["split_documents"],
            "truncated_tokens": taken["truncated_tokens"],
            "packing": self.algorithm,
            "padding_fraction": round(1 - tokens / max(taken["rows"] * self.row_length, 1), 6),
            "window_rows": self.window_rows,
            "window_tokens": self.window_tokens,
            "stream_end": list(stream_end),
        }

    @staticmethod
    def _append(
        writers: dict[str, NpyWriter], window: Window, pieces_before: int, rows_before: int
    ) -> None:
        writers["row_starts"].append(pieces_before + np.cumsum(window.row_pieces))
        for name in Plan.PIECE_ARRAYS:
            writers[name].append(getattr(window, name))
        writers["group_starts"].append(rows_before + window.group_starts)

    def _jobs(self, windows: int | None, submitted: collections.deque) -> Iterator[WindowJob]:
        """Window after window (endless for a finite stage: the caller stops)."""
        index = 0
        while windows is None or index < windows:
            low = self._thresholds(index)
            high = self._thresholds(index + 1, last=windows is not None and index + 1 == windows)
            self._cover(high)
            job = WindowJob(
                self.streams,
                tuple(self.weights.tolist()),
                begin=self._cuts(low),
                end=self._cuts(high),
                row_length=self.row_length,
                algorithm=self.algorithm,
                truncate=self.truncate,
            )
            submitted.append(job)
            yield job
            index += 1

    def _thresholds(self, index: int, last: bool = False) -> np.ndarray:
        """Per source: the middle at which window `index` starts (NaN: weight 0)."""
        thresholds = index * (self.window_tokens * self.weights)
        if self.epoch_tokens is not None:
            end = self.weights * self.epoch_tokens
            thresholds = end if last else np.minimum(thresholds, end)
        return np.where(self.weights > 0, thresholds, np.nan)

    def _cuts(self, thresholds: np.ndarray) -> tuple[Cut | None, ...]:
        cuts = []
        for sums, threshold in zip(self.sums, thresholds.tolist(), strict=True):
            if math.isnan(threshold):
                cuts.append(None)
                continue
            chunk = max(0, int(np.searchsorted(sums, threshold, side="left")) - 1)
            cuts.append(Cut(threshold, chunk, int(sums[chunk])))
        return tuple(cuts)

    def _cover(self, thresholds: np.ndarray) -> None:
        """Computes (by the workers) the chunk sums that reach past every threshold."""
        while True:
            tasks = []
            for source, (sums, threshold) in enumerate(zip(self.sums, thresholds, strict=True)):
                if math.isnan(threshold) or sums[-1] > threshold:
                    continue
                missing = (threshold - sums[-1]) / self.tokens_per_position[source]
                # A stage that needs more than estimated grows its sums by half at least.
                chunks = int(missing * 1.05 / self.streams.chunks[source]) + len(sums) // 2 + 1
                first = len(sums) - 1
                for begin in range(first, first + chunks, CHUNKS_PER_TASK):
                    size = min(CHUNKS_PER_TASK, first + chunks - begin)
                    tasks.append((self.streams, source, begin, size))
            if not tasks:
                return
            found = collections.defaultdict(list)
            for (_, source, _, _), sums in zip(
                tasks, self.runner.map(chunk_sums, tasks), strict=True
            ):
                found[source].append(sums)
            for source, parts in found.items():
                more = self.sums[source][-1] + np.cumsum(np.concatenate(parts))
                self.sums[source] = np.concatenate([self.sums[source], more])
