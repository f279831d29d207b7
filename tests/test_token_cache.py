"""Token caches: prepare (every input format, parallel, resumable), load, merge, CLI, iterator."""

import csv
import json
import os

import datasets
import jax
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xlstm_data import (
    GrainArrayRecordsDataConfig,
    TokenCacheDataConfig,
    load_tokenizer,
    make_grain_iterator,
)
from xlstm_data.cache.merge import equalized_selection, merge_caches
from xlstm_data.cache.metadata import CacheMetadata, cache_dtype
from xlstm_data.cache.prepare import prepare_cache
from xlstm_data.cache.readers import TextInput
from xlstm_data.cli import main
from xlstm_data.corpus import write_array_record_shards
from xlstm_data.sources.token_cache import load_token_cache

MESH = jax.make_mesh((8,), ("data",))


def write_jsonl(path, texts):
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    return path


def tokenized(tokenizer, texts) -> list[list[int]]:
    ids = tokenizer.encode_batch(texts)
    return [d.tolist() for d in np.split(ids.tokens, np.cumsum(ids.lengths)[:-1])]


@pytest.fixture(scope="module")
def cache(tmp_path_factory, documents, sp_model):
    folder = tmp_path_factory.mktemp("cache")
    source = TextInput((str(write_jsonl(folder / "docs.jsonl", documents)),))
    prepare_cache(source, folder / "cache", str(sp_model), documents_per_shard=150, progress=False)
    return folder / "cache"


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
    assert (config.eod_token_id, config.vocab_size) == (tokenizer.eos_id, 300)


def test_other_tokenizer_or_unfinished_cache_is_refused(cache, sp_model, hf_tokenizer_dir):
    hf = load_tokenizer(hf_tokenizer_dir)
    with pytest.raises(ValueError) as error:
        TokenCacheDataConfig(
            cache_path=cache,
            tokenizer_path=str(hf_tokenizer_dir),
            global_batch_size=8,
            max_target_length=32,
        )
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


def write_inputs(folder, texts) -> dict[str, str]:
    """The texts in every input format; returns format -> path."""
    (folder / "text").mkdir()
    for i, text in enumerate(texts):
        (folder / "text" / f"doc_{i}.txt").write_text(text)
    (folder / "lines.txt").write_text("\n".join(texts) + "\n")
    with open(folder / "docs.csv", "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["id", "text"])
        writer.writerows(enumerate(texts))
    write_jsonl(folder / "docs.jsonl", texts)
    pq.write_table(pa.table({"text": texts}), folder / "docs.parquet", row_group_size=7)
    datasets.Dataset.from_dict({"text": texts}).save_to_disk(str(folder / "hf"))
    write_array_record_shards([t.encode() for t in texts], folder / "arecord", num_shards=3)
    return {
        "text": str(folder / "text"),
        "lines": str(folder / "lines.txt"),
        "csv": str(folder / "docs.csv"),
        "jsonl": str(folder / "docs.jsonl"),
        "parquet": str(folder / "docs.parquet"),
        "hf": str(folder / "hf"),
        "arrayrecord": str(folder / "arecord"),
    }


def test_every_input_format_reads_every_document_in_order(tmp_path, documents):
    texts = documents[:23]
    for fmt, path in write_inputs(tmp_path, texts).items():
        named = TextInput((path,), fmt)
        assert list(named.documents()) == texts, fmt
        if fmt != "lines":  # a .txt file means one document unless "lines" is asked for
            assert TextInput((path,)).resolved_format == fmt
    assert list(TextInput((str(tmp_path / "text" / "doc_1*.txt"),)).documents()) == [
        texts[1],
        *texts[10:20],
    ]


def test_bad_inputs_are_named(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"text": "fine"}\n{"text": \n')
    with pytest.raises(ValueError, match=r"Line 2 of .*bad\.jsonl is not valid JSON"):
        list(TextInput((str(tmp_path / "bad.jsonl"),)).documents())
    (tmp_path / "field.jsonl").write_text('{"body": "x"}\n')
    with pytest.raises(ValueError, match=r"field\.jsonl has no field 'text' .*--column"):
        list(TextInput((str(tmp_path / "field.jsonl"),)).documents())
    (tmp_path / "docs.csv").write_text("id,body\n1,x\n")
    with pytest.raises(ValueError, match=r"docs\.csv has no column 'text' \(columns: \['id'"):
        list(TextInput((str(tmp_path / "docs.csv"),)).documents())
    with pytest.raises(ValueError, match="does not exist"):
        TextInput((str(tmp_path / "missing.txt"),)).files  # noqa: B018
    (tmp_path / "data.xyz").write_text("?")
    with pytest.raises(ValueError, match="Cannot tell the format .* --format"):
        TextInput((str(tmp_path / "data.xyz"),)).resolved_format  # noqa: B018


def test_interrupted_prepare_resumes_where_it_stopped(tmp_path, documents, sp_model):
    source = TextInput((str(write_jsonl(tmp_path / "docs.jsonl", documents)),))
    output = tmp_path / "cache"
    finished = prepare_cache(
        source, output, str(sp_model), documents_per_shard=100, workers=1, progress=False
    )
    shards = {s.file: output / s.file for s in finished.shards}
    before = {name: os.stat(path) for name, path in shards.items()}
    # What a kill leaves: shards 0-2 recorded, 3 and 5 written but not recorded, 4 half
    # written under its temporary name.
    interrupted = CacheMetadata.read(output)
    interrupted.shards, interrupted.complete = interrupted.shards[:3], False
    interrupted.write(output)
    (output / "shard_000004.arecord").rename(output / ".partial-shard4_000000.arecord")
    resumed = prepare_cache(
        source, output, str(sp_model), documents_per_shard=100, workers=2, progress=False
    )
    assert resumed == finished
    assert not list(output.glob(".partial*"))
    for name, path in shards.items():
        unchanged = (os.stat(path).st_ino, os.stat(path).st_mtime_ns) == (
            before[name].st_ino,
            before[name].st_mtime_ns,
        )
        assert unchanged == (name < "shard_000003"), name
    tokenizer = load_tokenizer(sp_model)
    assert [d.tolist() for d in load_token_cache(output).__getitems__(list(range(600)))] == (
        tokenized(tokenizer, documents)
    )
    with pytest.raises(ValueError, match="other settings .*documents_per_shard: 100 vs 50"):
        prepare_cache(source, output, str(sp_model), documents_per_shard=50, progress=False)


@settings(max_examples=50, deadline=None)
@given(sizes=st.lists(st.integers(1, 300), min_size=1, max_size=5), seed=st.integers(0, 2**32))
def test_equalized_selection_takes_the_smallest_count_from_each(sizes, seed):
    selection = equalized_selection(sizes, seed)
    for keys, size in zip(selection, sizes, strict=True):
        assert len(keys) == min(sizes) and len(np.unique(keys)) == len(keys)
        assert (np.diff(keys) > 0).all() and keys.min() >= 0 and keys.max() < size
    again = equalized_selection(sizes, seed)
    assert all(np.array_equal(a, b) for a, b in zip(selection, again, strict=True))


def test_merge_keeps_or_equalizes_documents(cache, tmp_path, documents, sp_model):
    small = tmp_path / "small"
    texts = documents[:40]
    prepare_cache(TextInput((str(write_jsonl(tmp_path / "s.jsonl", texts)),)), small, str(sp_model))
    big = load_token_cache(cache).__getitems__(list(range(600)))
    merged = merge_caches([small, cache], tmp_path / "all", documents_per_shard=256)
    assert [s.documents for s in merged.shards] == [256, 256, 128]
    everything = load_token_cache(tmp_path / "all").__getitems__(list(range(640)))
    expected = tokenized(load_tokenizer(sp_model), texts) + [d.tolist() for d in big]
    assert [d.tolist() for d in everything] == expected
    equal = merge_caches([small, cache], tmp_path / "equal", equalize=True, seed=3)
    assert equal.documents == 80 and equal.source["documents_taken"] == [40, 40]
    taken = load_token_cache(tmp_path / "equal").__getitems__(list(range(80)))
    picked = equalized_selection([40, 600], seed=3)[1]
    assert [d.tolist() for d in taken[40:]] == [big[i].tolist() for i in picked]


def test_merge_refuses_caches_of_other_tokenizers(cache, tmp_path, documents, hf_tokenizer_dir):
    source = TextInput((str(write_jsonl(tmp_path / "docs.jsonl", documents[:10])),))
    prepare_cache(source, tmp_path / "hf", str(hf_tokenizer_dir), progress=False)
    with pytest.raises(ValueError, match="differ in tokenizer_fingerprint"):
        merge_caches([cache, tmp_path / "hf"], tmp_path / "merged")


def test_prepare_and_merge_commands(tmp_path, documents, sp_model, capsys):
    for name, texts in (("a", documents[:30]), ("b", documents[30:50])):
        (tmp_path / f"{name}.txt").write_text("\n".join(texts))
        main(["prepare", str(tmp_path / f"{name}.txt"), "--format", "lines", "-o",
              str(tmp_path / name), "--tokenizer", str(sp_model), "--quiet"])  # fmt: skip
    main(["merge", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(tmp_path / "ab"),
          "--equalize", "--quiet"])  # fmt: skip
    reports = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["documents"] for r in reports] == [30, 20, 40]
    assert CacheMetadata.read(tmp_path / "ab").source["equalize"]
