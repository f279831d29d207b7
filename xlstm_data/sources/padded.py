"""Padding a source to a whole number of global batches, so every host gets as many records."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grain

from xlstm_data.errors import ConfigError
from xlstm_data.stages.epochs import epoch_length


class PaddedDataset(grain.sources.RandomAccessDataSource):
    """`dataset` followed by empty records up to `full_dataset_length`.

    Padding records come out as `empty_sequence` (`b""` for byte records, `{column: ""}` for
    dict records); the pipeline turns them into fully masked rows (segmentation 0).
    """

    def __init__(self, dataset: Any, full_dataset_length: int, column_name: str):
        if full_dataset_length < len(dataset):
            raise ConfigError(
                f"full_dataset_length={full_dataset_length} is shorter than the dataset "
                f"({len(dataset)} records); PaddedDataset only pads."
            )
        self.dataset = dataset
        self.full_dataset_length = full_dataset_length
        self.column_name = column_name

    def __len__(self) -> int:
        return self.full_dataset_length

    @property
    def empty_sequence(self) -> Any:
        """What a padding record looks like for this kind of dataset."""
        if hasattr(self.dataset, "column_names"):  # datasets.Dataset yields dict records
            return {self.column_name: ""}
        return b""

    def __getitem__(self, record_key: int) -> Any:
        if record_key >= len(self.dataset):
            return self.empty_sequence
        return self.dataset[record_key]

    def __getitems__(self, record_keys: Sequence[int]) -> list[Any]:
        """Reads the real records in one batched call (parallel ArrayRecord / Arrow take)."""
        size = len(self.dataset)
        real = [int(k) for k in record_keys if k < size]
        records = iter(read_records(self.dataset, real, self.column_name) if real else [])
        empty = self.empty_sequence
        return [next(records) if k < size else empty for k in record_keys]

    def __repr__(self) -> str:
        return (
            f"PaddedDataset({self.dataset!r}, full_dataset_length={self.full_dataset_length}, "
            f"column_name={self.column_name!r})"
        )


def read_records(dataset: Any, keys: list[int], column_name: str) -> list[Any]:
    """Records at `keys` with one call where the dataset supports it."""
    if hasattr(dataset, "column_names"):  # datasets.Dataset: one Arrow take, column-wise
        column = dataset[keys][column_name]
        return [{column_name: value} for value in column]
    if hasattr(dataset, "__getitems__"):
        return list(dataset.__getitems__(keys))
    return [dataset[k] for k in keys]


def pad_dataset(dataset: Any, global_batch_size: int, column_name: str) -> PaddedDataset:
    """`dataset` padded to the next multiple of `global_batch_size` records."""
    padded_length = epoch_length(
        len(dataset),
        global_batch_size=global_batch_size,
        drop_remainder=False,
        max_steps_per_epoch=None,
        name=type(dataset).__name__,
    )
    return PaddedDataset(dataset, padded_length, column_name)
