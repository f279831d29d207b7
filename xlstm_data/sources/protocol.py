"""The written interface of a data source: everything the readers ask of one, and nothing more.

A source is a Grain `RandomAccessDataSource` of records, one document each, that also reads a
batch of keys at once, says where a record lives, identifies its data, and tells what it knows
about its tokens. Sources subclass `DocumentSource` to inherit the defaults of what they do not
know. Arbitrary datasets (for `preprocess_dataset`) are adapted by `adapter.as_document_source`.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import grain
import numpy as np

from xlstm_data.io import content_stamps


@dataclasses.dataclass(frozen=True)
class TokenInfo:
    """What a pre-tokenized source says about its ids (None: nothing)."""

    vocab_size: int | None = None
    eod_token_id: int | None = None
    tokenizer_fingerprint: str | None = None
    """The `Tokenizer.fingerprint` of the tokenizer that made the ids."""
    tokenizer_path: str | None = None
    """Where that tokenizer was, when the ids were made (to decode them for people)."""


@runtime_checkable
class DocumentSource(grain.sources.RandomAccessDataSource, Protocol):
    """Records (UTF-8 text, token arrays or dicts holding either) under keys 0 … len - 1."""

    def __len__(self) -> int: ...

    def __getitem__(self, key: int) -> Any: ...

    def __getitems__(self, keys: Sequence[int]) -> list[Any]:
        """The records at `keys`, in that order, with one batched read where storage allows."""
        ...

    def describe(self, key: int) -> str:
        """Where record `key` is, for error messages ("record 3 of /data/train_000001.arecord")."""
        ...

    def identity(self) -> str:
        """Identifies the data for saved states and plans: the same data gives the same text
        wherever it is mounted, other data another."""
        ...

    def document_lengths(self) -> np.ndarray | None:
        """Tokens per document where known without reading every record (pre-tokenized
        sources), else None. Global plans need them."""
        return None

    @property
    def reads_release_gil(self) -> bool:
        """Whether reading spends most of its time without the GIL (decompressing large
        records in C++), so that two threads reading blocks ahead overlap."""
        return False

    @property
    def token_info(self) -> TokenInfo:
        return TokenInfo()

    def plans_folder(self) -> Path | None:
        """Where global plans of this data are kept unless `plan_dir` says otherwise."""
        return None


def files_identity(records: int, files: Sequence[str | Path]) -> str:
    """Record count and the files' names and content stamps, in reading order (not folders:
    data may be mounted elsewhere on restore; not modification times: copies change them)."""
    stamps = zip(files, content_stamps(files), strict=True)
    named = "\n".join(f"{Path(f).name}={stamp}" for f, stamp in stamps)
    return f"{records} records in {len(files)} files ({hash_text(named)})"


def hash_text(text: str) -> str:
    """A short sha256 of `text`, for identities."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]
