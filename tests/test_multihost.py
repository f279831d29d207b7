"""Real multihost runs: 2 and 4 local JAX processes over loopback with gloo collectives."""

import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xlstm_data import load_tokenizer

WORKER = Path(__file__).with_name("multihost_worker.py")
pytestmark = pytest.mark.multiprocess


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_processes(tmp_path, count: int, config: dict, *, max_steps: int = 1000) -> list[dict]:
    port = free_port()
    outputs = [tmp_path / f"process_{i}.json" for i in range(count)]
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                str(WORKER),
                "--process-id",
                str(i),
                "--num-processes",
                str(count),
                "--port",
                str(port),
                "--config",
                json.dumps(config),
                "--max-steps",
                str(max_steps),
                "--out",
                str(outputs[i]),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(count)
    ]
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


def segments_of(seen: dict) -> list[list[int]]:
    found = []
    for targets, segmentation in zip(seen["targets"], seen["segmentation"], strict=True):
        for index, row in targets.items():
            row, ids = np.array(row), np.array(segmentation[index])
            found += [row[ids == s].tolist() for s in range(1, ids.max(initial=0) + 1)]
    return found


@pytest.mark.parametrize("count", [2, 4])
def test_each_record_once_per_epoch_on_every_host_count(tmp_path, token_data, count):
    root, records = token_data
    config = {
        "data_config_type": "grain_arrayrecord",
        "data_path": str(root),
        "global_batch_size": 8,
        "max_target_length": 48,
        "tokenize_data": False,
        "eod_token_id": 5,
        "num_epochs": 1,
        "drop_remainder": False,
        "truncate_documents": True,
        "worker_count": 0,
    }
    seen = run_processes(tmp_path, count, config)
    lengths = {len(s["shapes"]) for s in seen}
    assert lengths == {26}, "every host yields as many batches (203 records padded to 208)"
    assert all(s["length"] == 26 for s in seen)
    assert all(shape == [8, 48] for s in seen for shape in s["shapes"])
    rows_per_process = [sum(len(t) for t in s["targets"]) for s in seen]
    assert rows_per_process == [26 * 8 // count] * count
    found = [r for s in seen for r in segments_of(s)]
    assert sorted(found) == sorted(r.tolist() + [5] for r in records)


def test_packed_epoch_ends_together_and_loses_nothing(tmp_path, text_data, sp_model, documents):
    config = {
        "data_config_type": "grain_arrayrecord",
        "data_path": str(text_data),
        "global_batch_size": 8,
        "max_target_length": 64,
        "tokenizer_path": str(sp_model),
        "grain_packing": True,
        "num_epochs": 1,
        "drop_remainder": False,
        "shuffle_data": True,
        "worker_count": 0,
        "read_block_size": 32,
    }
    seen = run_processes(tmp_path, 2, config)
    assert len(seen[0]["shapes"]) == len(seen[1]["shapes"]) > 0
    tokenizer = load_tokenizer(sp_model)
    expected = []
    for text in documents:
        ids = tokenizer.encode_batch([text]).tokens.tolist() + [tokenizer.eos_id]
        expected += [ids[i : i + 64] for i in range(0, len(ids), 64)]
    found = [r for s in seen for r in segments_of(s)]
    assert sorted(found) == sorted(expected)
