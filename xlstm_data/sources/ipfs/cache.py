"""The local cache: file contents by CID, their line spans, and tree tables.

Layout under the cache folder (CIDs in canonical base32, so names are safe):

    files/<last 2 chars>/<cid>            the file, verified against its CID before it was kept
    files/<last 2 chars>/<cid>.json       {"size", "sha256"} of that verified content
    files/<last 2 chars>/<cid>.lines.npy  (n, 2) int64 start/end offsets of its non-empty lines
    blocks/<last 2 chars>/<cid>           the blocks of a dag-pb file's DAG (root, inner nodes,
                                          non-raw leaves), to verify the file again
    tables/<cid>.datasets.json            the datasets (sub-directories) of a root directory
    tables/<cid>.files.json               the files of a dataset directory (see table.py)

Every write goes to a temporary file in the same folder and is renamed into place, so readers
(other threads, processes or hosts sharing the folder) see a whole entry or none. A cached file
is verified against its CID again when it is opened; one that no longer matches is removed, to
be fetched again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from xlstm_data.io import atomic_path
from xlstm_data.sources.ipfs.cid import Cid, CidError, IntegrityError, verify_block
from xlstm_data.sources.ipfs.unixfs import verify_file

LOGGER = logging.getLogger(__name__)


class CidCache:
    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    def file_path(self, cid: str) -> Path:
        return self.folder / "files" / cid[-2:] / cid

    def block_path(self, cid: str) -> Path:
        return self.folder / "blocks" / cid[-2:] / cid

    def open(self, cid: str) -> np.ndarray | None:
        """The cached content of `cid` (uint8, memory-mapped), or None when it is missing or
        does not match the CID (such an entry is removed).

        The content is checked against the CID itself, not against a record beside it (which
        whoever rewrote the file could rewrite too): a raw CID by hashing, a dag-pb file
        against the blocks of its DAG kept in `blocks/`, each checked against its own CID.
        """
        path = self.file_path(cid)
        try:
            record = json.loads(_record_path(path).read_text())
            size = path.stat().st_size
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            return self._discard(cid, f"its record is unreadable ({error})")
        if size != record.get("size"):
            return self._discard(cid, f"it has {size} bytes instead of {record.get('size')}")
        content = map_file(path)
        try:
            verify_file(Cid.parse(cid), memoryview(content), self._stored_block)
        except (IntegrityError, CidError) as error:
            return self._discard(cid, f"its sha256 changed since it was verified ({error})")
        return content

    def _stored_block(self, cid: Cid) -> bytes:
        try:
            block = self.block_path(str(cid)).read_bytes()
        except OSError as error:
            raise IntegrityError(f"the block {cid} of its DAG is not in the cache") from error
        verify_block(cid, block, f"the cached block {cid}")
        return block

    def store(self, cid: str, fill: Callable[[Path], dict[str, bytes] | None]) -> np.ndarray:
        """Keeps the content that `fill(path)` writes and verifies, with the DAG blocks it
        returns (by CID); nothing is kept if it raises."""
        path = self.file_path(cid)
        with atomic_path(path) as temporary:
            blocks = fill(temporary) or {}
            content = map_file(temporary)
            record = {
                "size": len(content),
                "sha256": hashlib.sha256(memoryview(content)).hexdigest(),
            }
        for block_cid, block in blocks.items():  # the blocks go first: a file needs them
            with atomic_path(self.block_path(block_cid)) as temporary:
                temporary.write_bytes(block)
        # The record goes last: a record names a complete file.
        with atomic_path(_record_path(path)) as temporary:
            temporary.write_text(json.dumps(record))
        return map_file(path)

    def load_spans(self, cid: str) -> np.ndarray | None:
        """The line spans stored for `cid`, or None (the caller checks them against the file)."""
        try:
            return np.load(_spans_path(self.file_path(cid)), allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None

    def store_spans(self, cid: str, spans: np.ndarray) -> None:
        with (
            atomic_path(_spans_path(self.file_path(cid))) as temporary,
            open(temporary, "wb") as file,
        ):
            np.save(file, spans, allow_pickle=False)

    def load_table(self, name: str) -> dict | None:
        """A table stored with `store_table`, or None when it is missing or unreadable."""
        try:
            return json.loads((self.folder / "tables" / f"{name}.json").read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            LOGGER.warning("Cached table %s is unreadable (%s); building it again.", name, error)
            return None

    def store_table(self, name: str, table: dict) -> None:
        with atomic_path(self.folder / "tables" / f"{name}.json") as temporary:
            temporary.write_text(json.dumps(table, separators=(",", ":")))

    def _discard(self, cid: str, problem: str) -> None:
        path = self.file_path(cid)
        LOGGER.warning(
            "Cache entry %s is corrupt: %s. Removing it; it will be fetched again.", path, problem
        )
        for stale in (path, _record_path(path), _spans_path(path)):
            stale.unlink(missing_ok=True)


def map_file(path: Path) -> np.ndarray:
    """The bytes of a file as a read-only uint8 memory map (an empty array for an empty file)."""
    if path.stat().st_size == 0:
        return np.zeros(0, np.uint8)
    return np.memmap(path, np.uint8, "r")


def _record_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _spans_path(path: Path) -> Path:
    return path.with_name(path.name + ".lines.npy")
