"""A token cache (written by `xlstm-data prepare` or `merge`) as a Grain source.

Record i is document i as a numpy array of the cache's dtype (uint16 or int32), read from the
cache's ArrayRecord shards; the pipeline takes it from there without tokenizing. The cache
knows its documents' lengths (global plans need them), its vocabulary and its EOD id.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from xlstm_data.errors import DataError
from xlstm_data.sources.array_record import ArrayRecordSource
from xlstm_data.sources.protocol import DocumentSource, TokenInfo
from xlstm_data.sources.token_cache_files import CacheMetadata, lengths_file, record_dtype
from xlstm_data.tokenizer import load_tokenizer

if TYPE_CHECKING:
    from xlstm_data.config import TokenCacheDataConfig


class TokenCacheSource(DocumentSource):
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
        return self.__getitems__([key])[0]

    def __getitems__(self, keys: Sequence[int]) -> list[np.ndarray]:
        records = self.records.__getitems__(keys)
        try:
            return [np.frombuffer(r, self.dtype) for r in records]
        except ValueError:  # a record's size is not a multiple of the token size
            slot = next(i for i, r in enumerate(records) if len(r) % self.dtype.itemsize)
            raise DataError(
                f"{self.describe(int(keys[slot]))} has {len(records[slot])} bytes, not a "
                f"multiple of {self.dtype.itemsize} ({self.metadata.dtype} ids): the cache is "
                "damaged; rebuild it with `xlstm-data prepare`."
            ) from None

    @property
    def reads_release_gil(self) -> bool:
        return self.records.reads_release_gil

    @property
    def token_info(self) -> TokenInfo:
        return TokenInfo(
            vocab_size=self.metadata.vocab_size,
            eod_token_id=self.metadata.eod_token_id,
            tokenizer_fingerprint=self.metadata.tokenizer_fingerprint,
            tokenizer_path=self.metadata.tokenizer_path,
        )

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

    def plans_folder(self) -> Path:
        return self.folder / "plans"

    def describe(self, key: int) -> str:
        file, position = self.records.locate(key)
        return f"document {position} of {file}"

    def identity(self) -> str:
        return self.records.identity()

    def __repr__(self) -> str:
        return f"TokenCacheSource({self.folder}, {len(self)} documents, {self.metadata.dtype})"


def load_token_cache(folder: str | os.PathLike) -> TokenCacheSource:
    """The finished cache in `folder`, or an error that says what is missing and what to do."""
    folder = Path(folder).expanduser()
    metadata = CacheMetadata.read(folder)
    for shard in metadata.shards:
        if not (folder / shard.file).is_file():
            raise DataError(
                f"Token cache {folder} lacks {shard.file}, which its metadata.json lists; "
                "rebuild the cache with `xlstm-data prepare`."
            )
    return TokenCacheSource(folder, metadata)


def open_token_cache_source(config: TokenCacheDataConfig) -> TokenCacheSource:
    """The cache of `config`, checked against `config.tokenizer_path` when one is given."""
    source = load_token_cache(config.cache_path)
    if config.tokenizer_path is not None:
        tokenizer = load_tokenizer(
            config.tokenizer_path, config.hf_access_token, config.hf_cache_dir
        )
        source.metadata.check_tokenizer(tokenizer, source.folder)
    return source
