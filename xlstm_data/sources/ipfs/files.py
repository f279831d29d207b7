"""Where a table's files are read from: the CID cache (fetching on first use) or a local mirror.

Both readers are picklable and cheap to copy: Grain worker processes get the folder and the
endpoint settings, and each process opens its own HTTP sessions.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from xlstm_data.errors import DataError
from xlstm_data.io import content_stamp
from xlstm_data.sources.ipfs.cache import CidCache, map_file
from xlstm_data.sources.ipfs.cid import Cid
from xlstm_data.sources.ipfs.client import ClientSettings, IpfsClient, IpfsFetchError
from xlstm_data.sources.ipfs.lines import line_spans, spans_fit
from xlstm_data.sources.ipfs.table import FileEntry


class IpfsFiles:
    """Files by CID from the cache; a missing or corrupt entry is fetched, verified and kept."""

    def __init__(self, cache_dir: str | os.PathLike, settings: ClientSettings | None):
        """`settings` None means offline: only the cache is read."""
        self.cache = CidCache(cache_dir)
        self.settings = settings
        self._client: tuple[int, IpfsClient] | None = None
        self._lock = threading.Lock()

    @property
    def client(self) -> IpfsClient:
        """This process's client (sessions are never shared with a forked child)."""
        with self._lock:
            if self._client is None or self._client[0] != os.getpid():
                self._client = (os.getpid(), IpfsClient(self.settings))
            return self._client[1]

    def open(self, entry: FileEntry) -> np.ndarray:
        content = self.cache.open(entry.cid)
        if content is not None:
            return content
        if self.settings is None:
            raise IpfsFetchError(
                f"offline=True, but {self.describe(entry)} is not in the cache "
                f"{self.cache.folder} (or its copy there is corrupt); run once "
                "with offline=False to fetch it."
            )
        cid = Cid.parse(entry.cid)
        return self.cache.store(
            entry.cid, lambda path: self.client.fetch_file(cid, path, entry.size)
        )

    def spans(self, entry: FileEntry, content: np.ndarray) -> np.ndarray:
        """Line spans of the file, kept in the cache beside it."""
        spans = self.cache.load_spans(entry.cid)
        if spans is None or not spans_fit(spans, content):
            spans = line_spans(content)
            self.cache.store_spans(entry.cid, spans)
        return spans

    def describe(self, entry: FileEntry) -> str:
        return f"file {entry.dataset}/{entry.path} (CID {entry.cid})"

    def stamp(self, entry: FileEntry) -> str:
        return str(entry.cid)  # a CID names the content

    def __getstate__(self) -> dict:
        return {"cache_dir": self.cache.folder, "settings": self.settings}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["cache_dir"], state["settings"])


class LocalFiles:
    """Files of a local mirror of the tree: `folder/<dataset>/<path>`."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    def open(self, entry: FileEntry) -> np.ndarray:
        path = self.folder / entry.dataset / entry.path
        size = path.stat().st_size
        if size != entry.size:
            raise DataError(
                f"{self.describe(entry)} has {size} bytes, but {entry.size} when the "
                "source was opened; do not change the data folder while training."
            )
        return map_file(path)

    def spans(self, entry: FileEntry, content: np.ndarray) -> np.ndarray:
        return line_spans(content)

    def describe(self, entry: FileEntry) -> str:
        return f"file {self.folder / entry.dataset / entry.path}"

    def stamp(self, entry: FileEntry) -> str:
        return content_stamp(self.folder / entry.dataset / entry.path)
