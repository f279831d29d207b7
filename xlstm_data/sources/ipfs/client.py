"""HTTP access to an IPFS node's RPC API (`/api/v0/…`) or a gateway (`/ipfs/<cid>`).

Transient failures (refused or dropped connections, timeouts, 429 and 5xx) are retried with
exponential back-off: by `urllib3.util.Retry` up to the response headers (a `Retry-After` is
obeyed up to 30 s), and by a loop of our own when a connection breaks while the body streams
in. Every request has a deadline for its whole body (`request_timeout_s`), so an endpoint that
trickles bytes is given up; an error's body is read only as far as its first kilobyte.
Everything fetched is verified against its CID before it is returned or kept; an endpoint that
fails or serves wrong bytes is followed by the next one, and when none succeeds the error names
the CID and every endpoint's problem.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util import Retry

from xlstm_data.errors import ConfigError
from xlstm_data.sources.ipfs.cache import map_file
from xlstm_data.sources.ipfs.cid import Cid, IntegrityError, verify_block
from xlstm_data.sources.ipfs.unixfs import verify_file

RETRY_STATUSES = (429, 500, 502, 503, 504)
# The largest block the IPFS exchange protocols move; a bigger "block" is refused unread.
MAX_BLOCK_BYTES = 4 << 20
_CHUNK_BYTES = 1 << 20
# A `Retry-After` longer than this is cut to it: an endpoint cannot park the job for an hour.
MAX_RETRY_AFTER_S = 30.0
# Bytes of an error response kept for the message; the rest is never read.
_ERROR_BODY_BYTES = 1024


class IpfsFetchError(RuntimeError):
    """A CID that no endpoint could deliver intact."""


class _EndpointFailure(Exception):
    """One endpoint could not deliver (after its retries)."""


@dataclasses.dataclass(frozen=True)
class ClientSettings:
    """What a client needs; picklable, so every process builds its own sessions."""

    api_url: str | None
    gateway_url: str | None
    connect_timeout_s: float
    read_timeout_s: float
    retries: int
    retry_backoff_s: float
    request_timeout_s: float
    connections: int


class _CappedRetry(Retry):
    """urllib3's retry policy with `Retry-After` capped at MAX_RETRY_AFTER_S."""

    def get_retry_after(self, response) -> float | None:
        after = super().get_retry_after(response)
        return None if after is None else min(after, MAX_RETRY_AFTER_S)


class Endpoint:
    """One RPC API or gateway, with its retry policy and a session per thread."""

    def __init__(self, kind: Literal["rpc", "gateway"], url: str, settings: ClientSettings):
        self.kind = kind
        self.url = url.rstrip("/")
        self.settings = settings
        self._local = threading.local()

    def __str__(self) -> str:
        return f"{'RPC API' if self.kind == 'rpc' else 'gateway'} {self.url}"

    def block(self, cid: Cid) -> bytes:
        """The block named by `cid`, verified."""
        chunks: list[bytes] = []
        if self.kind == "rpc":
            request = ("POST", "/api/v0/block/get", {"arg": str(cid)}, {})
        else:  # a trustless gateway answers ?format=raw with the block itself
            request = (
                "GET",
                f"/ipfs/{cid}",
                {"format": "raw"},
                {"Accept": "application/vnd.ipld.raw"},
            )
        self._stream(request, chunks.append, chunks.clear, MAX_BLOCK_BYTES)
        block = b"".join(chunks)
        try:
            verify_block(cid, block, f"the {self}")
        except IntegrityError as error:
            if self.kind == "gateway":
                raise IntegrityError(
                    f"{error} A gateway must answer /ipfs/<cid>?format=raw with "
                    "the raw block (a trustless gateway); this one may not."
                ) from error
            raise
        return block

    def download(self, cid: Cid, path: Path, max_bytes: int) -> None:
        """Streams the file named by `cid` into `path` (unverified)."""
        if self.kind == "rpc":
            request = ("POST", "/api/v0/cat", {"arg": str(cid)}, {})
        else:
            request = ("GET", f"/ipfs/{cid}", {}, {})
        with open(path, "wb") as file:

            def restart() -> None:
                file.seek(0)
                file.truncate()

            self._stream(request, file.write, restart, max_bytes)

    def _stream(
        self,
        request: tuple,
        write: Callable[[bytes], object],
        restart: Callable[[], None],
        max_bytes: int,
    ) -> None:
        """Sends `request` and feeds the body to `write`; starts over when the body breaks."""
        method, path, params, headers = request
        attempt = 0
        deadline = time.monotonic() + self.settings.request_timeout_s
        while True:
            response = self._send(method, path, params, headers)
            try:
                received = 0
                # read1 returns what has arrived, so a trickle still reaches the deadline check.
                while chunk := response.raw.read1(_CHUNK_BYTES, decode_content=True):
                    received += len(chunk)
                    if received > max_bytes:
                        raise IntegrityError(
                            f"the {self} sent more than the {max_bytes} bytes the content has"
                        )
                    if time.monotonic() > deadline:
                        raise _EndpointFailure(
                            f"the response took longer than request_timeout_s = "
                            f"{self.settings.request_timeout_s} s ({received} bytes so far)"
                        )
                    write(chunk)
                return
            except (requests.RequestException, urllib3.exceptions.HTTPError) as error:
                if attempt >= self.settings.retries:
                    raise _EndpointFailure(
                        f"the connection broke while reading the response "
                        f"{attempt + 1} times (last: {error})"
                    ) from error
                restart()
                attempt += 1
                time.sleep(backoff_s(attempt, self.settings.retry_backoff_s))
            finally:
                response.close()

    def _send(self, method: str, path: str, params: dict, headers: dict) -> requests.Response:
        settings = self.settings
        try:
            response = self._session().request(
                method,
                self.url + path,
                params=params,
                headers=headers,
                stream=True,
                timeout=(settings.connect_timeout_s, settings.read_timeout_s),
            )
        except requests.RequestException as error:
            raise _EndpointFailure(
                f"no answer after {settings.retries} retries ({error})"
            ) from error
        if response.status_code != 200:
            try:
                head = response.raw.read(_ERROR_BODY_BYTES, decode_content=True)
            except (requests.RequestException, urllib3.exceptions.HTTPError):
                head = b""
            detail = head.decode("utf-8", "replace")[:300].strip()
            response.close()
            raise _EndpointFailure(
                f"HTTP {response.status_code} after up to {settings.retries} retries: {detail}"
            )
        return response

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            settings = self.settings
            retry = _CappedRetry(
                total=settings.retries,
                backoff_factor=settings.retry_backoff_s,
                status_forcelist=RETRY_STATUSES,
                allowed_methods=None,
                raise_on_status=False,
            )
            adapter = HTTPAdapter(max_retries=retry, pool_maxsize=settings.connections)
            session = requests.Session()
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._local.session = session
        return session


def backoff_s(retry: int, factor: float) -> float:
    """Wait before the `retry`-th retry: urllib3's schedule, so both retry paths agree."""
    return 0.0 if retry <= 1 else min(Retry.DEFAULT_BACKOFF_MAX, factor * 2 ** (retry - 1))


class IpfsClient:
    """Verified blocks and files from the configured endpoints, RPC API first."""

    def __init__(self, settings: ClientSettings):
        self.endpoints = [
            Endpoint(kind, url, settings)
            for kind, url in (("rpc", settings.api_url), ("gateway", settings.gateway_url))
            if url
        ]
        if not self.endpoints:
            raise ConfigError("No IPFS endpoint: set api_url or gateway_url (or offline=True).")

    def block(self, cid: Cid) -> bytes:
        """The verified block named by `cid`."""
        return self._first_success(f"block {cid}", lambda endpoint: endpoint.block(cid))

    def fetch_file(self, cid: Cid, path: Path, max_bytes: int) -> dict[str, bytes]:
        """Writes the file named by `cid` to `path`, verifies it, and returns the blocks of its
        DAG that the check fetched, by CID (none for a raw CID; when this raises, `path` holds
        bytes that must not be used)."""

        def fetch(endpoint: Endpoint) -> dict[str, bytes]:
            blocks: dict[str, bytes] = {}

            def block(link: Cid) -> bytes:
                blocks[str(link)] = endpoint.block(link)
                return blocks[str(link)]

            endpoint.download(cid, path, max_bytes)
            verify_file(cid, memoryview(map_file(path)), block)
            return blocks

        return self._first_success(f"file {cid}", fetch)

    def _first_success(self, what: str, attempt: Callable[[Endpoint], object]):
        problems = []
        for endpoint in self.endpoints:
            try:
                return attempt(endpoint)
            except (_EndpointFailure, IntegrityError) as error:
                problems.append(f"{endpoint}: {error}")
        raise IpfsFetchError(
            f"Could not fetch {what} intact. " + "; ".join(problems) + ". Check that the IPFS "
            "node or gateway is running and reachable (api_url / gateway_url), raise retries or "
            "read_timeout_s for a slow one, or set offline=True to read only cache_dir."
        )
