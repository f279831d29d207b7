"""ArrayRecord and HF sources, padding, and the errors for bad folders and files."""

import json

import datasets
import pytest

from xlstm_data.config import HFHubDataConfig
from xlstm_data.corpus import write_array_record_shards
from xlstm_data.sources.array_record import load_array_record_dataset
from xlstm_data.sources.huggingface import load_huggingface_dataset
from xlstm_data.sources.padded import PaddedDataset, pad_dataset


def test_shards_are_read_in_shard_index_order(tmp_path):
    for shard in (10, 2, 1):
        write_array_record_shards(
            [f"{shard}-{i}".encode() for i in range(3)], tmp_path / "tmp", num_shards=1
        )
        (tmp_path / "tmp" / "train_000000.arecord").rename(tmp_path / f"train_{shard}.arecord")
    source = load_array_record_dataset(tmp_path)
    assert [source[i] for i in range(len(source))] == [
        f"{s}-{i}".encode() for s in (1, 2, 10) for i in range(3)
    ]
    assert source.describe(4) == f"record 1 of {tmp_path / 'train_2.arecord'}"
    assert source.__getitems__([8, 0]) == [b"10-2", b"1-0"]


def test_missing_empty_and_corrupt_folders(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_array_record_dataset(tmp_path / "missing")
    with pytest.raises(ValueError, match=r"no \*\.arecord files"):
        load_array_record_dataset(tmp_path)
    (tmp_path / "train_000000.arecord").write_bytes(b"this is not an array record file" * 10)
    with pytest.raises(ValueError, match="train_000000.arecord cannot be opened.*corrupt"):
        load_array_record_dataset(tmp_path)


def test_padded_dataset_pads_with_empty_records(tmp_path):
    write_array_record_shards([b"a", b"b", b"c"], tmp_path, num_shards=1)
    padded = pad_dataset(load_array_record_dataset(tmp_path), 4, "text")
    assert len(padded) == 4 and padded.full_dataset_length == 4
    assert [padded[i] for i in range(4)] == [b"a", b"b", b"c", b""]
    assert padded.__getitems__([3, 1]) == [b"", b"b"]
    with pytest.raises(ValueError, match="only pads"):
        PaddedDataset(padded.dataset, 2, "text")


def hf_config(path, **overrides):
    return HFHubDataConfig(
        **(
            {
                "hf_path": str(path),
                "global_batch_size": 2,
                "max_target_length": 8,
                "tokenizer_path": "t",
            }
            | overrides
        )
    )


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv", ".parquet", ".txt"])
def test_hf_local_data_files(tmp_path, suffix):
    texts = ["first document", "second, with a comma", "third"]
    path = tmp_path / f"data{suffix}"
    if suffix in (".jsonl", ".json"):
        path.write_text("\n".join(json.dumps({"text": t}) for t in texts))
    elif suffix == ".txt":
        path.write_text("\n".join(texts))
    else:
        frame = datasets.Dataset.from_dict({"text": texts})
        frame.to_csv(path) if suffix == ".csv" else frame.to_parquet(path)
    dataset = load_huggingface_dataset(hf_config(path))
    assert dataset["text"] == texts
    builder = {
        ".jsonl": "json",
        ".json": "json",
        ".csv": "csv",
        ".parquet": "parquet",
        ".txt": "text",
    }[suffix]
    by_builder = load_huggingface_dataset(hf_config(builder, hf_data_files=str(path)))
    assert by_builder["text"] == texts


def test_hf_saved_to_disk_and_split_errors(tmp_path):
    splits = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({"text": ["a", "b"], "id": [1, 2]}),
            "validation": datasets.Dataset.from_dict({"text": ["c"], "id": [3]}),
        }
    )
    splits.save_to_disk(tmp_path / "saved")
    dataset = load_huggingface_dataset(hf_config(tmp_path / "saved", split="validation"))
    assert dataset.column_names == ["text"] and dataset["text"] == ["c"]
    with pytest.raises(ValueError, match="no split 'test'"):
        load_huggingface_dataset(hf_config(tmp_path / "saved", split="test"))
    with pytest.raises(ValueError, match="no column 'body'"):
        load_huggingface_dataset(hf_config(tmp_path / "saved", data_column="body"))


def test_hf_padded_records_are_dicts(tmp_path):
    dataset = datasets.Dataset.from_dict({"text": ["a", "b", "c"]})
    padded = pad_dataset(dataset, 2, "text")
    assert padded.__getitems__([3, 0]) == [{"text": ""}, {"text": "a"}]


def test_truncated_shard_is_reported(tmp_path):
    (path,) = write_array_record_shards([b"x" * 1000] * 200, tmp_path, num_shards=1)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match=f"{path.name} cannot be opened"):
        load_array_record_dataset(tmp_path)
