"""The hash table of a tree: which files each dataset holds, with their CIDs and sizes.

A tree is a root directory whose sub-directories are datasets. The walk reads directory blocks
(verified against their CIDs, never an unverifiable listing) once; the tables are then kept in
the cache, named by the directory's CID, and reused on every later start, since a CID never
changes content. Entry names are checked before they join a path: no empty names, no `.` or
`..`, no separators.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
from pathlib import Path
from typing import NamedTuple

from xlstm_data.sources.ipfs.cache import CidCache
from xlstm_data.sources.ipfs.cid import RAW, Cid
from xlstm_data.sources.ipfs.names import TreeError, check_name
from xlstm_data.sources.ipfs.unixfs import (
    GetBlock,
    Link,
    Node,
    NodeType,
    decode_node,
    directory_entries,
)

LOGGER = logging.getLogger(__name__)

TABLE_FORMAT = 1


class FileEntry(NamedTuple):
    dataset: str
    path: str
    """Path inside the dataset folder, `/`-separated."""
    cid: str | None
    """Canonical CID; None for a file of a local folder."""
    size: int
    lines: int | None = None
    """Non-empty lines, once counted."""


def ipfs_datasets(
    root: Cid, get_block: GetBlock, pool: concurrent.futures.Executor
) -> dict[str, str]:
    """Dataset name → CID of its directory, for the sub-directories of `root`."""
    entries = directory_entries(decode_node(root, get_block(root)), get_block)
    datasets = {}
    for link, (kind, _) in zip(
        entries, pool.map(lambda link: _kind(link, get_block), entries), strict=True
    ):
        name = check_name(link.name, f"Root directory {root}")
        if kind == "directory":
            datasets[name] = str(link.cid)
        else:
            LOGGER.warning(
                "IPFS root %s: %r is a %s, not a dataset directory; it is left out.",
                root,
                name,
                kind,
            )
    return datasets


def ipfs_files(
    dataset: str, directory: Cid, get_block: GetBlock, pool: concurrent.futures.Executor
) -> list[FileEntry]:
    """Every file under the dataset directory, sorted by path; one level of the tree at a time,
    with the blocks of a level fetched concurrently."""
    files = []
    level = [("", Link(directory, dataset, 0))]
    while level:
        next_level = []
        for (path, link), (kind, node) in zip(
            level, pool.map(lambda item: _kind(item[1], get_block), level), strict=True
        ):
            if kind == "file":
                size = link.size if node is None else node.file_size
                files.append(FileEntry(dataset, path, str(link.cid), size))
            elif kind == "directory":
                where = f"Directory {path or '/'!r} ({link.cid}) of dataset {dataset!r}"
                next_level.extend(
                    (f"{path}/{check_name(child.name, where)}".lstrip("/"), child)
                    for child in directory_entries(node, get_block)
                )
            else:
                LOGGER.warning("Dataset %r: %s is a %s; it is left out.", dataset, path, kind)
        level = next_level
    return sorted(files, key=lambda entry: entry.path)


def _kind(link: Link, get_block: GetBlock) -> tuple[str, Node | None]:
    """("file" | "directory" | another UnixFS kind, the node unless the link is a raw block)."""
    if link.cid.codec == RAW:
        return "file", None
    node = decode_node(link.cid, get_block(link.cid))
    if node.type in (NodeType.FILE, NodeType.RAW):
        return "file", node
    if node.type in (NodeType.DIRECTORY, NodeType.HAMT_SHARD):
        return "directory", node
    return node.type.name.lower(), node


def local_datasets(folder: Path) -> dict[str, Path]:
    """Dataset name → folder, for the sub-folders of a local mirror."""
    datasets = {}
    for child in sorted(folder.iterdir()):
        if child.is_dir() and not child.is_symlink():
            datasets[child.name] = child
        else:
            LOGGER.warning(
                "Data folder %s: %r is not a dataset folder; it is left out.", folder, child.name
            )
    return datasets


def local_files(dataset: str, folder: Path) -> list[FileEntry]:
    """Every regular file under a local dataset folder, sorted by path (symlinks are not
    followed: they are reported and left out)."""
    files = []
    for directory, subdirectories, names in os.walk(folder):
        for name in names + subdirectories:
            path = Path(directory) / name
            if path.is_symlink() or (name in names and not path.is_file()):
                LOGGER.warning(
                    "Dataset %r: %s is not a regular file or folder; it is left out.", dataset, path
                )
            elif name in names:
                files.append(
                    FileEntry(
                        dataset, path.relative_to(folder).as_posix(), None, path.stat().st_size
                    )
                )
    return sorted(files, key=lambda entry: entry.path)


def files_to_table(directory: str, files: list[FileEntry]) -> dict:
    return {
        "format": TABLE_FORMAT,
        "directory": directory,
        "files": [[f.path, f.cid, f.size, f.lines] for f in files],
    }


def table_to_files(dataset: str, directory: str, table: dict) -> list[FileEntry] | None:
    """The files of a stored table, or None if it is of another format or directory."""
    if table.get("format") != TABLE_FORMAT or table.get("directory") != directory:
        return None
    return [FileEntry(dataset, path, cid, size, lines) for path, cid, size, lines in table["files"]]


class IpfsTables:
    """The tables of an IPFS tree: from the cache, else walked (once) and cached."""

    def __init__(
        self, cache: CidCache, get_block: GetBlock | None, pool: concurrent.futures.Executor
    ):
        """`get_block` None means offline: a table missing from the cache is an error."""
        self.cache = cache
        self.get_block = get_block
        self.pool = pool

    def datasets(self, root: Cid) -> dict[str, str]:
        """Dataset name → directory CID."""
        table = self.cache.load_table(f"{root}.datasets")
        if table and table.get("format") == TABLE_FORMAT and table.get("directory") == str(root):
            return table["datasets"]
        datasets = ipfs_datasets(root, self._walker(f"root directory {root}"), self.pool)
        self.cache.store_table(
            f"{root}.datasets",
            {"format": TABLE_FORMAT, "directory": str(root), "datasets": datasets},
        )
        return datasets

    def files(self, dataset: str, directory: str) -> list[FileEntry]:
        table = self.cache.load_table(f"{directory}.files")
        files = table_to_files(dataset, directory, table) if table else None
        if files is None:
            LOGGER.info("Listing dataset %r (%s) over IPFS.", dataset, directory)
            get_block = self._walker(f"dataset {dataset!r} ({directory})")
            files = ipfs_files(dataset, Cid.parse(directory), get_block, self.pool)
            self.store_files(directory, files)
        return files

    def store_files(self, directory: str, files: list[FileEntry]) -> None:
        self.cache.store_table(f"{directory}.files", files_to_table(directory, files))

    def _walker(self, what: str) -> GetBlock:
        if self.get_block is None:
            raise TreeError(
                f"offline=True, but the table of the {what} is not in the cache "
                f"{self.cache.folder}; run once with offline=False to build it."
            )
        return self.get_block
