"""The config of IPFS text datasets (the source itself is the `ipfs` extra, in sources/ipfs/)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar, Literal

from xlstm_data.config.base import DataConfig, fail, require, setting
from xlstm_data.sources.ipfs.cid import Cid, CidError
from xlstm_data.sources.ipfs.names import TreeError, check_name


@dataclasses.dataclass(kw_only=True)
class IpfsDataConfig(DataConfig):
    """Text datasets on IPFS: the sub-directories of a root CID, fetched over a node's RPC API
    or a gateway, verified against their CIDs and cached; or the same tree in a local folder."""

    type_names: ClassVar[tuple[str, ...]] = ("ipfs",)

    root_cid: str | None = None
    """CID of the root directory; its sub-directories are the datasets."""
    data_dir: Path | None = setting(None, in_state=False)
    """A local copy of the tree (e.g. from `ipfs get <root_cid>`), read instead of IPFS."""
    dataset_names: list[str] | None = None
    """Datasets (sub-directory names) to read, in this order; None reads all, sorted by name."""
    document_unit: Literal["file", "line"] = "file"
    """One document per file, or per non-empty line ("line" reads every file once on the first
    start, to count its lines)."""
    file_suffixes: list[str] | None = None
    """Read only files whose names end with one of these (e.g. [".txt"]); None reads all."""
    max_files_per_dataset: int | None = None
    """Take at most this many files (in path order) from each dataset."""
    max_bytes_per_dataset: int | None = None
    """Take files (in path order) from each dataset while their total stays within this."""
    api_url: str | None = setting("http://127.0.0.1:5001", in_state=False)
    """Kubo-compatible RPC API (`/api/v0/...`) of an IPFS node; tried first."""
    gateway_url: str | None = setting(None, in_state=False)
    """HTTP gateway (`/ipfs/<cid>`); listing and dag-pb files need a trustless one
    (answering `?format=raw`)."""
    cache_dir: Path = setting(Path("~/.cache/xlstm_data/ipfs"), in_state=False)
    """Where verified files and the tree's tables are kept."""
    offline: bool = setting(False, in_state=False)
    """Read only cache_dir; never contact an endpoint."""
    connect_timeout_s: float = setting(10.0, in_state=False)
    """Seconds to wait for a connection to an endpoint."""
    read_timeout_s: float = setting(60.0, in_state=False)
    """Seconds to wait for an endpoint's next bytes."""
    request_timeout_s: float = setting(600.0, in_state=False)
    """Seconds one request may take in all, its whole body included: an endpoint slower than
    that (a trickle of bytes) is given up for the next one."""
    retries: int = setting(5, in_state=False)
    """Retries of a failed request (refused, dropped, timed out, 429 or 5xx)."""
    retry_backoff_s: float = setting(0.5, in_state=False)
    """Back-off factor: the first retry comes at once, the n-th after
    retry_backoff_s * 2**(n-1) seconds (at most 120)."""
    fetch_threads: int = setting(8, in_state=False)
    """Files fetched (and opened) at the same time, per process."""
    data_column: str = setting("text", readers=(), instead="every file or line is one document")
    split: str = setting("train", readers=(), instead="choose datasets with dataset_names")
    token_dtype: Literal["int32", "uint16", "uint32", "int64"] | None = setting(
        None, readers=(), instead="IPFS files hold text"
    )

    def validate(self) -> None:
        super().validate()
        if (self.root_cid is None) == (self.data_dir is None):
            fail(
                "root_cid",
                f"= {self.root_cid!r} and data_dir = {self.data_dir!r}: set exactly "
                "one of them (root_cid reads IPFS, data_dir a local copy of the tree)",
            )
        if self.data_dir is not None:
            self.data_dir = Path(self.data_dir).expanduser()
        else:
            try:
                root = Cid.parse(self.root_cid)
            except CidError as error:
                fail("root_cid", f"= {self.root_cid!r} is not a usable CID: {error}")
            require(
                self,
                "root_cid",
                root.codec_name == "dag-pb",
                "names a raw block (one file), not a directory; set it to the CID of the "
                "directory that holds the dataset folders",
            )
            require(
                self,
                "api_url",
                self.offline or bool(self.api_url or self.gateway_url),
                "and gateway_url are both unset; set one, or offline=True",
            )
        self.cache_dir = Path(self.cache_dir).expanduser()
        for field in ("api_url", "gateway_url"):
            url = getattr(self, field)
            require(
                self,
                field,
                url is None or url.startswith(("http://", "https://")),
                "must start with http:// or https://",
            )
        for field in ("dataset_names", "file_suffixes"):
            require(self, field, getattr(self, field) != [], "is empty; use None for all")
        for name in self.dataset_names or ():
            try:
                check_name(name, "dataset_names")
            except TreeError as error:
                fail("dataset_names", f"= {self.dataset_names!r}: {error}")
        for field in ("max_files_per_dataset", "max_bytes_per_dataset"):
            value = getattr(self, field)
            require(self, field, value is None or value >= 1, "must be None or at least 1")
        for field in ("connect_timeout_s", "read_timeout_s", "request_timeout_s"):
            require(self, field, getattr(self, field) > 0, "must be positive")
        require(self, "retries", self.retries >= 0, "must be 0 or more")
        require(self, "retry_backoff_s", self.retry_backoff_s >= 0, "must be 0 or more")
        require(self, "fetch_threads", self.fetch_threads >= 1, "must be at least 1")

    def describe_source(self) -> str:
        where = f"ipfs:{self.root_cid}" if self.data_dir is None else f"ipfs-dir:{self.data_dir}"
        return (
            f"{where}:{self.dataset_names}:{self.document_unit}:{self.file_suffixes}:"
            f"{self.max_files_per_dataset}:{self.max_bytes_per_dataset}"
        )
