"""Token files read in place: `.npy` arrays (1-D streams or 2-D rows) and raw `.bin` files.

Records are windows of a fixed number of tokens (nanoGPT's x/y) or documents. A source pickles
only paths, dtypes, shapes and offsets; each process opens the files itself on first use.

`np.load(mmap_mode="r")` reads a `.npy` file's header, but the tokens are read with positioned
reads (`os.preadv`) straight into numpy arrays, not through a memory map: the kernel maps
whole page-cache folios (up to 2 MB) into a process on every fault, so reading shuffled windows
through a map grows the resident set with the part of the file read (measured: 2.2 GB after
1,600 windows of a 4 GB file, against 0.1 GB for a 200 MB file). Positioned reads keep it at
the size of the records in flight while the page cache still serves repeated reads at memory
speed.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from xlstm_data.documents import TOKEN_DTYPE
from xlstm_data.errors import ConfigError, DataError
from xlstm_data.io import atomic_path, content_stamp, expand_paths
from xlstm_data.sources.protocol import DocumentSource, files_identity
from xlstm_data.sources.record_files import RecordFiles

if TYPE_CHECKING:
    from xlstm_data.config import MemmapDataConfig

LOGGER = logging.getLogger(__name__)

# Tokens per read when scanning a stream for EOD tokens: bounded memory, few system calls.
_SCAN_TOKENS = 1 << 24


@dataclasses.dataclass(frozen=True)
class TokenFile:
    """Where a file's tokens are: byte offset of the first, dtype, array shape."""

    path: str
    dtype: str
    shape: tuple[int, ...]
    offset: int

    @property
    def size(self) -> int:
        return math.prod(self.shape)


def inspect_token_file(path: str, bin_dtype: str) -> TokenFile:
    """Shape, dtype and data offset of a `.npy` or `.bin` token file, or an error naming it."""
    if not os.path.isfile(path):
        raise DataError(f"Token file {path} does not exist; check data_files.")
    suffix = Path(path).suffix
    if suffix == ".bin":
        size, itemsize = os.path.getsize(path), np.dtype(bin_dtype).itemsize
        if size % itemsize:
            raise DataError(
                f"Token file {path} has {size} bytes, not a multiple of {itemsize}, so it does "
                f"not hold {bin_dtype} tokens; set dtype to the type it was written with."
            )
        return TokenFile(path, np.dtype(bin_dtype).str, (size // itemsize,), 0)
    if suffix != ".npy":
        raise DataError(
            f"Token file {path} has suffix {suffix!r}; memmap sources read .npy arrays and raw "
            ".bin token files."
        )
    try:
        array = np.load(path, mmap_mode="r")
    except Exception as error:  # numpy raises ValueError/OSError/EOFError for bad headers
        raise DataError(f"Token file {path} is not a readable .npy file ({error}).") from error
    if array.ndim not in (1, 2):
        raise DataError(
            f"Token file {path} holds a {array.ndim}-D array of shape {array.shape}; save a 1-D "
            "token stream or 2-D rows (one document or sequence per row)."
        )
    if array.dtype.kind not in "iu":
        raise DataError(
            f"Token file {path} holds {array.dtype} values, not integer token ids; save the ids "
            "as uint16, uint32 or int32."
        )
    if array.ndim == 2 and not array.flags.c_contiguous:
        raise DataError(
            f"Token file {path} stores its rows in Fortran order; save it in C order "
            "(np.save(path, np.ascontiguousarray(tokens)))."
        )
    return TokenFile(path, array.dtype.str, tuple(array.shape), int(array.offset))


class _TokenFilesSource(DocumentSource):
    """Reads token ranges of a list of files with positioned reads (thread-safe, no shared
    file position), opening the files again in every process that unpickles the source."""

    def __init__(self, files: list[TokenFile]):
        self.token_files = files
        self._handles: list | None = None

    @property
    def files(self) -> list[str]:
        return [f.path for f in self.token_files]

    def _read(self, file_index: int, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Tokens [start, start + length) of one file for each pair, back to back."""
        file = self.token_files[file_index]
        if self._handles is None:
            # Open for the life of the source (closed when it is garbage-collected).
            self._handles = [open(path, "rb", buffering=0) for path in self.files]  # noqa: SIM115
        handles = self._handles
        out = np.empty(int(lengths.sum()), dtype=file.dtype)
        descriptor, itemsize, position = handles[file_index].fileno(), out.itemsize, 0
        for start, length in zip(starts.tolist(), lengths.tolist(), strict=True):
            view = out[position : position + length]
            if os.preadv(descriptor, [view], file.offset + start * itemsize) != view.nbytes:
                raise DataError(
                    f"Token file {file.path} ended before token {start + length}: it changed "
                    "after the source was opened; restart the pipeline."
                )
            position += length
        if out.dtype.itemsize > np.dtype(TOKEN_DTYPE).itemsize:
            _check_ids_fit(out, file.path)
        return out

    def _locate(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(file index, record index within that file) of each global record key."""
        return self._record_files.locate(keys)

    def _records(self, keys: Sequence[int], read_file) -> list[np.ndarray]:
        """Records at `keys`, read file by file with `read_file(file index, local indices)`."""
        records: list = [None] * len(keys)
        for file_index, slots, local in self._record_files.by_file(keys):
            for slot, record in zip(slots.tolist(), read_file(file_index, local), strict=True):
                records[slot] = record
        return records

    def _set_counts(self, counts: list[int]) -> None:
        self._record_files = RecordFiles(counts)

    def __len__(self) -> int:
        return len(self._record_files)

    def __getitem__(self, key: int) -> np.ndarray:
        return self.__getitems__([key])[0]

    def identity(self) -> str:
        return files_identity(len(self), self.files)

    def plans_folder(self) -> Path:
        return Path(self.files[0]).parent / "plans"

    def __getstate__(self) -> dict:
        return self.__dict__ | {"_handles": None}


def _check_ids_fit(tokens: np.ndarray, path: str) -> None:
    """Raises if an id of a file wider than the tokens' int32 would wrap into another id."""
    bounds = np.iinfo(TOKEN_DTYPE)
    if len(tokens) and (tokens.min() < bounds.min or tokens.max() > bounds.max):
        bad = tokens[(tokens < bounds.min) | (tokens > bounds.max)][0]
        raise DataError(
            f"Token file {path} holds id {bad}, beyond the int32 token ids (it would wrap into "
            "another id): the file is damaged or holds no token ids; save ids as uint16, "
            "uint32 or int32."
        )


def window_offsets(sizes: np.ndarray, window: int, offset: int | None, seed: int) -> np.ndarray:
    """First window start of each file: `offset`, or one drawn from `seed` among the starts
    that keep the most windows, 0 … size mod window (so pre-chunked rows stay whole)."""
    sizes = np.asarray(sizes, dtype=np.int64)
    if offset is not None:
        return np.full(len(sizes), offset, dtype=np.int64)
    return np.random.default_rng(seed).integers(0, sizes % window + 1, dtype=np.int64)


class MemmapWindows(_TokenFilesSource):
    """Record i: `window` consecutive tokens of one file. Windows tile each file without
    overlap from the file's offset (see `window_offsets`), so a window start is a function of
    (seed, record key); the pipeline's per-epoch permutation of keys sets the order."""

    def __init__(self, files: list[TokenFile], *, window: int, offset: int | None, seed: int):
        super().__init__(files)
        self.window = window
        sizes = np.array([f.size for f in files], dtype=np.int64)
        self.offsets = window_offsets(sizes, window, offset, seed)
        counts = (sizes - self.offsets) // window
        for file, first, count in zip(files, self.offsets.tolist(), counts.tolist(), strict=True):
            if count < 1:
                raise DataError(
                    f"Token file {file.path} holds {file.size} tokens, fewer than one window of "
                    f"{window} after offset {first}; remove it from data_files or lower "
                    "max_target_length."
                )
        self._set_counts(counts.tolist())
        outside = int(sizes.sum() - counts.sum() * window)
        LOGGER.info(
            "%d windows of %d tokens in %d files; %d tokens (file heads and tails) are in none.",
            len(self),
            window,
            len(files),
            outside,
        )

    def _read_windows(self, file_index: int, local: np.ndarray) -> np.ndarray:
        starts = self.offsets[file_index] + local * self.window
        tokens = self._read(file_index, starts, np.full(len(local), self.window))
        return tokens.reshape(len(local), self.window)

    def __getitems__(self, keys: Sequence[int]) -> list[np.ndarray]:
        return self._records(keys, self._read_windows)

    def document_lengths(self) -> np.ndarray:
        return np.full(len(self), self.window, dtype=np.int64)

    def locate(self, key: int) -> tuple[str, int]:
        """(file, position of the first token in it) of window `key`."""
        file_of, local = self._locate(np.array([key]))
        file_index = int(file_of[0])
        return self.files[file_index], int(self.offsets[file_index] + local[0] * self.window)

    def describe(self, key: int) -> str:
        file, start = self.locate(key)
        (index,) = self._locate(np.array([key]))[1].tolist()
        return f"window {index} of {file} (tokens {start} to {start + self.window})"

    def __repr__(self) -> str:
        return f"MemmapWindows({len(self.files)} files, {len(self)} windows of {self.window})"


def document_index_path(file: TokenFile, eod_token_id: int) -> Path:
    return Path(f"{file.path}.eod{eod_token_id}.ends.npy")


def document_ends(file: TokenFile, eod_token_id: int) -> np.ndarray:
    """End (exclusive) of every document of a 1-D stream: after each EOD token, and at the end
    of the file when its last document has no EOD. Read in chunks, so memory stays flat."""
    ends = []
    with open(file.path, "rb") as stream:
        stream.seek(file.offset)
        position = 0
        while position < file.size:
            count = min(_SCAN_TOKENS, file.size - position)
            chunk = np.fromfile(stream, dtype=file.dtype, count=count)
            ends.append(np.flatnonzero(chunk == eod_token_id) + position + 1)
            position += len(chunk)
    found = np.concatenate(ends) if ends else np.zeros(0, np.int64)
    if not found.size or found[-1] != file.size:
        found = np.append(found, file.size)
    return found.astype(np.int64)


def load_document_index(file: TokenFile, eod_token_id: int) -> Path:
    """The saved document ends of a 1-D stream, built next to it as `<file>.eod<id>.ends.npy`
    with the data file's content stamp beside it (`.ends.json`), and built again when the stamp
    no longer matches: a replaced file is indexed afresh whatever its modification time."""
    index = document_index_path(file, eod_token_id)
    stamp_file = index.with_suffix(".json")
    stamp = content_stamp(file.path)
    try:
        if index.is_file() and json.loads(stamp_file.read_text()).get("data") == stamp:
            return index
    except (OSError, ValueError):
        pass  # no stamp, or an unreadable one: index again
    LOGGER.info("Indexing the documents of %s (EOD id %d).", file.path, eod_token_id)
    ends = document_ends(file, eod_token_id)
    try:
        with atomic_path(index) as partial, open(partial, "wb") as out:
            np.save(out, ends)
        with atomic_path(stamp_file) as partial:
            partial.write_text(json.dumps({"data": stamp}))
    except OSError as error:
        raise ConfigError(
            f"Cannot write the document index {index} next to token file {file.path} "
            f"({error}); documents mode needs a writable folder (or use records='windows')."
        ) from error
    return index


class MemmapDocuments(_TokenFilesSource):
    """Record i: document i. A 2-D array gives one document per row (trailing `pad_token_id`s
    stripped); a 1-D stream is split after every EOD token, which stays in its document."""

    def __init__(
        self, files: list[TokenFile], *, eod_token_id: int | None, pad_token_id: int | None
    ):
        super().__init__(files)
        self.pad_token_id = pad_token_id
        self.index_files: list[str | None] = []
        counts = []
        for file in files:
            if len(file.shape) == 2:
                self.index_files.append(None)
                counts.append(file.shape[0])
                continue
            if eod_token_id is None:
                raise ConfigError(
                    f"Token file {file.path} is a 1-D stream, which documents mode splits at "
                    "EOD tokens: set eod_token_id (or use records='windows')."
                )
            index = load_document_index(file, eod_token_id)
            self.index_files.append(str(index))
            counts.append(len(np.load(index, mmap_mode="r")))
        self._set_counts(counts)
        self._ends_cache: dict[int, np.ndarray] = {}

    def _document_ends(self, file_index: int) -> np.ndarray:
        if file_index not in self._ends_cache:
            self._ends_cache[file_index] = np.load(self.index_files[file_index], mmap_mode="r")
        return self._ends_cache[file_index]

    def _read_documents(self, file_index: int, local: np.ndarray) -> list[np.ndarray]:
        shape = self.token_files[file_index].shape
        if len(shape) == 2:
            width = shape[1]
            rows = self._read(file_index, local * width, np.full(len(local), width))
            rows = rows.reshape(len(local), width)
            if self.pad_token_id is None:
                return list(rows)
            kept = rows != self.pad_token_id
            lengths = np.where(kept.any(axis=1), width - np.argmax(kept[:, ::-1], axis=1), 0)
            return [row[:n] for row, n in zip(rows, lengths.tolist(), strict=True)]
        ends = self._document_ends(file_index)
        stops = np.asarray(ends[local])
        starts = np.where(local > 0, np.asarray(ends[np.maximum(local - 1, 0)]), 0)
        tokens = self._read(file_index, starts, stops - starts)
        return np.split(tokens, np.cumsum(stops - starts)[:-1])

    def __getitems__(self, keys: Sequence[int]) -> list[np.ndarray]:
        return self._records(keys, self._read_documents)

    def document_lengths(self) -> np.ndarray:
        """Tokens per document (2-D rows with a pad id are read once to find their ends)."""
        lengths = []
        for file_index, file in enumerate(self.token_files):
            if len(file.shape) == 1:
                lengths.append(np.diff(self._document_ends(file_index), prepend=0))
            elif self.pad_token_id is None:
                lengths.append(np.full(file.shape[0], file.shape[1], dtype=np.int64))
            else:
                rows = np.arange(file.shape[0])
                lengths += [
                    np.fromiter(map(len, self._read_documents(file_index, chunk)), np.int64)
                    for chunk in np.array_split(rows, max(1, file.size // _SCAN_TOKENS))
                ]
        return np.concatenate(lengths)

    def locate(self, key: int) -> tuple[str, int]:
        """(file, index of the document in it) of document `key`."""
        file_of, local = self._locate(np.array([key]))
        return self.files[int(file_of[0])], int(local[0])

    def describe(self, key: int) -> str:
        file, index = self.locate(key)
        return f"document {index} of {file}"

    def __getstate__(self) -> dict:
        return super().__getstate__() | {"_ends_cache": {}}

    def __repr__(self) -> str:
        return f"MemmapDocuments({len(self.files)} files, {len(self)} documents)"


def open_memmap_source(config: MemmapDataConfig) -> MemmapWindows | MemmapDocuments:
    """The source a `MemmapDataConfig` describes; bad files raise errors that name them."""
    paths = expand_paths(config.data_files, what="token file", fix="Check data_files.")
    if config.dtype != "uint16" and all(path.suffix == ".npy" for path in paths):
        raise ConfigError(
            f"Invalid data config: dtype = {config.dtype!r} has no effect: data_files names only "
            ".npy files, which carry their own dtype; remove it (it is for raw .bin files)."
        )
    files = [inspect_token_file(str(path), config.dtype) for path in paths]
    if config.records == "windows":
        return MemmapWindows(
            files,
            window=config.row_length,
            offset=config.window_offset,
            seed=config.data_shuffle_seed,
        )
    return MemmapDocuments(
        files, eod_token_id=config.eod_token_id, pad_token_id=config.pad_token_id
    )
