"""Documents to tokenize, streamed from files in a fixed order (so a resumed run sees the same).

Formats: `text` (one document per file), `lines` (one per line), `csv`, `jsonl` and `parquet`
(one per row, text in `column`), `hf` (a `save_to_disk` folder) and `arrayrecord` (UTF-8
records). A bad file or record gets an error that names it.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
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

    def documents(self) -> Iterator[str]:
        """Every document's text, in order."""
        fmt = self.resolved_format
        if fmt == "hf":
            yield from _read_hf(self.files[0], self.column, self.split)
        elif fmt == "arrayrecord":
            yield from _read_arrayrecord(self.files)
        else:
            for file in self.files:
                try:
                    if fmt == "text":
                        yield file.read_text(encoding="utf-8")
                    else:
                        yield from _READERS[fmt](file, self.column)
                except UnicodeDecodeError as error:
                    raise DataError(
                        f"Input {file} is not UTF-8 text ({error}); convert it to UTF-8."
                    ) from error


def _read_lines(file: Path, column: str) -> Iterator[str]:
    with open(file, encoding="utf-8") as stream:
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


def _read_jsonl(file: Path, column: str) -> Iterator[str]:
    with open(file, encoding="utf-8") as stream:
        for number, line in enumerate(stream, start=1):
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


def _read_parquet(file: Path, column: str) -> Iterator[str]:
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(file)
    if column not in parquet.schema_arrow.names:
        raise DataError(
            f"Input {file} has no column {column!r} (columns: {parquet.schema_arrow.names}); "
            "name the text column with --column."
        )
    row = 0
    for batch in parquet.iter_batches(batch_size=_BLOCK_ROWS, columns=[column]):
        for value in batch.column(0).to_pylist():
            yield _text_value(value, f"Row {row} of {file}", column)
            row += 1


def _read_hf(folder: Path, column: str, split: str) -> Iterator[str]:
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
    for start, batch in enumerate(dataset.select_columns([column]).iter(_BLOCK_ROWS)):
        for offset, value in enumerate(batch[column]):
            yield _text_value(value, f"Row {start * _BLOCK_ROWS + offset} of {folder}", column)


def _read_arrayrecord(files: list[Path]) -> Iterator[str]:
    names = [str(f) for f in files]
    source = ArrayRecordSource(names, [count_records(f) for f in names])
    for start in range(0, len(source), _BLOCK_ROWS):
        keys = list(range(start, min(start + _BLOCK_ROWS, len(source))))
        for key, record in zip(keys, source.__getitems__(keys), strict=True):
            try:
                yield record.decode("utf-8")
            except UnicodeDecodeError as error:
                raise DataError(
                    f"{source.describe(key)} is not UTF-8 text ({error}); an arrayrecord input "
                    "holds UTF-8 text records."
                ) from error


_READERS = {"lines": _read_lines, "csv": _read_csv, "jsonl": _read_jsonl, "parquet": _read_parquet}
