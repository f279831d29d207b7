"""Starting real multi-process JAX jobs for the tests (see multihost_worker.py)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

WORKER = Path(__file__).with_name("multihost_worker.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_processes(folder, count: int, config: dict | Path, *extra: str) -> tuple[list, list]:
    """`count` worker processes of one distributed job; each writes folder/process_{i}.json.
    `config`: a config dict, or the path of a YAML file (one config or a mixture)."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    outputs = [folder / f"process_{i}.json" for i in range(count)]
    processes = []
    for i in range(count):
        command = [sys.executable, str(WORKER), "--process-id", str(i), "--num-processes",
                   str(count), "--port", str(port), "--config",
                   str(config) if isinstance(config, Path) else json.dumps(config), "--out",
                   str(outputs[i]), *extra]  # fmt: skip
        processes.append(
            subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
        )
    return processes, outputs


def run_processes(folder, count: int, config: dict | Path, *extra: str) -> list[dict]:
    """Runs one job to completion (bounded) and returns what each process saw."""
    processes, outputs = start_processes(folder, count, config, *extra)
    logs = []
    try:
        for process in processes:
            logs.append(process.communicate(timeout=240)[0])
    finally:
        for process in processes:
            process.kill()
    for process, log in zip(processes, logs, strict=True):
        assert process.returncode == 0, log[-3000:]
    return [json.loads(p.read_text()) for p in outputs]


def wait_for_files(processes: list, outputs: list, timeout: float = 180) -> None:
    """Waits (bounded) until every process wrote its file, then kills them all with SIGKILL,
    as a preemption would: no clean-up, no flush."""
    try:
        deadline = time.monotonic() + timeout
        while not all(o.exists() for o in outputs):
            assert time.monotonic() < deadline, "the job did not write its files in time"
            assert all(p.poll() is None for p in processes), processes[0].communicate()[0]
            time.sleep(0.2)
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
