"""xlstm-data prepare: every input format, parallel, resumable."""

import csv
import os

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import tokenized, write_jsonl

from xlstm_data import load_tokenizer
from xlstm_data.sources.array_record import write_array_record_shards
from xlstm_data.sources.token_cache import load_token_cache
from xlstm_data.sources.token_cache_files import CacheMetadata
from xlstm_data.tools.prepare import prepare_cache
from xlstm_data.tools.text_inputs import TextInput


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
    (output / "shard_000004.arecord").rename(output / ".shard_000004.arecord.j4x1q0.tmp")
    resumed = prepare_cache(
        source, output, str(sp_model), documents_per_shard=100, workers=2, progress=False
    )
    assert resumed == finished
    assert not list(output.glob(".*.tmp"))
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
