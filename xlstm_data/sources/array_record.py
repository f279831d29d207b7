"""ArrayRecord shards as one Grain data source, in shard order, with errors that name the file;
and the shard writer (group size 1, for random access)."""

from __future__ import annotations

import concurrent.futures
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from array_record.python.array_record_module import ArrayRecordReader, ArrayRecordWriter

from xlstm_data.errors import ConfigError, DataError
from xlstm_data.io import atomic_path, expand_paths
from xlstm_data.sources.protocol import DocumentSource, files_identity
from xlstm_data.sources.record_files import RecordFiles

if TYPE_CHECKING:
    from xlstm_data.config import GrainArrayRecordsDataConfig

LOGGER = logging.getLogger(__name__)


class ArrayRecordSource(DocumentSource):
    """ArrayRecord shards as one random-access source of `bytes` records.

    Reads a batch of keys file by file, in file order, from readers opened lazily in each
    process. Large records (`ONE_BY_ONE_BYTES`) in files of one record per chunk are read one
    call each, which the calling thread decompresses without the GIL: a batched `read` hands
    its records to ArrayRecord's pool of 64 threads, whose hand-offs took 1.3x the CPU of
    reading the same records one by one here, and on a small host the cores the packer needs.
    Smaller records are read with one batched call per file: one by one, each call's Python
    overhead (under the GIL) would stall the packer.
    """

    READER_OPTIONS = "readahead_buffer_size:0,max_parallelism:1"

    def __init__(
        self,
        files: list[str],
        records_per_file: list[int],
        readers: list[ArrayRecordReader] | None = None,
    ):
        """`readers`: the files' readers, when the caller opened them already (to count)."""
        self.files = list(files)
        self.records_per_file = list(records_per_file)
        self._records = RecordFiles(self.records_per_file)
        self._readers: list[ArrayRecordReader | None] = readers or [None] * len(self.files)
        self._lock = threading.Lock()
        self._large_records = large_records(self.files, self.records_per_file)
        # Per file, decided at its first read (asking 10,000 readers up front would slow the start).
        self._one_by_one: list[bool | None] = [None] * len(self.files)

    @property
    def reads_release_gil(self) -> bool:
        """Large records: read one by one, decompressed without the GIL."""
        return self._large_records

    def _reads_one_by_one(self, reader: ArrayRecordReader) -> bool:
        # A file of larger chunks would decompress a whole chunk for each record.
        return self._large_records and record_group_size(reader) == 1

    def __len__(self) -> int:
        return len(self._records)

    def _reader(self, file_index: int) -> ArrayRecordReader:
        reader = self._readers[file_index]
        if reader is None:
            with self._lock:
                reader = self._readers[file_index]
                if reader is None:
                    reader = ArrayRecordReader(self.files[file_index], self.READER_OPTIONS)
                    self._readers[file_index] = reader
        return reader

    def __getitem__(self, record_key: int) -> bytes:
        return self.__getitems__([record_key])[0]

    def __getitems__(self, record_keys: Sequence[int]) -> list[bytes]:
        records: list[bytes] = [b""] * len(record_keys)
        for file_index, slots, positions in self._records.by_file(record_keys):
            wanted = positions.tolist()
            try:
                reader = self._reader(file_index)
                one_by_one = self._one_by_one[file_index]
                if one_by_one is None:
                    one_by_one = self._one_by_one[file_index] = self._reads_one_by_one(reader)
                if one_by_one:
                    read = [reader.read(position, position + 1)[0] for position in wanted]
                else:
                    read = reader.read(wanted)
            except Exception as error:  # Riegeli raises RuntimeError for corrupt chunks
                raise DataError(
                    f"ArrayRecord file {self.files[file_index]} cannot be read ({error}); it "
                    "is damaged: re-create it or remove it from the folder."
                ) from error
            for slot, record in zip(slots.tolist(), read, strict=True):
                records[slot] = record
        return records

    def locate(self, record_key: int) -> tuple[str, int]:
        """(file, position in that file) of a global record key."""
        file_index, positions = self._records.locate(np.array([record_key]))
        return self.files[int(file_index[0])], int(positions[0])

    def describe(self, key: int) -> str:
        file, position = self.locate(key)
        return f"record {position} of {file}"

    def identity(self) -> str:
        return files_identity(len(self), self.files)

    def __getstate__(self) -> dict:
        # Readers are opened again, lazily, in each worker process.
        return {"files": self.files, "records_per_file": self.records_per_file}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["files"], state["records_per_file"])

    def __repr__(self) -> str:
        return f"ArrayRecordSource({len(self.files)} files, {len(self)} records)"


# Stored bytes per record (the mean over sampled files) from which records are read one by one.
ONE_BY_ONE_BYTES = 8 << 10
# Bytes of a file that hold no record: its index and postscript, padded to 64 KiB blocks.
FILE_OVERHEAD_BYTES = 2 << 16


def large_records(files: Sequence[str], records_per_file: Sequence[int], samples: int = 16) -> bool:
    """Whether records hold ONE_BY_ONE_BYTES or more on average, judged from the sizes of up
    to `samples` files spread over the list (a stat each, so that 10,000 shards open fast)."""
    if not files:
        return False
    picks = np.unique(np.linspace(0, len(files) - 1, samples).astype(np.int64)).tolist()
    try:
        stored = sum(max(0, os.path.getsize(files[i]) - FILE_OVERHEAD_BYTES) for i in picks)
    except OSError:  # not a local file: the batched read works everywhere
        return False
    records = sum(records_per_file[i] for i in picks)
    return stored >= ONE_BY_ONE_BYTES * max(records, 1)


def record_group_size(reader: ArrayRecordReader) -> int | None:
    """Records per chunk, as the writer's options state it (None where they are not stored)."""
    for option in (reader.writer_options_string() or "").split(","):
        name, _, value = option.partition(":")
        if name == "group_size" and value.isdigit():
            return int(value)
    return None


def open_shard(file: str) -> tuple[ArrayRecordReader, int]:
    """A reader of `file` and its record count, or an error naming the file."""
    try:
        reader = ArrayRecordReader(file, ArrayRecordSource.READER_OPTIONS)
        if not reader.ok():  # a file that is no ArrayRecord file opens, as not ok
            reader.close()  # raises the reader's error
        return reader, reader.num_records()
    except Exception as error:  # the C++ reader raises RuntimeError/ValueError variously
        raise DataError(
            f"ArrayRecord file {file} cannot be opened ({error}). It is corrupt or not an "
            "ArrayRecord file: re-create it or remove it from the folder."
        ) from error


def count_records(file: str) -> int:
    reader, count = open_shard(file)
    reader.close()
    return count


def load_array_record_dataset(
    dataset_path: str | os.PathLike, file_extension: str = ".arecord"
) -> ArrayRecordSource:
    """All `*{file_extension}` files of a folder as one source, ordered by their shard index."""
    folder = Path(dataset_path).expanduser()
    if not folder.is_dir():
        raise ConfigError(
            f"ArrayRecord folder {str(folder)!r} does not exist. Check data_path and split "
            "(the files are read from data_path/split)."
        )
    files = [
        str(p)
        for p in expand_paths(
            folder,
            suffixes=[file_extension],
            fix="Write shards there or set file_extension to the ending your files use.",
        )
    ]
    # Opening a shard waits on the file system more than on the CPU: a few threads per core.
    # The readers stay open for the first reads, which would open them again.
    threads = min(len(files), 2 * (os.cpu_count() or 1), 32)
    with concurrent.futures.ThreadPoolExecutor(max_workers=threads) as pool:
        opened = list(pool.map(open_shard, files))
    for file, (_, count) in zip(files, opened, strict=True):
        if count == 0:
            LOGGER.warning("ArrayRecord file %s holds no records; it is left out.", file)
    kept = [(f, r, n) for f, (r, n) in zip(files, opened, strict=True) if n > 0]
    if not kept:
        raise DataError(
            f"ArrayRecord folder {str(folder)!r} holds no records in {len(files)} files."
        )
    records = sum(n for _, _, n in kept)
    LOGGER.info("Loaded %d records from %d ArrayRecord files in %s.", records, len(kept), folder)
    files, readers, counts = (list(column) for column in zip(*kept, strict=True))
    return ArrayRecordSource(files, counts, readers)


def open_array_record_source(config: GrainArrayRecordsDataConfig) -> ArrayRecordSource:
    if not config.data_path.is_dir():
        raise ConfigError(
            f"Invalid data config: data_path = {str(config.data_path)!r} is not a folder; point "
            "it at the folder that holds the split sub-folders."
        )
    return load_array_record_dataset(config.split_path, config.file_extension)


def write_array_record_file(path: Path, records: Sequence[bytes]) -> None:
    """One ArrayRecord file (group size 1, so every record is one random read), written under a
    temporary name and renamed when whole."""
    with atomic_path(path) as partial:
        writer = ArrayRecordWriter(str(partial), "group_size:1")
        for record in records:
            writer.write(record)
        writer.close()


def write_array_record_shards(
    records: Sequence[bytes], folder: str | os.PathLike, *, num_shards: int, prefix: str = "train"
) -> list[Path]:
    """Records split over `num_shards` files `{prefix}_{i:06d}.arecord`."""
    folder = Path(folder)
    paths = []
    for shard, part in enumerate(np.array_split(np.arange(len(records)), num_shards)):
        path = folder / f"{prefix}_{shard:06d}.arecord"
        write_array_record_file(path, [records[i] for i in part.tolist()])
        paths.append(path)
    return paths
