"""The documents of a tree's files as one Grain `RandomAccessDataSource`.

Record keys run over the files in table order (datasets in config order, files by path), each
file contributing its documents: the whole file, or each non-empty line. A batched read
(`__getitems__`, one pipeline read block) opens the distinct files it touches concurrently in a
thread pool, so the files of upcoming blocks are fetched in the order the sampler asks for them
while the pipeline is still busy with earlier ones.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import os
import threading
from collections.abc import Sequence
from typing import Literal, Protocol

import numpy as np

from xlstm_data.errors import DataError
from xlstm_data.sources.ipfs.table import FileEntry
from xlstm_data.sources.protocol import DocumentSource, hash_text
from xlstm_data.sources.record_files import RecordFiles

# Files kept open (memory-mapped) per process; opening one re-checks its cache entry.
OPEN_FILES = 64
_STATE_LOCK = threading.Lock()


class FileReader(Protocol):
    def open(self, entry: FileEntry) -> np.ndarray: ...

    def spans(self, entry: FileEntry, content: np.ndarray) -> np.ndarray: ...

    def describe(self, entry: FileEntry) -> str: ...

    def stamp(self, entry: FileEntry) -> str: ...


@dataclasses.dataclass(frozen=True)
class _OpenFile:
    content: np.ndarray
    spans: np.ndarray | None

    def document(self, index: int) -> bytes:
        if self.spans is None:
            return self.content.tobytes()
        start, end = self.spans[index]
        return self.content[start:end].tobytes()


class IpfsSource(DocumentSource):
    """UTF-8 documents (bytes) of the files of an IPFS tree or of its local mirror."""

    def __init__(
        self,
        entries: Sequence[FileEntry],
        *,
        unit: Literal["file", "line"],
        reader: FileReader,
        threads: int,
        name: str,
    ):
        self.entries = list(entries)
        self.unit = unit
        self.reader = reader
        self.threads = threads
        self.name = name
        if unit == "line" and any(entry.lines is None for entry in self.entries):
            raise DataError("Every file needs its line count for unit='line'.")
        counts = [(e.lines if unit == "line" else int(e.size > 0)) for e in self.entries]
        self._record_files = RecordFiles(counts)
        self._process: (
            tuple[
                int, concurrent.futures.ThreadPoolExecutor, threading.Lock, collections.OrderedDict
            ]
            | None
        ) = None

    @property
    def files(self) -> list[str]:
        """`dataset/path` of every file, in record order (the same for IPFS and a mirror)."""
        return [f"{entry.dataset}/{entry.path}" for entry in self.entries]

    def __len__(self) -> int:
        return len(self._record_files)

    def __getitem__(self, key: int) -> bytes:
        return self.__getitems__([key])[0]

    def __getitems__(self, keys: Sequence[int]) -> list[bytes]:
        """Documents at `keys`, opening (and fetching) their distinct files concurrently."""
        files, documents = self.locate(keys)
        distinct = np.unique(files).tolist()
        pool = self._state()[1]
        opened = dict(zip(distinct, pool.map(self._open, distinct), strict=True))
        return [
            opened[f].document(d) for f, d in zip(files.tolist(), documents.tolist(), strict=True)
        ]

    def locate(self, keys: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """(file index, document index in that file) of each record key."""
        return self._record_files.locate(np.asarray(keys, np.int64).reshape(-1))

    def describe(self, key: int) -> str:
        files, documents = self.locate([key])
        entry = self.entries[int(files[0])]
        where = self.reader.describe(entry)
        if self.unit == "file":
            return f"{where} in dataset {entry.dataset!r}"
        spans = self._open(int(files[0])).spans
        start = int(spans[int(documents[0]), 0])
        return (
            f"non-empty line {int(documents[0])} (at byte {start}) of {where} in dataset "
            f"{entry.dataset!r}"
        )

    def identity(self) -> str:
        """Record count and every file, in record order, by CID (or a local file's content
        stamp): another order of the datasets is another identity."""
        pairs = zip(self.files, self.entries, strict=True)
        stamps = "\n".join(f"{name}={self.reader.stamp(entry)}" for name, entry in pairs)
        return f"{len(self)} documents in {len(self.entries)} files ({hash_text(stamps)})"

    def _state(self):
        """Pool, lock and open files of this process (a forked child starts its own)."""
        with _STATE_LOCK:
            if self._process is None or self._process[0] != os.getpid():
                pool = concurrent.futures.ThreadPoolExecutor(
                    self.threads, thread_name_prefix="ipfs-read"
                )
                self._process = (os.getpid(), pool, threading.Lock(), collections.OrderedDict())
            return self._process

    def _open(self, index: int) -> _OpenFile:
        """The file at `index`, opened once even when several threads ask at the same time."""
        _, _, lock, open_files = self._state()
        with lock:
            future = open_files.get(index)
            owner = future is None
            if owner:
                future = open_files[index] = concurrent.futures.Future()
                while len(open_files) > OPEN_FILES:
                    open_files.popitem(last=False)
            else:
                open_files.move_to_end(index)
        if owner:
            try:
                future.set_result(self._read(self.entries[index]))
            except BaseException as error:
                future.set_exception(error)
                with lock:
                    if open_files.get(index) is future:
                        del open_files[index]
        return future.result()

    def _read(self, entry: FileEntry) -> _OpenFile:
        content = self.reader.open(entry)
        if self.unit == "file":
            return _OpenFile(content, None)
        spans = self.reader.spans(entry, content)
        if len(spans) != entry.lines:
            raise DataError(
                f"{self.reader.describe(entry)} has {len(spans)} non-empty lines, "
                f"but its table says {entry.lines}; delete the stale table in the "
                "cache folder's tables/ (or restart after changing a data folder)."
            )
        return _OpenFile(content, spans)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_process"] = None
        return state

    def __repr__(self) -> str:
        return (
            f"IpfsSource({self.name}: {len(self.entries)} files, {len(self)} documents, "
            f"unit={self.unit!r})"
        )
