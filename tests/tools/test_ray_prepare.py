"""`prepare --ray` and plan builds on a real two-node Ray cluster on 127.0.0.1: the cache and
the plan are byte for byte the local ones, tasks run on both nodes, a killed worker and an
interrupted run change nothing."""

import filecmp
import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from plan_data import stream, write_stream

from xlstm_data.readers.plan.build import build_plan
from xlstm_data.readers.plan.parallel import RayTasks
from xlstm_data.sources.token_cache_files import METADATA_FILE, CacheMetadata
from xlstm_data.tools import text_inputs
from xlstm_data.tools.cli import main
from xlstm_data.tools.prepare import prepare_cache
from xlstm_data.tools.ray_prepare import prepare_cache_on_ray, shard_ranges
from xlstm_data.tools.text_inputs import TextInput

# Every node on loopback: Ray otherwise swaps 127.0.0.1 for the machine's address.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
ray = pytest.importorskip("ray")
pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    node = {"num_cpus": 1, "object_store_memory": 80 << 20, "node_ip_address": "127.0.0.1",
            "include_dashboard": False}  # fmt: skip
    cluster = Cluster(initialize_head=True, head_node_args=node)
    try:
        cluster.add_node(**node)
        ray.init(address=cluster.address, log_to_driver=False)
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, documents):
    """The same documents as jsonl (3 files, blank lines), lines and parquet (row groups)."""
    root = tmp_path_factory.mktemp("ray_inputs")
    texts = [d.replace("\n", " ") for d in documents]
    parts = [texts[:250], texts[250:270], texts[270:]]
    for i, part in enumerate(parts):
        lines = [json.dumps({"text": t}) + ("\n\n" if n % 50 == 0 else "\n")
                 for n, t in enumerate(part)]  # fmt: skip
        (root / f"part{i}.jsonl").write_text("".join(lines))
    (root / "lines.txt").write_text("\r\n".join(texts[:300]) + "\n")
    pq.write_table(pa.table({"text": texts}), root / "docs.parquet", row_group_size=64)
    return {
        "jsonl": TextInput((str(root / "part*.jsonl"),)),
        "lines": TextInput((str(root / "lines.txt"),), format="lines"),
        "parquet": TextInput((str(root / "docs.parquet"),)),
    }


def same_folders(a: Path, b: Path) -> bool:
    names, others = sorted(os.listdir(a)), sorted(os.listdir(b))
    assert names == others, set(names) ^ set(others)
    differ = [n for n in names if not filecmp.cmp(a / n, b / n, shallow=False)]
    assert not differ, differ
    return True


@pytest.mark.parametrize("name", ["jsonl", "lines", "parquet"])
def test_ranges_read_what_the_stream_gives(inputs, name, monkeypatch):
    monkeypatch.setattr(text_inputs, "SEEK_EVERY", 7)
    source = inputs[name]
    indexes = [source.index_file(u) for u in range(source.units)]
    counts = [i.documents for i in indexes]
    read = [
        text
        for shard in range(-(-sum(counts) // 45))
        for unit, start, count in shard_ranges(counts, shard, 45)
        for text in source.read_range(unit, start, count, indexes[unit])
    ]
    assert read == list(source.documents())


@pytest.mark.parametrize("name", ["jsonl", "lines", "parquet"])
def test_the_cache_is_the_local_one_byte_for_byte(cluster, inputs, sp_model, tmp_path, name):
    source = inputs[name]
    local = prepare_cache(source, tmp_path / "local", str(sp_model), documents_per_shard=40,
                          workers=1, progress=False)  # fmt: skip
    run = prepare_cache_on_ray(source, tmp_path / "ray", str(sp_model), documents_per_shard=40,
                               progress=False)  # fmt: skip
    assert run.metadata == local
    assert same_folders(tmp_path / "local", tmp_path / "ray")
    assert len(run.nodes) == 2, "the tasks ran on both nodes"


def workers_running(task: bytes) -> list[int]:
    """Ray worker processes running `task` now (Ray names the process after it)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and task in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def kill_one(task: bytes, killed: list[int]) -> None:
    """SIGKILLs the first worker seen running `task` (within 60 s)."""
    deadline = time.monotonic() + 60
    while not killed and time.monotonic() < deadline:
        for pid in workers_running(task):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            break
        time.sleep(0.005)


def test_a_killed_worker_and_an_interrupted_run_change_nothing(cluster, inputs, sp_model,
                                                               tmp_path):  # fmt: skip
    source = inputs["jsonl"]
    prepare_cache(source, tmp_path / "local", str(sp_model), documents_per_shard=20, workers=1,
                  progress=False)  # fmt: skip
    killed: list[int] = []

    killer = threading.Thread(target=kill_one, args=(b"_tokenize_range", killed))
    killer.start()
    prepare_cache_on_ray(source, tmp_path / "ray", str(sp_model), documents_per_shard=20,
                         progress=False)  # fmt: skip
    killer.join()
    assert killed, "a tokenizing worker was killed mid-run"
    assert same_folders(tmp_path / "local", tmp_path / "ray")
    # An interrupted run: the last shards never written, the metadata unfinished.
    folder = tmp_path / "ray"
    metadata = CacheMetadata.read(folder)
    for shard in metadata.shards[-3:]:
        (folder / shard.file).unlink()
    metadata.shards, metadata.complete = metadata.shards[:-3], False
    metadata.write(folder)
    before = {s.file: (folder / s.file).stat().st_mtime_ns for s in metadata.shards}
    resumed = prepare_cache_on_ray(source, folder, str(sp_model), documents_per_shard=20,
                                   progress=False)  # fmt: skip
    assert resumed.metadata.complete and same_folders(tmp_path / "local", folder)
    assert all((folder / f).stat().st_mtime_ns == t for f, t in before.items()), "kept shards"
    assert json.loads((folder / METADATA_FILE).read_text())["complete"]
    assert np.array_equal(
        np.load(folder / "shard_000000.lengths.npy"),
        np.load(tmp_path / "local" / "shard_000000.lengths.npy"),
    )


def test_the_plan_is_the_local_one_byte_for_byte_even_when_a_worker_dies(cluster, tmp_path):
    rng = np.random.default_rng(3)
    lengths = [rng.lognormal(np.log(300), 1.2, n).astype(np.int64) for n in (100_000, 30_000)]
    lengths[1][::50] = 0
    setup = dict(row_length=2048, seed=2, window_rows=128, progress=False)
    build_plan(lengths, [0.6, 0.4], tmp_path / "local", **setup)
    runner = RayTasks()
    build_plan(lengths, [0.6, 0.4], tmp_path / "ray", workers=runner, **setup)
    assert same_folders(tmp_path / "local", tmp_path / "ray")
    assert len(runner.nodes) == 2, "the tasks ran on both nodes"
    killed: list[int] = []
    killer = threading.Thread(target=kill_one, args=(b"_plan_task", killed))
    killer.start()
    build_plan(lengths, [0.6, 0.4], tmp_path / "killed", workers=runner, **setup)
    killer.join()
    assert killed, "a planning worker was killed mid-run"
    assert same_folders(tmp_path / "local", tmp_path / "killed")


def test_plan_command_on_ray_stores_the_local_plan(cluster, tmp_path, capsys):
    tokens = write_stream(tmp_path / "web", stream(3_000, seed=4, first_token=1000))
    plans = {}
    for name, flags in (("local", []), ("ray", ["--ray", "auto"])):
        config = tmp_path / f"{name}.yaml"
        config.write_text(
            f"data_config_type: memmap\ndata_files: {tokens}\nrecords: documents\n"
            f"eod_token_id: 2\nglobal_batch_size: 8\nmax_target_length: 64\nplan: global\n"
            f"plan_window_rows: 16\nplan_dir: {tmp_path / name}\n"
        )
        main(["plan", str(config), *flags])
        (plans[name],) = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["plans"]
    assert plans["ray"]["fingerprint"] == plans["local"]["fingerprint"]
    assert same_folders(Path(plans["local"]["folder"]), Path(plans["ray"]["folder"]))
