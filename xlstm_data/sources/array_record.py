"""ArrayRecord shards as one Grain data source, in shard order, with errors that name the file."""

from __future__ import annotations

import bisect
import concurrent.futures
import logging
import os
import re
from pathlib import Path

from array_record.python.array_record_module import ArrayRecordReader
from grain.sources import ArrayRecordDataSource

LOGGER = logging.getLogger(__name__)

_SHARD_INDEX = re.compile(r"(\d+)(?!.*\d)")


class ArrayRecordSource(ArrayRecordDataSource):
    """Grain's ArrayRecord source that can say which file and position a record key comes from."""

    def __init__(self, files: list[str], records_per_file: list[int]):
        # "path[start:end]" tells the parent the record count, so it does not reopen every file.
        super().__init__([f"{f}[0:{n}]" for f, n in zip(files, records_per_file, strict=True)])
        self.files = list(files)
        self._ends = list(_cumulative(records_per_file))

    def locate(self, record_key: int) -> tuple[str, int]:
        """(file, position in that file) of a global record key."""
        file_index = bisect.bisect_right(self._ends, record_key)
        previous_end = self._ends[file_index - 1] if file_index else 0
        return self.files[file_index], record_key - previous_end

    def describe(self, record_key: int) -> str:
        file, position = self.locate(record_key)
        return f"record {position} of {file}"

    def __getstate__(self) -> dict:
        # Readers are opened lazily again in each worker process.
        return {"files": self.files, "ends": self._ends}

    def __setstate__(self, state: dict) -> None:
        ends = state["ends"]
        counts = [end - start for start, end in zip([0, *ends[:-1]], ends, strict=True)]
        self.__init__(state["files"], counts)

    def __repr__(self) -> str:
        return f"ArrayRecordSource({len(self.files)} files, {len(self)} records)"


def _cumulative(values: list[int]) -> list[int]:
    total, out = 0, []
    for value in values:
        total += value
        out.append(total)
    return out


def shard_sort_key(path: str) -> tuple[str, int, str]:
    """Orders `train_000002` before `train_000010` (numeric shard index, not text order)."""
    name = Path(path).name
    match = _SHARD_INDEX.search(Path(name).stem)
    prefix = name[: match.start()] if match else name
    return prefix, int(match.group(1)) if match else -1, name


def count_records(file: str) -> int:
    try:
        reader = ArrayRecordReader(file)
        count = reader.num_records()
        reader.close()
    except Exception as error:  # the C++ reader raises RuntimeError/ValueError variously
        raise ValueError(
            f"ArrayRecord file {file} cannot be opened ({error}). It is corrupt or not an "
            "ArrayRecord file: re-create it or remove it from the folder."
        ) from error
    return count


def load_array_record_dataset(
    dataset_path: str | os.PathLike, file_extension: str = ".arecord"
) -> ArrayRecordSource:
    """All `*{file_extension}` files of a folder as one source, ordered by their shard index."""
    folder = Path(dataset_path).expanduser()
    if not folder.is_dir():
        raise ValueError(
            f"ArrayRecord folder {str(folder)!r} does not exist. Check data_path and split "
            "(the files are read from data_path/split)."
        )
    files = sorted((str(p) for p in folder.glob(f"*{file_extension}")), key=shard_sort_key)
    if not files:
        raise ValueError(
            f"ArrayRecord folder {str(folder)!r} has no *{file_extension} files. Write shards "
            "there or set file_extension to the ending your files use."
        )
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(16, len(files))) as pool:
        counts = list(pool.map(count_records, files))
    for file, count in zip(files, counts, strict=True):
        if count == 0:
            LOGGER.warning("ArrayRecord file %s holds no records; it is left out.", file)
    kept = [(f, n) for f, n in zip(files, counts, strict=True) if n > 0]
    if not kept:
        raise ValueError(
            f"ArrayRecord folder {str(folder)!r} holds no records in {len(files)} files."
        )
    LOGGER.info(
        "Loaded %d records from %d ArrayRecord files in %s.", sum(counts), len(kept), folder
    )
    return ArrayRecordSource([f for f, _ in kept], [n for _, n in kept])
