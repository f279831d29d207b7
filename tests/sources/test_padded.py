"""PaddedDataset: a dataset followed by empty records up to a whole number of batches."""

import datasets
import pytest

from xlstm_data.sources.array_record import load_array_record_dataset, write_array_record_shards
from xlstm_data.sources.padded import PaddedDataset, pad_dataset


def test_padded_dataset_pads_with_empty_records(tmp_path):
    write_array_record_shards([b"a", b"b", b"c"], tmp_path, num_shards=1)
    padded = pad_dataset(load_array_record_dataset(tmp_path), 4, "text")
    assert len(padded) == 4 and padded.full_dataset_length == 4
    assert [padded[i] for i in range(4)] == [b"a", b"b", b"c", b""]
    assert padded.__getitems__([3, 1]) == [b"", b"b"]
    with pytest.raises(ValueError, match="only pads"):
        PaddedDataset(padded.dataset, 2, "text")


def test_hf_padded_records_are_dicts(tmp_path):
    dataset = datasets.Dataset.from_dict({"text": ["a", "b", "c"]})
    padded = pad_dataset(dataset, 2, "text")
    assert padded.__getitems__([3, 0]) == [{"text": ""}, {"text": "a"}]
