"""HF datasets from local data files and save_to_disk folders, and their errors."""

import json

import datasets
import pytest

from xlstm_data.config import HFHubDataConfig
from xlstm_data.errors import ConfigError
from xlstm_data.sources.huggingface import load_huggingface_dataset


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
    with pytest.raises(ConfigError, match="hf_data_files of .* cannot apply to hf_path"):
        load_huggingface_dataset(hf_config(path, hf_data_files="/elsewhere/*.json"))


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
    saved = hf_config(tmp_path / "saved", hf_data_files="/nope/*.json", hf_name="x")
    with pytest.raises(ConfigError, match="hf_name, hf_data_files of .* save_to_disk folder"):
        load_huggingface_dataset(saved)  # would be ignored: the folder loads as it was saved
    with pytest.raises(ValueError, match="no split 'test'"):
        load_huggingface_dataset(hf_config(tmp_path / "saved", split="test"))
    with pytest.raises(ValueError, match="no column 'body'"):
        load_huggingface_dataset(hf_config(tmp_path / "saved", data_column="body"))
