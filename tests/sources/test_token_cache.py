"""Token caches as sources: round trip, metadata, refusals, mixing with other sources."""

import shutil

import jax
import numpy as np
import pytest
from conftest import tokenized

from xlstm_data import (
    GrainArrayRecordsDataConfig,
    TokenCacheDataConfig,
    load_tokenizer,
    make_grain_iterator,
)
from xlstm_data.errors import ConfigError, DataError
from xlstm_data.readers.inputs import open_input
from xlstm_data.sources.array_record import ArrayRecordSource, write_array_record_file
from xlstm_data.sources.registry import open_source
from xlstm_data.sources.token_cache import load_token_cache
from xlstm_data.sources.token_cache_files import CacheMetadata, cache_dtype, lengths_file

MESH = jax.make_mesh((8,), ("data",))


def test_round_trip_gives_the_tokens_of_the_text(cache, documents, sp_model):
    tokenizer = load_tokenizer(sp_model)
    expected = tokenized(tokenizer, documents)
    source = load_token_cache(cache)
    assert len(source.files) == 4 and source[0].dtype == np.uint16
    assert [d.tolist() for d in source.__getitems__(list(range(len(source))))] == expected
    config = TokenCacheDataConfig(
        cache_path=cache,
        global_batch_size=16,
        max_target_length=64,
        num_epochs=1,
        drop_remainder=False,
        worker_count=0,
    )
    rows = [
        t[s > 0].tolist()
        for b in make_grain_iterator(config, MESH, [0])
        for t, s in zip(np.asarray(b.targets), np.asarray(b.targets_segmentation), strict=True)
        if s.any()
    ]
    chunks = [d + [tokenizer.eos_id] for d in expected]
    assert rows == [d[i : i + 64] for d in chunks for i in range(0, len(d), 64)]


def test_metadata_describes_the_cache(cache, documents, sp_model):
    metadata = CacheMetadata.read(cache)
    tokenizer = load_tokenizer(sp_model)
    assert metadata.complete and metadata.documents == len(documents)
    assert metadata.tokens == sum(len(d) for d in tokenized(tokenizer, documents))
    assert [s.documents for s in metadata.shards] == [150] * 4
    assert (metadata.tokenizer_fingerprint, metadata.vocab_size) == (tokenizer.fingerprint, 300)
    assert (metadata.dtype, metadata.eod_token_id) == ("uint16", tokenizer.eos_id)
    assert metadata.source["format"] == "jsonl" and metadata.source["column"] == "text"
    assert cache_dtype(65_536) == "uint16" and cache_dtype(65_537) == "int32"
    config = TokenCacheDataConfig(cache_path=cache, global_batch_size=8, max_target_length=32)
    assert (config.eod_token_id, config.vocab_size) == (None, None)  # a config reads no files
    tokens = open_input(config).tokens  # the ids the pipeline uses come from the cache
    assert (tokens.eod_id, tokens.vocab_size) == (tokenizer.eos_id, 300)


def test_other_tokenizer_or_unfinished_cache_is_refused(cache, sp_model, hf_tokenizer_dir):
    hf = load_tokenizer(hf_tokenizer_dir)
    config = TokenCacheDataConfig(
        cache_path=cache,
        tokenizer_path=str(hf_tokenizer_dir),
        global_batch_size=8,
        max_target_length=32,
    )
    with pytest.raises(ConfigError) as error:
        open_source(config)
    message = str(error.value)
    assert str(cache) in message and hf.fingerprint in message
    assert load_tokenizer(sp_model).fingerprint in message
    metadata = CacheMetadata.read(cache)
    metadata.complete = False
    unfinished = cache.parent / "unfinished"
    unfinished.mkdir()
    metadata.write(unfinished)
    with pytest.raises(ValueError, match="unfinished .* run the same command again"):
        load_token_cache(unfinished)


def test_cache_mixes_and_packs_like_any_source(cache, text_data, sp_model):
    shared = {"global_batch_size": 16, "max_target_length": 64, "worker_count": 0}
    configs = [
        TokenCacheDataConfig(cache_path=cache, grain_packing=True, shuffle_data=True, **shared),
        GrainArrayRecordsDataConfig(
            data_path=text_data, tokenizer_path=str(sp_model), grain_packing=True, **shared
        ),
    ]
    with make_grain_iterator(configs, MESH, [0], dataset_weights=[1, 1]) as iterator:
        for _ in range(3):
            batch = next(iterator)
        assert iterator.padding_fraction < 0.1
    inputs, targets = np.asarray(batch.inputs), np.asarray(batch.targets)
    np.testing.assert_array_equal(inputs[:, 1:], targets[:, :-1])


def test_records_shorter_than_the_plan_says_name_their_document(cache, tmp_path):
    copy = tmp_path / "cache"
    shutil.copytree(cache, copy)
    metadata = CacheMetadata.read(copy)
    saved = copy / lengths_file(metadata.shards[0].file)
    lengths = np.load(saved)
    lengths[3] += 50  # the lengths file no longer matches its shard's records
    np.save(saved, lengths)
    config = TokenCacheDataConfig(
        cache_path=copy, global_batch_size=8, max_target_length=64, grain_packing=True,
        plan="global", plan_dir=str(tmp_path / "plans"), num_epochs=1, worker_count=0,
    )  # fmt: skip
    with pytest.raises(DataError, match=r"document 3 of .* holds fewer tokens than the plan"):
        for _ in make_grain_iterator(config, MESH, [0]):
            pass


def test_a_cache_of_other_ids_or_a_damaged_record_is_refused(cache, tmp_path):
    copy = tmp_path / "cache"
    shutil.copytree(cache, copy)
    metadata = CacheMetadata.read(copy)
    shard = copy / metadata.shards[0].file
    records = ArrayRecordSource([str(shard)], [metadata.shards[0].documents]).__getitems__(
        range(metadata.shards[0].documents)
    )
    records[7] = records[7][:-1]  # one byte short: no whole number of ids
    shard.unlink()
    write_array_record_file(shard, records)
    with pytest.raises(DataError, match=r"document 7 of .* has \d+ bytes, not a multiple of"):
        load_token_cache(copy).__getitems__([6, 7, 8])
    # int64 ids would be cast to int32 (2^32 + 5 → 5): only uint16 and int32 caches exist.
    metadata.dtype = "int64"
    metadata.write(copy)
    with pytest.raises(DataError, match=r"says the tokens are 'int64'; a token cache holds uint16"):
        load_token_cache(copy)
