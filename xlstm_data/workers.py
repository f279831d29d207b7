"""How a host's pipeline runs in parallel: read threads, and worker processes that end with
the process that started them."""

from __future__ import annotations

import functools
import os
import threading
import time

import grain

# Blocks hold thousands of records, so two blocks ahead per read thread keep the pipeline fed:
# a thread that finishes its block starts the next one at once instead of waiting for the
# consumer to take a block (with one ahead, the long mix ran 4 % slower and left 0.1 of a core
# idle). Grain's default (500 elements) would read and tokenize far ahead of need.
READ_AHEAD_BLOCKS = 2


def read_options(read_threads: int | None, *, overlaps: bool) -> grain.ReadOptions:
    """Threads reading blocks ahead. By default 2 where a block's work `overlaps` across
    threads because much of it releases the GIL (tokenizers; large ArrayRecord records, which
    one thread decompresses while the other parses; a global plan's reads, while the other
    thread lays out rows), else 1 (parsing small pre-tokenized records holds the GIL, so more
    would only contend)."""
    threads = read_threads if read_threads is not None else 2 if overlaps else 1
    return grain.ReadOptions(num_threads=threads, prefetch_buffer_size=READ_AHEAD_BLOCKS * threads)


def in_worker_processes(
    dataset: grain.IterDataset, worker_count: int, buffer_size: int
) -> grain.IterDataset:
    """`dataset` run by `worker_count` Grain worker processes (none: unchanged)."""
    if worker_count == 0:
        return dataset
    from absl import flags

    if not flags.FLAGS.is_parsed():  # Grain's workers read absl flags, which only absl.app parses
        flags.FLAGS.mark_as_parsed()
    return dataset.mp_prefetch(
        grain.MultiprocessingOptions(num_workers=worker_count, per_worker_buffer_size=buffer_size),
        worker_init_fn=functools.partial(exit_with_parent, os.getpid()),
    )


def exit_with_parent(parent_pid: int, *worker: int) -> None:
    """Run in each worker process: ends it within a second of the death of `parent_pid` (the
    process that started the pipeline), so a killed trainer or `prepare` leaves no orphan
    workers holding memory and files. Workers may be started by a fork server rather than by
    `parent_pid` itself, so its own liveness is watched, not the worker's parent."""

    def watch() -> None:
        while True:
            time.sleep(1.0)
            try:
                os.kill(parent_pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:  # alive, owned by someone else (pid reused): keep going
                pass

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
