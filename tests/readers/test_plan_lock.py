"""A missing plan is built by one process while the others wait; a dead builder's lock is
taken over; a wait that runs out names the fix. Real processes race for the lock."""

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jax
import pytest

from xlstm_data import load_configs, make_grain_iterator
from xlstm_data.errors import DataError
from xlstm_data.readers.plan import lock
from xlstm_data.tools.cli import main

RACER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from xlstm_data.readers.plan.lock import build_once

    root, start = Path(sys.argv[1]), float(sys.argv[2])
    folder = root / "plan"
    while time.time() < start:  # all racers start together
        time.sleep(0.001)

    def build():
        (root / "builds" / str(os.getpid())).touch()
        time.sleep(1.0)
        folder.mkdir()
        (folder / "report.json").write_text("{}")

    built = build_once(folder, (folder / "report.json").is_file, build, wait_seconds=60)
    print("built" if built else "waited")
    """
)


def test_one_of_several_processes_builds_the_plan(tmp_path):
    (tmp_path / "builds").mkdir()
    start = str(time.time() + 2.0)
    racers = [
        subprocess.Popen([sys.executable, "-c", RACER, str(tmp_path), start],
                         stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]  # fmt: skip
    outputs = [racer.communicate(timeout=120)[0].strip() for racer in racers]
    assert sorted(outputs) == ["built", "waited", "waited"]
    assert len(list((tmp_path / "builds").iterdir())) == 1
    assert not (tmp_path / ".plan.lock").exists()


def test_a_stale_lock_is_taken_over_and_a_live_one_waited_for(tmp_path, monkeypatch):
    folder = tmp_path / "plan"
    stale = tmp_path / ".plan.lock"
    stale.write_text("host-that-died pid 1\n")
    old = time.time() - 2 * lock.STALE_SECONDS
    os.utime(stale, (old, old))
    built = lock.build_once(folder, folder.is_dir, folder.mkdir, wait_seconds=5)
    assert built and folder.is_dir() and not stale.exists()

    other = tmp_path / "other"
    (tmp_path / ".other.lock").write_text("busy-host pid 7\n")  # fresh: someone is building
    monkeypatch.setattr(lock, "POLL_SECONDS", 0.05)
    with pytest.raises(DataError, match="busy-host pid 7.*xlstm-data plan CONFIG.yaml"):
        lock.build_once(other, other.is_dir, other.mkdir, wait_seconds=0.3)


def test_plan_command_builds_once_and_hosts_find_it(tmp_path, cache, capsys):
    config = tmp_path / "plan.yaml"
    config.write_text(
        f"data_config_type: token_cache\ncache_path: {cache}\nglobal_batch_size: 8\n"
        f"max_target_length: 64\ngrain_packing: true\nplan: global\n"
        f"plan_dir: {tmp_path / 'plans'}\n"
    )
    main(["plan", str(config), "--workers", "2"])  # built by two worker processes
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert first["workers"] == 2
    (plan,) = first["plans"]
    report = Path(plan["folder"]) / "report.json"
    assert report.is_file() and plan["rows"] > 0
    stamp = report.stat().st_mtime_ns
    main(["plan", str(config)])  # found, not built again
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report.stat().st_mtime_ns == stamp
    assert again["plans"] == first["plans"] and again["workers"] == 1
    configs, _ = load_configs(config)
    with make_grain_iterator(configs, jax.make_mesh((8,), ("data",)), [0]) as iterator:
        assert iterator.reader.fingerprint == plan["fingerprint"]
        assert report.stat().st_mtime_ns == stamp
