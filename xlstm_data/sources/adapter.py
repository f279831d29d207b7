"""Any random-access dataset a caller hands to `preprocess_dataset`, as a `DocumentSource`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from xlstm_data.sources.huggingface import HuggingFaceSource, is_hf_dataset
from xlstm_data.sources.padded import PaddedDataset
from xlstm_data.sources.protocol import DocumentSource


class RecordsAdapter(DocumentSource):
    """A list, a Grain source or any object with `__len__` and `__getitem__` (and, where it has
    one, a batched `__getitems__`)."""

    def __init__(self, dataset: Any):
        self.dataset = dataset
        self._batched = getattr(dataset, "__getitems__", None)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: int) -> Any:
        return self.dataset[key]

    def __getitems__(self, keys: Sequence[int]) -> list[Any]:
        keys = [int(k) for k in keys]
        return list(self._batched(keys)) if self._batched else [self.dataset[k] for k in keys]

    def describe(self, key: int) -> str:
        return f"record {key} of {type(self.dataset).__name__}"

    def identity(self) -> str:
        return f"{len(self)} records of {type(self.dataset).__name__}"


def as_document_source(dataset: Any, column: str) -> DocumentSource:
    """`dataset` itself when it is a `DocumentSource`, else wrapped (an HF `datasets.Dataset`
    reads `column` with one Arrow take per batch; a `PaddedDataset` is unwrapped, since the
    pipeline pads by itself)."""
    if isinstance(dataset, PaddedDataset):
        dataset = dataset.dataset
    if isinstance(dataset, DocumentSource):
        return dataset
    if is_hf_dataset(dataset):
        return HuggingFaceSource(dataset, column)
    return RecordsAdapter(dataset)
