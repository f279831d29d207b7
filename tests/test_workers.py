"""Worker processes end with the process that started them: Grain's pipeline workers and
`prepare`'s tokenizing workers do not outlive a SIGKILLed trainer or command."""

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest


def parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (parent := parent_of(int(entry.name))) is not None:
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def running(pid: int) -> bool:
    """Alive and not a zombie (an exited child nobody has reaped yet)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def kill_and_watch(script: str, tmp_path: Path) -> set[int]:
    """Runs `script` until it prints "ready", SIGKILLs it, returns the workers still running
    15 s later."""
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        workers: set[int] = set()
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            assert line or process.poll() is None, "the script ended before it was ready"
            if line.strip() == "ready":
                workers = descendants(process.pid)
                break
        assert workers, "no worker process was started"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(running(pid) for pid in workers):
            time.sleep(0.2)
        return {pid for pid in workers if running(pid)}
    finally:
        for pid in descendants(process.pid) | {process.pid}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.multiprocess
def test_grain_workers_exit_when_the_trainer_is_killed(tmp_path, token_data):
    root, _ = token_data
    script = f"""
        import os, time
        os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=1"
        import jax
        from xlstm_data import GrainArrayRecordsDataConfig, make_grain_iterator

        if __name__ == "__main__":
            config = GrainArrayRecordsDataConfig(
                data_path={str(root)!r}, global_batch_size=4, max_target_length=16,
                tokenize_data=False, eod_token_id=5, worker_count=2, grain_packing=True,
            )
            iterator = make_grain_iterator(config, jax.make_mesh((1,), ("data",)), [0])
            next(iterator)
            print("ready", flush=True)
            time.sleep(600)
    """
    assert kill_and_watch(script, tmp_path) == set()


@pytest.mark.multiprocess
def test_prepare_workers_exit_when_the_command_is_killed(tmp_path, sp_model):
    script = f"""
        import time
        from xlstm_data.tools.prepare import prepare_cache
        from xlstm_data.tools.text_inputs import TextInput

        class SlowInput(TextInput):
            def describe(self):
                return {{"format": "slow lines"}}

            def documents(self):
                for i in range(10**6):
                    if i == 40:
                        print("ready", flush=True)
                    if i >= 40:
                        time.sleep(0.05)
                    yield f"document number {{i}} with a few words"

        if __name__ == "__main__":
            prepare_cache(SlowInput(("unused",), "lines"), "cache", {str(sp_model)!r},
                          documents_per_shard=10, workers=2, progress=False)
    """
    assert kill_and_watch(script, tmp_path) == set()
