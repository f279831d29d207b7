"""Who runs a plan build's tasks: this process, a pool of local worker processes, or Ray.

Every task is a pure function of small, picklable arguments (the lengths are files every
worker memory-maps), so the plan is the same byte for byte whichever runs it. `map` yields
results in order with at most `in_flight` tasks (2 per worker by default) submitted and not
yet taken: the driver writes each window as it comes and holds at most that many. When the
caller stops early, the tasks not yet started are cancelled.
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from xlstm_data.cluster import TASK_RETRIES, connect
from xlstm_data.errors import ConfigError

LOGGER = logging.getLogger(__name__)


class InProcess:
    """Tasks run one after the other in this process."""

    workers = 1

    def map(self, task: Callable, items: Iterable, in_flight: int | None = None) -> Iterator[Any]:
        return (task(item) for item in items)

    def close(self) -> None:
        pass


class ProcessPool:
    """Tasks run in `workers` local processes (forkserver: safe next to JAX's threads)."""

    def __init__(self, workers: int):
        self.workers = workers
        self._pool = concurrent.futures.ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("forkserver")
        )

    def map(self, task: Callable, items: Iterable, in_flight: int | None = None) -> Iterator[Any]:
        submitted = (self._pool.submit(task, item) for item in items)
        future = concurrent.futures.Future
        return _in_order(submitted, _limit(in_flight, self.workers), future.result, future.cancel)

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)


class RayTasks:
    """Tasks run as Ray tasks on the cluster at `address` ("auto": the one this machine belongs
    to, "local": one started here), each retried when its worker dies."""

    def __init__(self, address: str = "auto"):
        self._ray = ray = connect(address, "plan")
        self.workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self.nodes: set[str] = set()
        """The nodes that ran a task."""
        self._remote = ray.remote(num_cpus=1, max_retries=TASK_RETRIES)(_plan_task)

    def map(self, task: Callable, items: Iterable, in_flight: int | None = None) -> Iterator[Any]:
        submitted = (self._remote.remote(task, item) for item in items)
        limit = _limit(in_flight, self.workers)
        for result, node in _in_order(submitted, limit, self._ray.get, self._cancel):
            self.nodes.add(node)
            yield result

    def _cancel(self, handle: Any) -> None:
        try:
            self._ray.cancel(handle)
        except Exception as error:  # a task that already ended cannot be cancelled
            LOGGER.debug("Could not cancel a plan task: %s", error)

    def close(self) -> None:
        pass  # the cluster outlives the build


Workers = InProcess | ProcessPool | RayTasks


def plan_workers(spec: int | str | None) -> Workers:
    """`None` or 1: this process; N: N local processes; "ray" or "ray:ADDRESS": Ray."""
    if spec is None or spec == 1 or spec == "1":
        return InProcess()
    if isinstance(spec, str) and spec.startswith("ray"):
        return RayTasks(spec.partition(":")[2] or "auto")
    try:
        count = (os.cpu_count() or 1) if spec == "auto" else int(spec)
    except ValueError:
        count = 0
    if count < 1:
        raise ConfigError(
            f"plan workers must be a number of at least 1, 'auto', 'ray' or 'ray:ADDRESS'; "
            f"got {spec!r}."
        )
    return InProcess() if count == 1 else ProcessPool(count)


def _plan_task(task: Callable, item: Any) -> tuple[Any, str]:
    """A task on a Ray worker, and the node it ran on."""
    import ray

    return task(item), ray.get_runtime_context().get_node_id()


def _limit(in_flight: int | None, workers: int) -> int:
    return 2 * workers if in_flight is None else max(1, min(in_flight, 2 * workers))


def _in_order(
    submitted: Iterator, in_flight: int, result: Callable, cancel: Callable
) -> Iterator[Any]:
    """Results of the submitted tasks in order, at most `in_flight` submitted and not yet
    taken; when the caller stops early the rest are cancelled (those already running finish,
    their results unread)."""
    pending: collections.deque = collections.deque()
    try:
        for handle in submitted:
            pending.append(handle)
            if len(pending) >= in_flight:
                yield result(pending.popleft())
        while pending:
            yield result(pending.popleft())
    finally:
        for handle in pending:
            cancel(handle)
