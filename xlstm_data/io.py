"""File plumbing used everywhere: input paths in shard order, and writes that are all or nothing."""

from __future__ import annotations

import concurrent.futures
import contextlib
import glob
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from xlstm_data.errors import ConfigError

_SHARD_INDEX = re.compile(r"(\d+)(?!.*\d)")


def shard_sort_key(path: str | os.PathLike) -> tuple[str, str, int, str]:
    """Orders `train_000002` before `train_000010` (numeric shard index, not text order), folder
    by folder. (Plain string operations: it orders the 10^4 shards of a corpus at start-up.)"""
    folder, name = os.path.split(os.fspath(path))
    match = _SHARD_INDEX.search(name, 0, name.rfind(".") if "." in name else len(name))
    prefix = name[: match.start()] if match else name
    return folder, prefix, int(match.group(1)) if match else -1, name


def expand_paths(
    patterns: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    suffixes: Sequence[str] | None = None,
    recursive: bool = False,
    what: str = "input",
    fix: str = "",
) -> list[Path]:
    """The files named by paths, globs and folders, in the order given.

    A glob's matches and a folder's files (those ending in one of `suffixes`; all of its
    sub-folders with `recursive`) come in shard order. A pattern that names nothing raises a
    `ConfigError` that names it as `what` and ends with `fix`.
    """
    if isinstance(patterns, str | os.PathLike):
        patterns = [patterns]
    files: list[Path] = []
    for pattern in patterns:
        path = Path(pattern).expanduser()
        if glob.has_magic(str(path)):
            found = [Path(p) for p in glob.glob(str(path)) if os.path.isfile(p)]
            problem = f"No {what} matches {str(path)!r}."
        elif path.is_dir():
            found = _files_in(path, suffixes, recursive)
            kinds = "/".join(f"*{suffix}" for suffix in suffixes or [""])
            problem = f"Folder {str(path)!r} holds no {kinds} files."
        elif path.is_file():
            found, problem = [path], ""
        else:
            found, problem = [], f"{what.capitalize()} {str(path)!r} does not exist."
        if not found:
            raise ConfigError(f"{problem} {fix}".strip())
        files += sorted(found, key=shard_sort_key)
    return files


def _files_in(folder: Path, suffixes: Sequence[str] | None, recursive: bool) -> list[Path]:
    """The files of `folder` (and its sub-folders) that end in one of `suffixes`."""
    files = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir() and recursive:
                files += _files_in(Path(entry.path), suffixes, recursive)
            elif entry.is_file() and (not suffixes or entry.name.endswith(tuple(suffixes))):
                files.append(Path(entry.path))
    return files


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary file beside `path`, renamed onto it when the block succeeds, else removed: a
    reader (another thread, process or host) sees the whole file or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_folder(path: Path) -> Iterator[Path]:
    """A temporary folder beside `path`, renamed to `path` when the block succeeds. When another
    writer renamed its copy into place first, that copy is kept and this one removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield temporary
        try:
            os.rename(temporary, path)
        except OSError:
            if not path.is_dir():  # else another writer's copy is in place already
                raise
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


STAMP_BYTES = 4096


def content_stamp(path: str | os.PathLike) -> str:
    """Identifies a file's content cheaply: its size and a hash of its first and last 4 KiB.

    Unlike a modification time it survives copies, and unlike a full hash it costs two reads,
    so it can be taken for thousands of shards at start-up.
    """
    with open(path, "rb", buffering=0) as file:
        size = os.fstat(file.fileno()).st_size
        digest = hashlib.sha256(size.to_bytes(8, "little"))
        digest.update(os.pread(file.fileno(), STAMP_BYTES, 0))
        digest.update(os.pread(file.fileno(), STAMP_BYTES, max(0, size - STAMP_BYTES)))
    return f"{size}:{digest.hexdigest()[:16]}"


def content_stamps(paths: Sequence[str | os.PathLike]) -> list[str]:
    """`content_stamp` of every path, read in parallel (shards on network file systems)."""
    if len(paths) <= 8:
        return [content_stamp(p) for p in paths]
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(content_stamp, paths))


class NpyWriter:
    """A 1-D `.npy` file written by appending arrays, for arrays too large to hold in memory:
    the header is written last, in the room left for it (the format pads headers with spaces,
    so any length fits a fixed room)."""

    HEADER_BYTES = 128

    def __init__(self, path: Path, dtype: np.dtype | type):
        self.dtype = np.dtype(dtype)
        self.size = 0
        self._file = open(path, "wb")  # noqa: SIM115 (closed by close())
        self._file.write(b"\0" * self.HEADER_BYTES)

    def append(self, values: np.ndarray) -> None:
        values = np.ascontiguousarray(values, dtype=self.dtype)
        self._file.write(memoryview(values).cast("B"))
        self.size += len(values)

    def close(self) -> None:
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False,
                  "shape": (self.size,)}  # fmt: skip
        text = repr(header).encode("latin1")
        room = self.HEADER_BYTES - len(np.lib.format.MAGIC_PREFIX) - 4
        self._file.seek(0)
        self._file.write(np.lib.format.magic(1, 0))
        self._file.write(len(text.ljust(room - 1) + b"\n").to_bytes(2, "little"))
        self._file.write(text.ljust(room - 1) + b"\n")
        self._file.close()
