"""One builder per plan: the first host to start a missing plan builds it, the others wait.

The builder holds `.<plan>.lock` next to the plan folder (created exclusively, so on a shared
file system one host wins) and touches it every few seconds while it builds. A waiter polls for
the finished plan within a bounded time; a lock nobody has touched for `STALE_SECONDS` belongs
to a builder that died, and the waiter takes over.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from xlstm_data.errors import DataError

LOGGER = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0
STALE_SECONDS = 60.0
POLL_SECONDS = 0.2
DEFAULT_WAIT_SECONDS = float(os.environ.get("XLSTM_DATA_PLAN_WAIT_SECONDS", 3600))


def build_once(
    folder: Path,
    is_built: Callable[[], bool],
    build: Callable[[], None],
    *,
    wait_seconds: float = DEFAULT_WAIT_SECONDS,
) -> bool:
    """Builds `folder` unless it is built or another process is building it (then waits for
    that one, at most `wait_seconds`). Returns whether this process built it."""
    lock = folder.parent / f".{folder.name}.lock"
    folder.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_seconds
    announced = False
    while not is_built():
        with _held(lock) as mine:
            if mine:
                if not is_built():  # built while this process waited for the lock
                    build()
                    return True
                return False
        if not announced:
            LOGGER.warning("Waiting for %s to build the plan %s.", _holder(lock), folder)
            announced = True
        if time.monotonic() > deadline:
            raise DataError(
                f"Waited {wait_seconds:.0f} s for {_holder(lock)} to build the plan {folder}, "
                f"and it is not there. Build it once before the job with `xlstm-data plan "
                f"CONFIG.yaml`, or remove {lock} if no process is building it."
            )
        time.sleep(POLL_SECONDS)
    return False


@contextlib.contextmanager
def _held(lock: Path) -> Iterator[bool]:
    """Whether this process holds `lock` (taken over when stale), released at the end."""
    _remove_if_stale(lock)
    try:
        descriptor = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        yield False
        return
    with os.fdopen(descriptor, "w") as file:
        file.write(f"{socket.gethostname()} pid {os.getpid()}\n")
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(lock, stop), daemon=True)
    beat.start()
    try:
        yield True
    finally:
        stop.set()
        beat.join()
        lock.unlink(missing_ok=True)


def _heartbeat(lock: Path, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_SECONDS):
        with contextlib.suppress(OSError):
            os.utime(lock)


def _remove_if_stale(lock: Path) -> None:
    with contextlib.suppress(OSError):
        if time.time() - lock.stat().st_mtime > STALE_SECONDS:
            LOGGER.warning("Taking over the plan build of %s (its lock is stale).", _holder(lock))
            lock.unlink()


def _holder(lock: Path) -> str:
    try:
        return lock.read_text().strip() or "another process"
    except OSError:
        return "another process"
