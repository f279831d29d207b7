"""The config and tokenizer surface of `compat.xlstm_jax`: Path fields, source-only configs,
train/eval defaults, `load_tokenizer`'s argument order."""

import dataclasses
from pathlib import Path

import jax
import pytest

from xlstm_data.compat.xlstm_jax import (
    GrainArrayRecordsDataConfig,
    HFHubDataConfig,
    SyntheticDataConfig,
    create_data_iterator,
    load_tokenizer,
)
from xlstm_data.compat.xlstm_jax.grain_data_processing import load_huggingface_dataset
from xlstm_data.errors import ConfigError


def test_every_path_field_takes_a_pathlib_path(tmp_path, sp_model):
    config = HFHubDataConfig(
        hf_path=Path("json"),
        hf_data_files={"train": [tmp_path / "a.jsonl"]},
        hf_data_dir=tmp_path,
        hf_cache_dir=tmp_path / "cache",
        tokenizer_path=sp_model,
        plan_dir=None,
        global_batch_size=8,
        max_target_length=16,
    )
    assert config.hf_path == "json" and config.tokenizer_path == str(sp_model)
    assert config.hf_data_files == {"train": [str(tmp_path / "a.jsonl")]}
    assert config.hf_cache_dir == str(tmp_path / "cache")


def test_a_source_only_config_loads_its_data_but_builds_no_iterator(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"text": "one"}\n{"text": "two"}\n')
    config = HFHubDataConfig(
        hf_path="json",
        hf_data_files=str(tmp_path / "a.jsonl"),
        global_batch_size=8,
        max_target_length=-1,
        tokenizer_path="unused",
    )
    assert load_huggingface_dataset(config)["text"] == ["one", "two"]
    with pytest.raises(ConfigError, match="max_target_length = -1 names a source only"):
        create_data_iterator(config, jax.make_mesh((8,), ("dp",)))


def test_train_and_eval_defaults(tmp_path):
    shared = {"data_path": tmp_path, "global_batch_size": 8, "max_target_length": 16,
              "tokenize_data": False}  # fmt: skip
    train_kwargs = {"shuffle_data": False}
    train, evaluation = GrainArrayRecordsDataConfig.create_train_eval_configs(
        train_kwargs, {"split": "test"}, **shared
    )
    assert train_kwargs == {"shuffle_data": False}  # the caller's dict is left alone
    assert (train.shuffle_data, train.drop_remainder, train.split, train.num_epochs) == (
        False, True, "train", None
    )  # fmt: skip
    assert (evaluation.shuffle_data, evaluation.drop_remainder, evaluation.split) == (
        False, False, "test"
    )  # fmt: skip
    assert evaluation.num_epochs == 1
    synthetic_train, synthetic_eval = SyntheticDataConfig.create_train_eval_configs(
        global_batch_size=8, max_target_length=16
    )
    assert (synthetic_train.shuffle_data, synthetic_eval.shuffle_data) == (True, False)
    assert not hasattr(synthetic_train, "split")
    assert {f.name for f in dataclasses.fields(SyntheticDataConfig)} >= {
        "global_batch_size", "max_target_length", "num_batches", "data_shuffle_seed"
    }  # fmt: skip


def test_load_tokenizer_takes_xlstm_jax_arguments(sp_model):
    plain = load_tokenizer(str(sp_model), False, False)
    wrapped = load_tokenizer(str(sp_model), True, True, None, None)
    ids = plain("a short text")["input_ids"]
    assert wrapped.encode("a short text") == [wrapped.bos_token_id, *ids, wrapped.eos_token_id]
    assert plain(["a", "b c"])["input_ids"] == [plain.encode("a"), plain.encode("b c")]
    assert plain.decode(ids) == "a short text"
    assert len(plain) == plain.vocab_size == plain.tokenizer.vocab_size
