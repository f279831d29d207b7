"""Real multihost runs: 2 and 4 local JAX processes over loopback with gloo collectives."""

import numpy as np
import pytest
from processes import run_processes, start_processes, wait_for_files

from xlstm_data import load_tokenizer

pytestmark = pytest.mark.multiprocess


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


def test_killed_job_resumes_bit_for_bit_from_its_orbax_checkpoint(tmp_path, text_data, sp_model):
    config = {
        "data_config_type": "grain_arrayrecord",
        "data_path": str(text_data),
        "global_batch_size": 8,
        "max_target_length": 64,
        "tokenizer_path": str(sp_model),
        "grain_packing": True,
        "shuffle_data": True,
        "worker_count": 1,
        "read_block_size": 32,
        "batch_rampup_factors": {0: 0.5, 6: 1.0},
    }
    save_at, after = 5, 4
    reference = run_processes(
        tmp_path / "reference", 2, config, "--max-steps", str(save_at + after)
    )
    checkpoint = str(tmp_path / "checkpoints")
    processes, outputs = start_processes(
        tmp_path / "first",
        2,
        config,
        "--mode",
        "save",
        "--save-at",
        str(save_at),
        "--checkpoint",
        checkpoint,
    )
    wait_for_files(processes, outputs)  # then preempted: SIGKILL, no clean-up
    resumed = run_processes(
        tmp_path / "resumed",
        2,
        config,
        "--mode",
        "restore",
        "--checkpoint",
        checkpoint,
        "--max-steps",
        str(after),
    )
    for before, after_restore in zip(reference, resumed, strict=True):
        assert after_restore["shapes"] == before["shapes"][save_at:]
        assert after_restore["targets"] == before["targets"][save_at:]
        assert after_restore["segmentation"] == before["segmentation"][save_at:]
    # A checkpoint of 2 processes does not restore on 1.
    processes, _ = start_processes(
        tmp_path / "single", 1, config, "--mode", "restore", "--checkpoint", checkpoint
    )
    log = processes[0].communicate(timeout=240)[0]
    assert processes[0].returncode != 0
    assert "No data iterator state process_0-of-1.json" in log
