"""Reading a block of records and turning it into texts or token documents.

Records are UTF-8 text (bytes or str, possibly in a dict column) or int32 token arrays (raw
bytes or arrays). A record that is not what the config says it is gets an error naming its file
and position, or is skipped and counted when `invalid_records="skip"`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from xlstm_data.documents import (
    MAX_PLAUSIBLE_VOCAB,
    TOKEN_DTYPE,
    Documents,
    as_token_ids,
    outside_vocabulary,
)
from xlstm_data.errors import DataError, InvalidRecordError

LOGGER = logging.getLogger(__name__)


@dataclasses.dataclass
class RecordBlock:
    """Raw records of one read block, with their keys in the (padded) source."""

    keys: np.ndarray
    records: list[Any]


@dataclasses.dataclass
class TextBlock:
    texts: list[str]
    counts: Counter


def count_empty_documents(documents: Documents) -> None:
    """Counts real documents without tokens (padding and skipped records are counted already)."""
    counts = documents.counts
    empty = int((documents.lengths == 0).sum())
    counts["empty_documents"] += empty - counts["padding_records"] - counts["invalid_records"]


class ReadRecords:
    """Record keys → records, with one batched read (parallel for ArrayRecord, one Arrow take)."""

    def __init__(self, source: Any):
        self.source = source

    def __call__(self, keys: np.ndarray) -> RecordBlock:
        return RecordBlock(keys, list(self.source.__getitems__(keys.tolist())))


class _RecordParser:
    def __init__(
        self,
        *,
        column: str,
        num_records: int,
        invalid_records: Literal["raise", "skip"],
        describe: Callable[[int], str],
    ):
        self.column = column
        self.num_records = num_records
        self.invalid_records = invalid_records
        self.describe = describe

    def _unwrap(self, record: Any, key: int) -> Any:
        if isinstance(record, dict):
            if self.column not in record:
                raise InvalidRecordError(
                    f"{self.describe(key)} has no field {self.column!r} (fields: {list(record)}); "
                    "set data_column to the field that holds the data."
                )
            return record[self.column]
        return record

    def _invalid(self, key: int, problem: str, counts: Counter) -> None:
        message = f"{self.describe(key)} {problem}"
        if self.invalid_records == "raise":
            raise InvalidRecordError(message + " Fix the data or set invalid_records='skip'.")
        LOGGER.warning("Skipping %s.", message)
        counts["invalid_records"] += 1


class ParseText(_RecordParser):
    """Records → texts. Padding records (keys past the real data) become empty texts."""

    def __call__(self, block: RecordBlock) -> TextBlock:
        counts: Counter = Counter()
        texts: list[str] = []
        for key, record in zip(block.keys.tolist(), block.records, strict=True):
            if key >= self.num_records:
                counts["padding_records"] += 1
                texts.append("")
                continue
            value = self._unwrap(record, key)
            if isinstance(value, bytes):
                try:
                    value = value.decode("utf-8")
                except UnicodeDecodeError as error:
                    self._invalid(key, f"is not valid UTF-8 text ({error}).", counts)
                    value = ""
            elif not isinstance(value, str):
                self._invalid(
                    key,
                    f"holds {type(value).__name__}, not text; for token arrays "
                    "set tokenize_data=False.",
                    counts,
                )
                value = ""
            texts.append(value)
        return TextBlock(texts, counts)


class ParseTokens(_RecordParser):
    """Records of token ids (raw little-endian bytes of `token_dtype`, or arrays) → documents,
    wrapped in BOS / EOS / EOD ids like tokenized text.

    Raw records without a stated `token_dtype` are int32; a block whose every record has zeros
    at its second and fourth positions (and at every odd one) is int64 data read as int32 and
    refused, since real int32 records never all look like that.
    """

    def __init__(
        self,
        *,
        vocab_size: int | None,
        token_dtype: str | None = None,
        prefix: tuple[int, ...] = (),
        suffix: tuple[int, ...] = (),
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.bound = vocab_size or MAX_PLAUSIBLE_VOCAB
        self.token_dtype = token_dtype
        self.raw_dtype = np.dtype(token_dtype or "int32").newbyteorder("<")
        self.prefix = prefix
        self.suffix = suffix

    def __call__(self, block: RecordBlock) -> Documents:
        joined = self._join_raw_records(block)
        if joined is not None and self.token_dtype is None:
            self._refuse_int64_as_int32(joined, block)
        documents = joined or self._parse_each(block)
        count_empty_documents(documents)
        bad = outside_vocabulary(documents, self.bound)
        return self._reject(documents, block.keys, bad) if len(bad) else documents

    def _join_raw_records(self, block: RecordBlock) -> Documents | None:
        """The common case, raw int32 bytes records, with one C-level join for the block.

        The special tokens go in between the records, so the block costs one copy and no
        per-record numpy objects. None when a record is not plain int32 bytes.
        """
        records = block.records
        if self.raw_dtype.itemsize != 4 or not all(type(record) is bytes for record in records):
            return None
        sizes = np.fromiter(map(len, records), dtype=np.int64, count=len(records))
        if (sizes % 4).any():
            return None
        prefix = np.array(self.prefix, "<i4").tobytes()
        suffix = np.array(self.suffix, "<i4").tobytes()
        non_empty = [record for record in records if record]
        pieces = [suffix + prefix] * (2 * len(non_empty) + 1)
        pieces[0], pieces[1::2], pieces[-1] = prefix, non_empty, suffix
        joined = b"".join(pieces) if non_empty else b""
        extra = len(self.prefix) + len(self.suffix)
        lengths = np.where(sizes > 0, sizes // 4 + extra, 0)
        padding = int((block.keys >= self.num_records).sum())
        counts = Counter({"padding_records": padding} if padding else {})
        return Documents(np.frombuffer(joined, dtype="<i4"), lengths, counts)

    def _refuse_int64_as_int32(self, documents: Documents, block: RecordBlock) -> None:
        extra = len(self.prefix) + len(self.suffix)
        long = np.flatnonzero(documents.lengths - extra >= 4)
        if not len(long):
            return
        first = documents.starts[long] + len(self.prefix)
        tokens = documents.tokens
        if tokens[first + 1].any() or tokens[first + 3].any():
            return
        raw_lengths = (documents.lengths[long] - extra).tolist()
        odd = [tokens[s + 1 : s + n : 2] for s, n in zip(first.tolist(), raw_lengths, strict=True)]
        if np.concatenate(odd).any():
            return
        raise DataError(
            f"{self.describe(int(block.keys[long[0]]))} and every other record of its block "
            "hold 0 at every odd int32 position ([5, 0, 6, 0, ...]): int64 token ids read as "
            "int32. Set token_dtype='int64' (or token_dtype='int32' if these are the ids)."
        )

    def _parse_each(self, block: RecordBlock) -> Documents:
        counts: Counter = Counter()
        arrays: list[np.ndarray] = []
        for key, record in zip(block.keys.tolist(), block.records, strict=True):
            if key >= self.num_records:
                counts["padding_records"] += 1
                arrays.append(np.zeros(0, TOKEN_DTYPE))
            else:
                arrays.append(self._tokens(self._unwrap(record, key), key, counts))
        documents = Documents.from_lists(arrays, prefix=self.prefix, suffix=self.suffix)
        documents.counts = counts
        return documents

    def _tokens(self, value: Any, key: int, counts: Counter) -> np.ndarray:
        itemsize = self.raw_dtype.itemsize
        if isinstance(value, bytes) and len(value) % itemsize == 0:
            return as_token_ids(np.frombuffer(value, dtype=self.raw_dtype))
        if isinstance(value, str):
            self._invalid(
                key,
                "holds text where int32 token ids are expected; set "
                "tokenize_data=True to tokenize it.",
                counts,
            )
        elif isinstance(value, bytes):
            self._invalid(
                key,
                f"has {len(value)} bytes, not a multiple of {itemsize}, so it is not "
                f"an array of {self.raw_dtype.name} token ids (text? then set "
                "tokenize_data=True; other ids? then set token_dtype).",
                counts,
            )
        elif (array := np.asarray(value)).dtype.kind in "iu":
            return as_token_ids(array).reshape(-1)
        else:
            self._invalid(key, f"holds {array.dtype} values, not integer token ids.", counts)
        return np.zeros(0, TOKEN_DTYPE)

    def _reject(self, documents: Documents, keys: np.ndarray, bad: np.ndarray) -> Documents:
        """The block without its documents `bad` (ids outside the vocabulary), or an error."""
        lengths = documents.lengths.copy()
        for doc in bad.tolist():
            ids = documents.tokens[documents.starts[doc] : documents.starts[doc] + lengths[doc]]
            self._invalid(
                int(keys[doc]),
                f"holds ids outside [0, {self.bound}) (min {ids.min()}, max {ids.max()}; ids "
                "beyond int32 count as -1 or 2147483647): not token ids of this vocabulary "
                "(ids of a larger vocabulary? then set vocab_size to it; text stored as "
                "bytes? then set tokenize_data=True).",
                documents.counts,
            )
            lengths[doc] = 0
        keep = np.repeat(lengths > 0, documents.lengths)
        return Documents(documents.tokens[keep], lengths, documents.counts)
