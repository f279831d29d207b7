"""`xlstm-data inspect` shows exactly the tokens of a step; `bench` times a config; a global
plan's `documents_at(step)` names the pieces behind every row."""

import json

import jax
import numpy as np
import pytest
import yaml

from xlstm_data import load_configs, make_grain_iterator
from xlstm_data.sources.token_cache import load_token_cache
from xlstm_data.tools.bench import bench
from xlstm_data.tools.cli import main
from xlstm_data.tools.inspection import inspect_step


def write_yaml(path, document):
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.fixture
def plan_yaml(tmp_path, cache, sp_model):
    return write_yaml(
        tmp_path / "plan.yaml",
        {"data_config_type": "token_cache", "cache_path": str(cache),
         "tokenizer_path": str(sp_model), "global_batch_size": 8, "max_target_length": 64,
         "grain_packing": True, "plan": "global", "plan_dir": str(tmp_path / "plans"),
         "worker_count": 0},
    )  # fmt: skip


@pytest.fixture
def hf_mixture_yaml(tmp_path, cache, documents, sp_model):
    """HF json files and a token cache of the same tokenizer, online."""
    jsonl = tmp_path / "docs.jsonl"
    jsonl.write_text("".join(json.dumps({"text": d}) + "\n" for d in documents[:200]))
    return write_yaml(
        tmp_path / "mixture.yaml",
        {
            "defaults": {"global_batch_size": 8, "max_target_length": 64, "grain_packing": True,
                         "worker_count": 0},
            "datasets": [
                {"data_config_type": "huggingface", "name": "hf", "hf_path": "json",
                 "hf_data_files": str(jsonl), "tokenize_data": True,
                 "tokenizer_path": str(sp_model), "weight": 1.0},
                {"data_config_type": "token_cache", "name": "cache", "cache_path": str(cache),
                 "weight": 1.0},
            ],
        },
    )  # fmt: skip


def real_batch(config_path, step: int) -> dict[str, np.ndarray]:
    configs, weights = load_configs(config_path)
    mesh = jax.make_mesh((jax.device_count(),), ("data",))
    with make_grain_iterator(configs, mesh, [0], weights) as iterator:
        for _ in range(step):
            next(iterator)
        batch = next(iterator)
    return {name: np.asarray(getattr(batch, name)) for name in ("targets", "targets_segmentation")}


def check_rows_are_the_batch(result: dict, batch: dict) -> None:
    assert [row["tokens"] for row in result["rows"]] == batch["targets"].tolist()
    for row, segmentation in zip(result["rows"], batch["targets_segmentation"], strict=True):
        rebuilt = np.zeros(len(segmentation), np.int64)
        for segment in row["segments"]:
            begin = segment["offset"]
            rebuilt[begin : begin + len(segment["tokens"])] = segment["tokens"]
        assert rebuilt.tolist() == row["tokens"]
        assert row["padding"] == int((segmentation == 0).sum())
        assert len(row["segments"]) == segmentation.max()


def test_inspect_shows_the_tokens_of_a_planned_step_and_their_records(plan_yaml, cache):
    result = inspect_step(plan_yaml, step=3)
    check_rows_are_the_batch(result, real_batch(plan_yaml, 3))
    source = load_token_cache(cache)
    eod = source.token_info.eod_token_id
    pieces = 0
    for row in result["rows"]:
        for segment in row["segments"]:
            document = np.append(source[segment["record"]], eod)  # the EOD the pipeline adds
            assert document[segment["start"] : segment["end"]].tolist() == segment["tokens"]
            assert segment["where"] == source.describe(segment["record"])
            assert segment["text"].endswith("⟨eod⟩") == (segment["end"] == len(document))
            pieces += 1
    assert pieces >= len(result["rows"])


def test_a_cache_is_decoded_with_the_tokenizer_its_metadata_names(plan_yaml, tmp_path):
    config = yaml.safe_load(plan_yaml.read_text())
    del config["tokenizer_path"]
    bare = write_yaml(tmp_path / "bare.yaml", config)
    texts = [[s["text"] for s in row["segments"]] for row in inspect_step(bare, step=3)["rows"]]
    named = inspect_step(plan_yaml, step=3)["rows"]
    assert texts == [[s["text"] for s in row["segments"]] for row in named]
    assert not any(text.startswith("[") for row in texts for text in row)  # text, not ids


def test_documents_at_covers_every_row_of_the_global_batch(plan_yaml):
    configs, _ = load_configs(plan_yaml)
    mesh = jax.make_mesh((jax.device_count(),), ("data",))
    with make_grain_iterator(configs, mesh, [0]) as iterator:
        for _ in range(5):
            batch = next(iterator)
        pieces = iterator.documents_at(4)
    segmentation = np.asarray(batch.targets_segmentation)
    for row in range(len(segmentation)):
        mine = [p for p in pieces if p["row"] == row]
        assert len(mine) == segmentation[row].max()
        assert sum(p["end"] - p["start"] for p in mine) == np.count_nonzero(segmentation[row])
        assert [p["offset"] for p in mine] == sorted(p["offset"] for p in mine)


def test_inspect_of_a_host_and_an_online_mixture(tmp_path, hf_mixture_yaml, capsys):
    result = inspect_step(hf_mixture_yaml, step=2)
    check_rows_are_the_batch(result, real_batch(hf_mixture_yaml, 2))
    assert set(result["source_tokens"]) <= {"hf", "cache"}
    assert sum(result["source_tokens"].values()) > 0
    half = inspect_step(hf_mixture_yaml, step=2, host=1, hosts=2)
    assert [r["row"] for r in half["rows"]] == [4, 5, 6, 7]
    main(["inspect", str(hf_mixture_yaml), "--step", "1"])
    shown = capsys.readouterr().out
    assert "row 0: [" in shown and "⟨eod⟩]" in shown
    with pytest.raises(SystemExit) as exit:
        main(["inspect", str(hf_mixture_yaml), "--host", "2", "--hosts", "2"])
    assert exit.value.code == 2


def test_bench_against_the_raw_read(tmp_path, text_data, sp_model, capsys):
    config = write_yaml(
        tmp_path / "text.yaml",
        {"data_config_type": "grain_arrayrecord", "data_path": str(text_data),
         "tokenize_data": True, "tokenizer_path": str(sp_model), "global_batch_size": 8,
         "max_target_length": 64, "grain_packing": True, "worker_count": 0},
    )  # fmt: skip
    figures = bench(config, steps=20, progress=False)
    assert figures["batches"] == 20 and figures["tokens"] > 0
    assert figures["pipeline_tokens_per_s"] > 0 and figures["raw_read_tokens_per_s"] > 0
    assert figures["share_of_raw"] == pytest.approx(
        figures["pipeline_tokens_per_s"] / figures["raw_read_tokens_per_s"], rel=0.01
    )
    main(["bench", str(config), "--steps", "5", "--quiet"])
    lines = capsys.readouterr().out.splitlines()
    assert "of raw" in lines[0] and json.loads(lines[-1])["batches"] == 5
