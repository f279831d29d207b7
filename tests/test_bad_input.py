"""Bad data, bad configs and tampered states, as a hostile user would try them: no silent loss
or duplication, no silent corruption, no hang, and every error names its file and the fix.
(IPFS endpoint faults are in tests/sources/ipfs/, killed processes in tests/test_workers.py.)"""

import json
import os
import textwrap
from pathlib import Path

import datasets
import jax
import numpy as np
import pytest
from conftest import write_jsonl

from xlstm_data import (
    ConfigError,
    DataError,
    GrainArrayRecordsDataConfig,
    HFHubDataConfig,
    InvalidRecordError,
    IpfsDataConfig,
    MemmapDataConfig,
    load_configs,
    load_tokenizer,
    make_grain_iterator,
)
from xlstm_data.checkpoint import DataIteratorHandler, DataIteratorRestore
from xlstm_data.loader import STATE_FORMAT_VERSION
from xlstm_data.sources.array_record import write_array_record_shards
from xlstm_data.sources.registry import open_source
from xlstm_data.tools.prepare import prepare_cache
from xlstm_data.tools.text_inputs import TextInput

MESH = jax.make_mesh((8,), ("data",))


def saved_state(configs, steps: int = 2) -> dict:
    with make_grain_iterator(configs, MESH, [0]) as iterator:
        for _ in range(steps):
            next(iterator)
        return json.loads(json.dumps(iterator.get_state()))


def refused_restore(state: dict, configs) -> str:
    with (
        make_grain_iterator(configs, MESH, [0]) as iterator,
        pytest.raises(ConfigError, match="another setup") as error,
    ):
        iterator.set_state(state)
    return str(error.value)


# Silent loss or duplication on restore: the setup identifies the data by its content.


def test_another_hf_dataset_of_the_same_row_count_is_refused(tmp_path, sp_model, documents):
    for name, texts in (("a", documents[:64]), ("b", documents[64:128])):
        datasets.Dataset.from_dict({"text": texts}).save_to_disk(tmp_path / name)

    def config(name):
        return HFHubDataConfig(
            hf_path=str(tmp_path / name), global_batch_size=8, max_target_length=32,
            tokenizer_path=str(sp_model), worker_count=0,
        )  # fmt: skip

    state = saved_state(config("a"))
    assert "configs[0].data: saved '64 rows, fingerprint" in refused_restore(state, config("b"))


def test_replaced_array_record_files_of_the_same_names_are_refused(tmp_path):
    def shards(first_token: int) -> GrainArrayRecordsDataConfig:
        records = [np.full(9, first_token + i, np.int32).tobytes() for i in range(64)]
        write_array_record_shards(records, tmp_path / "train", num_shards=2)
        return GrainArrayRecordsDataConfig(
            data_path=tmp_path, global_batch_size=8, max_target_length=16,
            tokenize_data=False, eod_token_id=0, worker_count=0,
        )  # fmt: skip

    state = saved_state(shards(100))
    assert "configs[0].data: saved '64 records in 2 files" in refused_restore(state, shards(200))


@pytest.mark.parametrize(
    ("field", "value", "layout"),
    [
        ("window_offset", 3, {"records": "windows", "window_offset": 0}),
        ("dtype", "int32", {"records": "windows", "window_offset": 0}),
        ("pad_token_id", 7, {"records": "documents", "pad_token_id": 0}),
    ],
)
def test_another_memmap_layout_is_refused(tmp_path, field, value, layout):
    np.arange(4000, dtype=np.uint32).tofile(tmp_path / "t.bin")
    common = {
        "data_files": str(tmp_path / "t.bin"), "global_batch_size": 8, "max_target_length": 16,
        "worker_count": 0, "dtype": "uint32", **layout,
    }  # fmt: skip
    if layout["records"] == "documents":
        rows = np.arange(4000, dtype=np.uint32).reshape(200, 20)
        np.save(tmp_path / "rows.npy", rows)
        common |= {"data_files": str(tmp_path / "rows.npy"), "dtype": "uint16"}
    state = saved_state(MemmapDataConfig(**common))
    message = refused_restore(state, MemmapDataConfig(**common | {field: value}))
    assert f"configs[0].{field}" in message


def test_another_vocab_size_with_skipped_records_is_refused(token_data):
    root, _ = token_data
    common = {
        "data_path": root, "global_batch_size": 8, "max_target_length": 16, "worker_count": 0,
        "tokenize_data": False, "eod_token_id": 5, "invalid_records": "skip",
    }  # fmt: skip
    state = saved_state(GrainArrayRecordsDataConfig(**common, vocab_size=900))
    other = GrainArrayRecordsDataConfig(**common, vocab_size=1100)
    assert "configs[0].vocab_size: saved 900, now 1100" in refused_restore(state, other)


def test_reordered_ipfs_datasets_are_refused(tmp_path, sp_model):
    for dataset in ("news", "wiki"):
        (tmp_path / "tree" / dataset).mkdir(parents=True)
        lines = "\n".join(f"{dataset} line {i}" for i in range(40))
        (tmp_path / "tree" / dataset / "a.txt").write_text(lines)

    def config(names):
        return IpfsDataConfig(
            data_dir=tmp_path / "tree", dataset_names=names, document_unit="line",
            global_batch_size=8, max_target_length=16, tokenizer_path=str(sp_model),
            worker_count=0,
        )  # fmt: skip

    state = saved_state(config(["news", "wiki"]))
    message = refused_restore(state, config(["wiki", "news"]))
    assert "configs[0].dataset_names" in message and "configs[0].data" in message


def test_a_tampered_state_is_refused_with_a_message(token_data):
    root, _ = token_data
    config = GrainArrayRecordsDataConfig(
        data_path=root, global_batch_size=16, max_target_length=16, tokenize_data=False,
        eod_token_id=5, worker_count=0, grain_packing=True,
    )  # fmt: skip
    state = saved_state(config)
    tampered = json.loads(json.dumps(state))
    tampered["pipeline"]["parent"]["parent"]["skip_rows"] = -3
    cases = [
        ({k: v for k, v in state.items() if k != "setup"}, r"lacks \['setup'\]"),
        (state | {"step": "3"}, "changed after it was saved"),
        (state | {"step": 40}, "changed after it was saved"),
        (tampered, "changed after it was saved"),
        (state | {"version": 1}, f"format 1 is not {STATE_FORMAT_VERSION}; it was saved by "),
        ([1, 2], f"is not {STATE_FORMAT_VERSION}"),
        (state | {"window_step": -1}, "window_step -1 is not a step count"),
    ]
    with make_grain_iterator(config, MESH, [0]) as iterator:
        for broken, message in cases:
            with pytest.raises(ConfigError, match=message):
                iterator.set_state(broken)


# Silent corruption.


def test_int64_token_records_are_not_read_as_int32(tmp_path):
    records = [np.arange(10 + i, 30 + i, dtype=np.int64) for i in range(40)]
    write_array_record_shards([r.tobytes() for r in records], tmp_path / "train", num_shards=1)
    common = {
        "data_path": tmp_path, "global_batch_size": 8, "max_target_length": 32,
        "tokenize_data": False, "add_eod": False, "worker_count": 0, "num_epochs": 1,
        "drop_remainder": False,
    }  # fmt: skip
    with pytest.raises(
        DataError,
        match=r"record 0 of .*train_000000.arecord and every other.*"
        r"int64 token ids read as int32.*token_dtype='int64'",
    ):
        next(make_grain_iterator(GrainArrayRecordsDataConfig(**common), MESH, [0]))
    config = GrainArrayRecordsDataConfig(**common, token_dtype="int64")
    with make_grain_iterator(config, MESH, [0]) as iterator:
        rows = [row[row > 0].tolist() for batch in iterator for row in np.asarray(batch.targets)]
    assert [r for r in rows if r] == [r.tolist() for r in records]


def test_ids_beyond_int32_do_not_wrap_into_the_vocabulary(tmp_path):
    # A pre-tokenized HF column is int64: 2^32 + 5 cast to int32 would be the valid id 5.
    ids = [[1, 2, 3]] * 20 + [[4, 2**32 + 5, 6]] + [[7, 8]] * 20
    datasets.Dataset.from_dict({"text": ids}).save_to_disk(tmp_path / "ids")
    for vocab_size in (1000, None):  # (none: the plausible-vocabulary bound, 2^24)
        config = HFHubDataConfig(
            hf_path=str(tmp_path / "ids"), global_batch_size=8, max_target_length=8,
            tokenize_data=False, add_eod=False, vocab_size=vocab_size, worker_count=0,
            num_epochs=1,
        )  # fmt: skip
        refused = r"row 20 of .*ids.* holds ids outside .* larger vocabulary\? then set vocab_size"
        with pytest.raises(InvalidRecordError, match=refused):
            for _ in make_grain_iterator(config, MESH, [0]):
                pass


def test_a_plan_checks_ids_without_a_known_vocabulary(tmp_path):
    # uint32 ids past int32 become negative int32 ids: refused like online, with no vocab_size.
    rows = np.full((16, 8), 3, np.uint32)
    rows[5, 2] = 2**31 + 9
    np.save(tmp_path / "rows.npy", rows)
    for plan in ({"plan": "online"}, {"plan": "global", "plan_dir": str(tmp_path / "plans")}):
        config = MemmapDataConfig(
            data_files=str(tmp_path / "rows.npy"), records="documents", global_batch_size=8,
            max_target_length=8, num_epochs=1, **plan,
        )  # fmt: skip
        with pytest.raises(InvalidRecordError, match=r"document 5 of .*rows\.npy holds ids"):
            for _ in make_grain_iterator(config, MESH, [0]):
                pass


def test_an_eod_id_outside_the_vocabulary_is_refused(token_data):
    config = GrainArrayRecordsDataConfig(
        data_path=token_data[0], global_batch_size=8, max_target_length=16,
        tokenize_data=False, eod_token_id=5000, vocab_size=2000, worker_count=0,
    )  # fmt: skip
    with pytest.raises(ConfigError, match="eod_token_id 5000 .* not below the vocabulary size"):
        make_grain_iterator(config, MESH, [0])


def test_a_replaced_memmap_file_is_indexed_again_whatever_its_mtime(tmp_path):
    path = tmp_path / "stream.npy"
    np.save(path, np.tile(np.array([7, 8, 2], np.int32), 40))  # 40 documents
    config = MemmapDataConfig(
        data_files=str(path), records="documents", eod_token_id=2, global_batch_size=8,
        max_target_length=8,
    )  # fmt: skip
    assert len(open_source(config)) == 40
    old = os.stat(path).st_mtime_ns
    np.save(path, np.tile(np.array([7, 2], np.int32), 60))  # other data, 20 more documents
    os.utime(path, ns=(old - 10**9, old - 10**9))  # ... with an older mtime
    source = open_source(config)
    assert len(source) == 60 and source[59].tolist() == [7, 2]


# No hang.


def test_an_epoch_of_skipped_records_is_an_error_not_an_endless_loop(tmp_path):
    records = [np.full(5, 5000, np.int32).tobytes() for _ in range(32)]  # ids outside the vocab
    write_array_record_shards(records, tmp_path / "train", num_shards=1)
    config = GrainArrayRecordsDataConfig(
        data_path=tmp_path, global_batch_size=8, max_target_length=16, tokenize_data=False,
        eod_token_id=0, vocab_size=1000, invalid_records="skip", grain_packing=True,
        worker_count=0, read_block_size=8,
    )  # fmt: skip
    with pytest.raises(DataError, match="hold no token.*every record is empty or was skipped"):
        next(make_grain_iterator(config, MESH, [0]))


# Errors that name their file.


def test_a_corrupt_chunk_names_its_shard(tmp_path):
    (path,) = write_array_record_shards(
        [os.urandom(2000) for _ in range(300)], tmp_path / "train", num_shards=1
    )
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 3, len(data) // 3 + 64):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    source = open_source(
        GrainArrayRecordsDataConfig(
            data_path=tmp_path, global_batch_size=8, max_target_length=8, tokenize_data=False
        )
    )
    with pytest.raises(DataError, match=f"ArrayRecord file {path} cannot be read .*damaged"):
        source.__getitems__(list(range(300)))


def test_prepare_rewrites_a_truncated_shard_of_a_finished_cache(tmp_path, documents, sp_model):
    source = TextInput((str(write_jsonl(tmp_path / "docs.jsonl", documents[:300])),))
    output = tmp_path / "cache"
    prepare_cache(source, output, str(sp_model), documents_per_shard=100, progress=False)
    shard = output / "shard_000001.arecord"
    whole = shard.read_bytes()
    shard.write_bytes(whole[: len(whole) // 2])
    metadata = prepare_cache(source, output, str(sp_model), documents_per_shard=100, progress=False)
    assert metadata.complete and shard.read_bytes() == whole


def test_an_empty_hf_folder_is_named(tmp_path, sp_model):
    datasets.Dataset.from_dict({"text": []}).save_to_disk(tmp_path / "empty")
    config = HFHubDataConfig(
        hf_path=str(tmp_path / "empty"), global_batch_size=8, max_target_length=8,
        tokenizer_path=str(sp_model),
    )  # fmt: skip
    with pytest.raises(DataError, match=f"HF dataset '{tmp_path / 'empty'}' cannot be loaded"):
        open_source(config)


def test_corrupt_tokenizer_files_are_named(tmp_path, sp_model, hf_tokenizer_dir):
    model = tmp_path / "broken.model"
    model.write_bytes(Path(sp_model).read_bytes()[:500])
    with pytest.raises(DataError, match=f"Tokenizer {model} is not a readable sentencepiece"):
        load_tokenizer(model)
    folder = tmp_path / "hf"
    folder.mkdir()
    text = (Path(hf_tokenizer_dir) / "tokenizer.json").read_text()
    (folder / "tokenizer.json").write_text(text[: len(text) // 2])
    with pytest.raises(DataError, match=f"Tokenizer {folder / 'tokenizer.json'} is not a readable"):
        load_tokenizer(folder)


@pytest.mark.parametrize("weights", [[float("inf"), 1.0], ["0.7", 0.3], [float("nan"), 1], [1]])
def test_bad_mixture_weights_are_refused(token_data, weights):
    config = GrainArrayRecordsDataConfig(
        data_path=token_data[0], global_batch_size=8, max_target_length=16,
        tokenize_data=False, eod_token_id=5, worker_count=0,
    )  # fmt: skip
    with pytest.raises(ConfigError, match="dataset_weights"):
        make_grain_iterator([config, config], MESH, [0], dataset_weights=weights)


@pytest.mark.parametrize("factor", [float("inf"), float("nan"), "2"])
def test_bad_rampup_factors_are_refused(token_data, factor):
    with pytest.raises(ConfigError, match="batch_rampup_factors .* finite factors > 0"):
        GrainArrayRecordsDataConfig(
            data_path=token_data[0], global_batch_size=8, max_target_length=16,
            tokenize_data=False, batch_rampup_factors={2: factor},
        )  # fmt: skip


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("just a string", "expected a mapping at the top level"),
        ("datasets: [not-a-mapping]", r"datasets\[0\]: expected a mapping"),
        ("datasets: {a: 1}", "'datasets' must be a non-empty list"),
        ("defaults: [1]\ndatasets: [{data_config_type: memmap}]", "'defaults' must be a mapping"),
        ("data_config_type: memmap\n  bad: : indent", "is not valid YAML"),
        (
            "datasets:\n  - {data_config_type: memmap, data_files: x.bin, global_batch_size: 8,"
            " max_target_length: 8, weight: inf}",
            "not a finite positive number",
        ),
    ],
)
def test_malformed_yaml_names_the_file(tmp_path, text, message):
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(text))
    with pytest.raises(ConfigError, match=message) as error:
        load_configs(path)
    assert str(path) in str(error.value)


def test_a_truncated_orbax_state_file_is_named(tmp_path, token_data):
    config = GrainArrayRecordsDataConfig(
        data_path=token_data[0], global_batch_size=8, max_target_length=16,
        tokenize_data=False, eod_token_id=5, worker_count=0,
    )  # fmt: skip
    state = saved_state(config)
    file = tmp_path / "process_0-of-1.json"
    text = json.dumps(state)
    file.write_text(text[: len(text) // 2])
    with (
        make_grain_iterator(config, MESH, [0]) as iterator,
        pytest.raises(DataError, match=f"{file} is not valid JSON .*damaged"),
    ):
        DataIteratorHandler().restore(tmp_path, DataIteratorRestore(iterator))


def test_memmap_fields_without_effect_on_the_layout_are_refused(tmp_path):
    np.save(tmp_path / "t.npy", np.arange(400, dtype=np.uint16))
    common = {"data_files": str(tmp_path / "t.npy"), "global_batch_size": 8, "max_target_length": 8}
    with pytest.raises(ConfigError, match="pad_token_id .* windows keep every token"):
        MemmapDataConfig(**common, pad_token_id=0)
    with pytest.raises(ConfigError, match="window_offset .* records='documents' remove it"):
        MemmapDataConfig(**common, records="documents", eod_token_id=1, window_offset=2)
    with pytest.raises(ConfigError, match="dtype = 'int32' has no effect: .* only .npy files"):
        open_source(MemmapDataConfig(**common, dtype="int32"))
