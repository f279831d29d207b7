"""A token cache (written by `xlstm-data prepare` or `merge`) as a Grain source.

Record i is document i as a numpy array of the cache's dtype (uint16 or int32), read from the
cache's ArrayRecord shards; the pipeline takes it from there without tokenizing.
"""

from __future__ import annotations

import os
from pathlib import Path

import grain
import numpy as np

from xlstm_data.cache.metadata import CacheMetadata
from xlstm_data.cache.shards import lengths_file, record_dtype
from xlstm_data.sources.array_record import ArrayRecordSource


class TokenCacheSource(grain.sources.RandomAccessDataSource):
    """Documents of a token cache, in shard order. Pickles as file names and counts."""

    def __init__(self, folder: Path, metadata: CacheMetadata):
        self.folder = folder
        self.metadata = metadata
        self.dtype = record_dtype(metadata.dtype)
        self.records = ArrayRecordSource(
            [str(folder / s.file) for s in metadata.shards],
            [s.documents for s in metadata.shards],
        )

    @property
    def files(self) -> list[str]:
        return self.records.files

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: int) -> np.ndarray:
        return np.frombuffer(self.records[key], self.dtype)

    def __getitems__(self, keys: list[int]) -> list[np.ndarray]:
        return [np.frombuffer(r, self.dtype) for r in self.records.__getitems__(keys)]

    @property
    def tokenizer_fingerprint(self) -> str:
        return self.metadata.tokenizer_fingerprint

    def document_lengths(self) -> np.ndarray:
        """Tokens per document, from the shards' length files (read once if one is missing)."""
        lengths = []
        for shard, file in zip(self.metadata.shards, self.records.files, strict=True):
            saved = self.folder / lengths_file(shard.file)
            if saved.is_file():
                lengths.append(np.load(saved))
            else:
                reader = ArrayRecordSource([file], [shard.documents])
                records = reader.__getitems__(np.arange(shard.documents))
                sizes = np.fromiter(map(len, records), np.int64, count=shard.documents)
                lengths.append(sizes // self.dtype.itemsize)
        return np.concatenate(lengths)

    def describe(self, key: int) -> str:
        file, position = self.records.locate(key)
        return f"document {position} of {file}"

    def __repr__(self) -> str:
        return f"TokenCacheSource({self.folder}, {len(self)} documents, {self.metadata.dtype})"


def load_token_cache(folder: str | os.PathLike) -> TokenCacheSource:
    """The finished cache in `folder`, or an error that says what is missing and what to do."""
    folder = Path(folder).expanduser()
    metadata = CacheMetadata.read(folder)
    for shard in metadata.shards:
        if not (folder / shard.file).is_file():
            raise ValueError(
                f"Token cache {folder} lacks {shard.file}, which its metadata.json lists; "
                "rebuild the cache with `xlstm-data prepare`."
            )
    return TokenCacheSource(folder, metadata)
