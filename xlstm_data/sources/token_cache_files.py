"""The files of a token cache: `metadata.json`, the shards and their length files.

`metadata.json` says what built the cache, what it holds, and whether it is finished. It is
rewritten (atomically) after every shard, so an interrupted `prepare` knows which shards are
done; `complete` turns true only when the last shard is in. Readers refuse an unfinished cache
and a tokenizer other than the one the cache was built with.

A shard is an ArrayRecord file of token arrays, one record per document: the document's tokens
as raw little-endian values of the cache's dtype. It is written under a temporary name and
renamed when whole, after its length file, so a shard under its final name is complete.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from xlstm_data.errors import ConfigError, DataError
from xlstm_data.io import atomic_path
from xlstm_data.sources.array_record import write_array_record_file

if TYPE_CHECKING:
    from xlstm_data.tokenizer import Tokenizer

FORMAT_VERSION = 1
METADATA_FILE = "metadata.json"
# What a resumed or compared run must share with the cache it continues; the rest is progress.
_SETTINGS = (
    "format_version",
    "tokenizer_fingerprint",
    "vocab_size",
    "dtype",
    "eod_token_id",
    "source",
    "documents_per_shard",
)


def cache_dtype(vocab_size: int) -> str:
    """The smallest token type for a vocabulary: uint16 when every id fits, else int32."""
    return "uint16" if vocab_size <= 1 << 16 else "int32"


@dataclasses.dataclass
class ShardInfo:
    """One finished shard: its file name in the cache folder and what it holds."""

    file: str
    documents: int
    tokens: int


@dataclasses.dataclass
class CacheMetadata:
    """Contents of `metadata.json` (documents and tokens are also written as totals)."""

    tokenizer_path: str
    tokenizer_fingerprint: str
    vocab_size: int
    dtype: str
    eod_token_id: int | None
    source: dict[str, Any]
    documents_per_shard: int
    shards: list[ShardInfo] = dataclasses.field(default_factory=list)
    complete: bool = False
    format_version: int = FORMAT_VERSION

    @property
    def documents(self) -> int:
        return sum(s.documents for s in self.shards)

    @property
    def tokens(self) -> int:
        return sum(s.tokens for s in self.shards)

    def summary(self) -> dict[str, int]:
        return {"documents": self.documents, "tokens": self.tokens, "shards": len(self.shards)}

    def settings(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _SETTINGS}

    def differences(self, other: CacheMetadata, names: tuple[str, ...] = _SETTINGS) -> list[str]:
        """Settings among `names` that differ, as 'name: ours vs theirs'."""
        ours, theirs = self.settings(), other.settings()
        return [f"{k}: {ours[k]!r} vs {theirs[k]!r}" for k in names if ours[k] != theirs[k]]

    def add_shard(self, shard: ShardInfo) -> None:
        self.shards = sorted([*self.shards, shard], key=lambda s: s.file)

    def write(self, folder: Path) -> None:
        """Writes `metadata.json` under a temporary name first: a reader never sees half."""
        totals = {"documents": self.documents, "tokens": self.tokens}
        document = dataclasses.asdict(self) | totals
        with atomic_path(folder / METADATA_FILE) as partial:
            partial.write_text(json.dumps(document, indent=1) + "\n")

    @staticmethod
    def read(folder: Path, *, require_complete: bool = True) -> CacheMetadata:
        """The metadata of the cache in `folder`, or an error that says what to do."""
        file = folder / METADATA_FILE
        if not folder.is_dir():
            raise ConfigError(
                f"Token cache {folder} does not exist; build it with `xlstm-data prepare`."
            )
        if not file.is_file():
            raise ConfigError(
                f"{folder} is not a token cache (it has no {METADATA_FILE}); build one with "
                "`xlstm-data prepare`."
            )
        try:
            document = json.loads(file.read_text())
            for total in ("documents", "tokens"):
                document.pop(total, None)
            document["shards"] = [ShardInfo(**s) for s in document["shards"]]
            metadata = CacheMetadata(**document)
        except (ValueError, TypeError, KeyError) as error:
            raise DataError(
                f"{file} is unreadable ({error}); rebuild the cache with `xlstm-data prepare`."
            ) from error
        if metadata.format_version != FORMAT_VERSION:
            raise DataError(
                f"Token cache {folder} has format version {metadata.format_version}, but this "
                f"xlstm-data reads version {FORMAT_VERSION}; rebuild it with `xlstm-data prepare`."
            )
        if metadata.dtype not in ("uint16", "int32"):
            raise DataError(
                f"{file} says the tokens are {metadata.dtype!r}; a token cache holds uint16 or "
                "int32 ids (`cache_dtype`), so it was not written by `xlstm-data prepare`: "
                "rebuild it with `xlstm-data prepare`."
            )
        if require_complete and not metadata.complete:
            raise DataError(
                f"Token cache {folder} is unfinished ({len(metadata.shards)} shards written "
                "before `xlstm-data prepare` stopped); run the same command again to finish it."
            )
        return metadata

    def check_tokenizer(self, tokenizer: Tokenizer, folder: Path) -> None:
        """Raises when `tokenizer` is not the one the cache in `folder` was built with."""
        if tokenizer.fingerprint != self.tokenizer_fingerprint:
            raise ConfigError(
                f"Token cache {folder} was built with tokenizer {self.tokenizer_path} "
                f"(fingerprint {self.tokenizer_fingerprint}), but tokenizer_path "
                f"{tokenizer.path} has fingerprint {tokenizer.fingerprint}. Use the cache's "
                "tokenizer, or rebuild the cache with `xlstm-data prepare --tokenizer "
                f"{tokenizer.path}`."
            )


def shard_file(index: int) -> str:
    return f"shard_{index:06d}.arecord"


def record_dtype(dtype: str) -> np.dtype:
    """The on-disk token type: `dtype`, little-endian."""
    return np.dtype(dtype).newbyteorder("<")


def lengths_file(shard: str) -> str:
    """The file next to a shard with its documents' token counts (int64, one per document)."""
    return shard.removesuffix(".arecord") + ".lengths.npy"


def write_shard(folder: Path, index: int, documents: list[np.ndarray]) -> ShardInfo:
    """Writes shard `index` of token arrays (already in the cache's on-disk dtype), and the
    documents' lengths before it, so a shard under its final name always has them."""
    lengths = np.fromiter((d.size for d in documents), dtype=np.int64, count=len(documents))
    with (
        atomic_path(folder / lengths_file(shard_file(index))) as partial,
        open(partial, "wb") as out,
    ):
        np.save(out, lengths)
    write_array_record_file(folder / shard_file(index), [d.tobytes() for d in documents])
    return ShardInfo(shard_file(index), len(documents), int(lengths.sum()))
