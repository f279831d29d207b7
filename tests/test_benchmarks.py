"""Every benchmark script runs end to end on tiny data and prints its JSON line (no timing is
asserted: the figures are the scripts' output, not a test)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

SMALL = {
    "pipeline_throughput": ["--documents", "300", "--steps", "6", "--batch", "4",
                            "--length", "256"],
    "tokenize_throughput": ["--documents", "1000", "--steps", "4", "--batch", "4",
                            "--length", "256"],
    "mixture_throughput": ["--documents", "300", "--steps", "6", "--batch", "4",
                           "--length", "256"],
    "startup_time": ["--shards", "20"],
    "cache_throughput": ["--documents", "1000", "--steps", "6"],
    "memmap_memory": ["--steps", "5"],
    "restore_time": ["--records", "20000", "--packed-steps", "20"],
    "plan_build": ["--documents", "10000", "--read-documents", "2000", "--steps", "6",
                   "--open-documents", "20000"],
    "ray_prepare": ["--documents", "600", "--files", "3", "--documents-per-shard", "50"],
}  # fmt: skip


def test_every_benchmark_is_covered():
    scripts = {p.stem for p in BENCHMARKS.glob("*.py")} - {"harness"}
    assert scripts == set(SMALL)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_benchmark_runs(name, tmp_path):
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / f"{name}.py"), "--workdir", str(tmp_path),
         "--repeats", "1", "--seconds", "0", *SMALL[name]],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["benchmark"]
