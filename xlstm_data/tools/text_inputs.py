"""Documents to tokenize, streamed from files in a fixed order (so a resumed run sees the same).

Formats: `text` (one document per file), `lines` (one per line), `csv`, `jsonl` and `parquet`
(one per row, text in `column`), `hf` (a `save_to_disk` folder) and `arrayrecord` (UTF-8
records). A bad file or record gets an error that names it.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import itertools
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from xlstm_data.errors import ConfigError, DataError
from xlstm_data.io import expand_paths
from xlstm_data.sources.array_record import ArrayRecordSource, count_records
from xlstm_data.sources.huggingface import is_saved_dataset, select_split

FORMATS = ("text", "lines", "csv", "jsonl", "parquet", "hf", "arrayrecord")
_SUFFIXES = {
    "text": (".txt",),
    "lines": (".txt",),
    "csv": (".csv",),
    "jsonl": (".jsonl", ".json"),
    "parquet": (".parquet",),
    "arrayrecord": (".arecord",),
}
# "auto" goes by suffix; a .txt file is one document ("lines" has to be asked for).
_FORMAT_BY_SUFFIX = {s: f for f, suffixes in _SUFFIXES.items() if f != "lines" for s in suffixes}
_COLUMN_FORMATS = ("csv", "jsonl", "parquet", "hf")
_BLOCK_ROWS = 1024
# Documents between the seek points `index_file` records in line-based files.
SEEK_EVERY = 1024


@dataclasses.dataclass(frozen=True)
class FileIndex:
    """What a worker needs to read a range of one input file's documents without reading
    the file from its start: the count, and for line-based files `(document, byte offset,
    line number)` every SEEK_EVERY documents."""

    documents: int
    seeks: tuple[tuple[int, int, int], ...] = ()


@dataclasses.dataclass(frozen=True)
class TextInput:
    """Where the documents come from: files, folders or globs of one format, read in order."""

    paths: tuple[str, ...]
    format: str = "auto"
    """One of FORMATS, or "auto": from the suffix (a `save_to_disk` folder is "hf")."""
    column: str = "text"
    """Column or field holding the text (csv, jsonl, parquet, hf)."""
    split: str = "train"
    """Split of an hf folder that holds several."""

    def __post_init__(self) -> None:
        if not self.paths:
            raise ConfigError("No input given; name the files, folders or globs to tokenize.")
        if self.format not in ("auto", *FORMATS):
            raise ConfigError(f"Input format {self.format!r} is unknown; use one of {FORMATS}.")

    @functools.cached_property
    def resolved_format(self) -> str:
        if self.format != "auto":
            return self.format
        first = Path(self.paths[0]).expanduser()
        if first.is_dir():
            if is_saved_dataset(first):
                return "hf"
            suffixes = {p.suffix for p in first.rglob("*") if p.is_file()}
            found = sorted({_FORMAT_BY_SUFFIX[s] for s in suffixes if s in _FORMAT_BY_SUFFIX})
        else:
            found = [_FORMAT_BY_SUFFIX[first.suffix]] if first.suffix in _FORMAT_BY_SUFFIX else []
        if len(found) != 1:
            raise ConfigError(
                f"Cannot tell the format of input {first} (found {found or 'no known suffix'}); "
                f"name it with --format ({', '.join(FORMATS)})."
            )
        return found[0]

    @functools.cached_property
    def files(self) -> list[Path]:
        """The input files in reading order (the folder itself for hf)."""
        if self.resolved_format == "hf":
            if len(self.paths) != 1 or not Path(self.paths[0]).expanduser().is_dir():
                raise ConfigError("An hf input is one save_to_disk folder; give exactly one.")
            return [Path(self.paths[0]).expanduser()]
        return expand_paths(
            self.paths,
            suffixes=_SUFFIXES[self.resolved_format],
            recursive=True,
            fix="Name the files (a glob such as 'folder/*') or pick another --format.",
        )

    def describe(self) -> dict[str, Any]:
        """What was read, for the cache's metadata (and to tell a resumed run's input)."""
        sizes = [
            sum(p.stat().st_size for p in f.rglob("*") if p.is_file())
            if f.is_dir()
            else f.stat().st_size
            for f in self.files
        ]
        description: dict[str, Any] = {
            "format": self.resolved_format,
            "inputs": [str(Path(p).expanduser().resolve()) for p in self.paths],
            "files": len(self.files),
            "bytes": sum(sizes),
        }
        if self.resolved_format in _COLUMN_FORMATS:
            description["column"] = self.column
        if self.resolved_format == "hf":
            description["split"] = self.split
        return description

    @property
    def units(self) -> int:
        """Work units of a distributed prepare: the input files (an hf folder is one)."""
        return 1 if self.resolved_format in ("hf",) else len(self.files)

    def index_file(self, unit: int) -> FileIndex:
        """The document count of work unit `unit` (a file), with seek points."""
        fmt, file = self.resolved_format, self.files[unit]
        if fmt == "text":
            return FileIndex(1)
        if fmt == "arrayrecord":
            return FileIndex(count_records(str(file)))
        if fmt in ("lines", "jsonl"):
            return _index_lines(file, skip_blank=fmt == "jsonl")
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return FileIndex(pq.ParquetFile(file).metadata.num_rows)
        if fmt == "hf":
            return FileIndex(len(_load_hf(file, self.column, self.split)))
        return FileIndex(sum(1 for _ in self._unit_documents(unit)))

    def read_range(self, unit: int, start: int, count: int, index: FileIndex) -> list[str]:
        """Documents [start, start + count) of work unit `unit`, read from the nearest seek
        point (a Parquet file from its row group, an ArrayRecord file by record)."""
        fmt, file = self.resolved_format, self.files[unit]
        if fmt == "arrayrecord":
            source = ArrayRecordSource([str(file)], [index.documents])
            return list(_decode_records(source, list(range(start, start + count))))
        if fmt in ("lines", "jsonl") and index.seeks:
            position = max((s for s in index.seeks if s[0] <= start), key=lambda s: s[0])
            first, offset, line = position
            reader = _read_lines if fmt == "lines" else _read_jsonl
            documents = reader(file, self.column, offset=offset, first_line=line)
            return list(itertools.islice(documents, start - first, start - first + count))
        if fmt == "parquet":
            return list(_read_parquet(file, self.column, start=start, count=count))
        if fmt == "hf":
            return list(_read_hf(file, self.column, self.split, start=start, count=count))
        return list(itertools.islice(self._unit_documents(unit), start, start + count))

    def _unit_documents(self, unit: int) -> Iterator[str]:
        fmt, file = self.resolved_format, self.files[unit]
        if fmt == "hf":
            yield from _read_hf(file, self.column, self.split)
        elif fmt == "arrayrecord":
            yield from _read_arrayrecord([file])
        else:
            yield from self._file_documents(file)

    def _file_documents(self, file: Path) -> Iterator[str]:
        fmt = self.resolved_format
        try:
            if fmt == "text":
                yield file.read_text(encoding="utf-8")
            else:
                yield from _READERS[fmt](file, self.column)
        except UnicodeDecodeError as error:
            raise DataError(
                f"Input {file} is not UTF-8 text ({error}); convert it to UTF-8."
            ) from error

    def documents(self) -> Iterator[str]:
        """Every document's text, in order."""
        fmt = self.resolved_format
        if fmt == "hf":
            yield from _read_hf(self.files[0], self.column, self.split)
        elif fmt == "arrayrecord":
            yield from _read_arrayrecord(self.files)
        else:
            for file in self.files:
                yield from self._file_documents(file)


def _index_lines(file: Path, *, skip_blank: bool) -> FileIndex:
    """Documents of a line-based file (blank lines are none in jsonl), and seek points."""
    seeks, documents, offset = [], 0, 0
    with _open_at(file, 0) as stream:
        for number, line in enumerate(stream, start=1):
            if not (skip_blank and not line.strip()):
                if documents % SEEK_EVERY == 0:
                    seeks.append((documents, offset, number))
                documents += 1
            offset += len(line.encode("utf-8"))
    return FileIndex(documents, tuple(seeks))


def _open_at(file: Path, offset: int):
    """The file as text from byte `offset` (a line start), lines kept as written (any line
    end splits, as in universal newlines mode), so byte offsets can be counted."""
    stream = open(file, encoding="utf-8", newline="")  # noqa: SIM115 (closed by the caller)
    stream.seek(offset)
    return stream


def _read_lines(file: Path, column: str, *, offset: int = 0, first_line: int = 1) -> Iterator[str]:
    with _open_at(file, offset) as stream:
        for line in stream:
            yield line.rstrip("\r\n")


def _text_value(value: Any, where: str, column: str) -> str:
    if not isinstance(value, str):
        raise DataError(
            f"{where} holds {type(value).__name__} in {column!r}, not text; pick the text "
            "column with --column."
        )
    return value


def _read_csv(file: Path, column: str) -> Iterator[str]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # documents are longer than 128 kB
    with open(file, encoding="utf-8", newline="") as stream:
        reader = csv.DictReader(stream)
        if column not in (reader.fieldnames or []):
            raise DataError(
                f"Input {file} has no column {column!r} (columns: {reader.fieldnames}); "
                "name the text column with --column."
            )
        for row in reader:
            where = f"The row ending on line {reader.line_num} of {file}"
            yield _text_value(row[column], where, column)


def _read_jsonl(file: Path, column: str, *, offset: int = 0, first_line: int = 1) -> Iterator[str]:
    with _open_at(file, offset) as stream:
        for number, line in enumerate(stream, start=first_line):
            if not line.strip():
                continue
            where = f"Line {number} of {file}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{where} is not valid JSON ({error}).") from error
            if not isinstance(record, dict) or column not in record:
                fields = list(record) if isinstance(record, dict) else type(record).__name__
                raise DataError(
                    f"{where} has no field {column!r} (it has {fields}); name the text field "
                    "with --column."
                )
            yield _text_value(record[column], where, column)


def _read_parquet(
    file: Path, column: str, *, start: int = 0, count: int | None = None
) -> Iterator[str]:
    """Rows [start, start + count) (all by default), read from the row group holding start."""
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(file)
    if column not in parquet.schema_arrow.names:
        raise DataError(
            f"Input {file} has no column {column!r} (columns: {parquet.schema_arrow.names}); "
            "name the text column with --column."
        )
    groups, row = list(range(parquet.num_row_groups)), 0
    while groups and row + parquet.metadata.row_group(groups[0]).num_rows <= start:
        row += parquet.metadata.row_group(groups.pop(0)).num_rows
    end = None if count is None else start + count
    for batch in parquet.iter_batches(batch_size=_BLOCK_ROWS, columns=[column], row_groups=groups):
        for value in batch.column(0).to_pylist():
            if end is not None and row >= end:
                return
            if row >= start:
                yield _text_value(value, f"Row {row} of {file}", column)
            row += 1


def _load_hf(folder: Path, column: str, split: str):
    """The split's text column of a `save_to_disk` folder."""
    import datasets

    if not is_saved_dataset(folder):
        raise DataError(
            f"Input {folder} is not an HF dataset saved with save_to_disk (no "
            "dataset_dict.json or state.json)."
        )
    dataset = select_split(datasets.load_from_disk(str(folder)), split, str(folder))
    if column not in dataset.column_names:
        raise DataError(
            f"HF dataset {folder} has no column {column!r}; name one of "
            f"{dataset.column_names} with --column."
        )
    return dataset.select_columns([column])


def _read_hf(
    folder: Path, column: str, split: str, *, start: int = 0, count: int | None = None
) -> Iterator[str]:
    """Rows [start, start + count) (all by default)."""
    dataset = _load_hf(folder, column, split)
    end = len(dataset) if count is None else min(len(dataset), start + count)
    for first in range(start, end, _BLOCK_ROWS):
        batch = dataset[first : min(first + _BLOCK_ROWS, end)][column]
        for offset, value in enumerate(batch):
            yield _text_value(value, f"Row {first + offset} of {folder}", column)


def _read_arrayrecord(files: list[Path]) -> Iterator[str]:
    names = [str(f) for f in files]
    source = ArrayRecordSource(names, [count_records(f) for f in names])
    for start in range(0, len(source), _BLOCK_ROWS):
        yield from _decode_records(
            source, list(range(start, min(start + _BLOCK_ROWS, len(source))))
        )


def _decode_records(source: ArrayRecordSource, keys: list[int]) -> Iterator[str]:
    for key, record in zip(keys, source.__getitems__(keys), strict=True):
        try:
            yield record.decode("utf-8")
        except UnicodeDecodeError as error:
            raise DataError(
                f"{source.describe(key)} is not UTF-8 text ({error}); an arrayrecord input "
                "holds UTF-8 text records."
            ) from error


_READERS = {"lines": _read_lines, "csv": _read_csv, "jsonl": _read_jsonl, "parquet": _read_parquet}
