"""A real IPFS node for the tests: js-ipfs from scripts/install_ipfs_node.sh, with its own
repository, free loopback ports, and nothing that dials out (no bootstrap peers, delegates,
swarm listeners, MDNS or preload; the daemon runs --offline)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import requests

INSTALL = Path(__file__).resolve().parents[3] / ".cache" / "ipfs-node"
JSIPFS = INSTALL / "node_modules" / ".bin" / "jsipfs"
POLYFILL = INSTALL / "polyfill.cjs"
START_TIMEOUT_S = 60


def missing_reason() -> str | None:
    """Why the node cannot run here, or None."""
    if not (shutil.which("node") and shutil.which("npm")):
        return "node and npm are not installed"
    if not (JSIPFS.exists() and POLYFILL.exists()):
        return f"js-ipfs is not in {INSTALL}; run `bash scripts/install_ipfs_node.sh`"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class IpfsNode:
    """One js-ipfs daemon; `stop()` and `start()` it to simulate an outage."""

    def __init__(self, folder: Path):
        self.repo = folder / "repo"
        self.log = folder / "daemon.log"
        self.api_url = f"http://127.0.0.1:{free_port()}"
        self.gateway_url = f"http://127.0.0.1:{free_port()}"
        self.env = {
            **os.environ,
            "IPFS_PATH": str(self.repo),
            "NODE_OPTIONS": f"--require {POLYFILL}",
        }
        self.process: subprocess.Popen | None = None
        self._jsipfs("init", "--empty-repo")
        config_path = self.repo / "config"
        config = json.loads(config_path.read_text())
        config["Bootstrap"] = []
        config["Addresses"].update(
            Swarm=[],
            Delegates=[],
            RPC="",
            API=_multiaddr(self.api_url),
            Gateway=_multiaddr(self.gateway_url),
        )
        config["Discovery"]["MDNS"]["Enabled"] = False
        config["Discovery"]["webRTCStar"]["Enabled"] = False
        config_path.write_text(json.dumps(config, indent=2))

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [
                    shutil.which("node"),
                    str(JSIPFS),
                    "daemon",
                    "--offline",
                    "--enable-preload=false",
                ],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"js-ipfs exited with {self.process.returncode}:\n"
                    f"{self.log.read_text()[-2000:]}"
                )
            try:
                requests.post(f"{self.api_url}/api/v0/version", timeout=1).raise_for_status()
                return
            except requests.RequestException:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(
            f"js-ipfs did not answer within {START_TIMEOUT_S} s:\n{self.log.read_text()[-2000:]}"
        )

    def stop(self) -> None:
        """Ends the daemon's process group: politely, then by force after 15 s."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=15)

    def rpc(self, command: str, files: list | None = None, **params) -> list[dict]:
        """Calls /api/v0/<command>; returns its newline-delimited JSON objects."""
        response = requests.post(
            f"{self.api_url}/api/v0/{command}", params=params, files=files, timeout=60
        )
        response.raise_for_status()
        return [json.loads(line) for line in response.text.splitlines() if line.strip()]

    def add_tree(self, folder: Path, skip: tuple[str, ...] = (), cid_version: int = 1) -> str:
        """Adds every file under `folder` (except top-level `skip` names) as one directory tree
        (CIDv1 with raw leaves, or CIDv0 with dag-pb leaves); returns the root CID."""
        paths = sorted(
            p
            for p in folder.rglob("*")
            if p.is_file() and p.relative_to(folder).parts[0] not in skip
        )
        files = [
            (
                "file",
                (
                    quote(p.relative_to(folder).as_posix(), safe=""),
                    p.read_bytes(),
                    "application/octet-stream",
                ),
            )
            for p in paths
        ]
        added = self.rpc(
            "add",
            files=files,
            **{
                "cid-version": cid_version,
                "raw-leaves": "true" if cid_version else "false",
                "wrap-with-directory": "true",
                "pin": "true",
            },
        )
        return next(entry["Hash"] for entry in added if entry["Name"] == "")

    def add_sharded_dataset(self, root: str, dataset: str, folder: Path) -> str:
        """`root` with one more dataset: the files of `folder` in a HAMT-sharded directory (as
        large directories are), built with the node's MFS; returns the new root CID."""
        shard = {"cid-version": 1, "shard-split-threshold": 2}
        tree = f"/tree-{root[-8:]}-{dataset}"
        self.rpc("files/cp", arg=[f"/ipfs/{root}", tree])
        self.rpc("files/mkdir", arg=f"{tree}/{dataset}", **shard)
        for path in sorted(folder.iterdir()):
            added = self.rpc(
                "add",
                files=[("file", (path.name, path.read_bytes(), "application/octet-stream"))],
                **{"cid-version": 1, "raw-leaves": "true"},
            )
            self.rpc(
                "files/cp",
                arg=[f"/ipfs/{added[-1]['Hash']}", f"{tree}/{dataset}/{path.name}"],
                **shard,
            )
        return self.rpc("files/stat", arg=tree)[0]["Hash"]

    def _jsipfs(self, *args: str) -> None:
        subprocess.run(
            [shutil.which("node"), str(JSIPFS), *args],
            env=self.env,
            check=True,
            capture_output=True,
            timeout=120,
        )


def _multiaddr(url: str) -> str:
    host, port = url.removeprefix("http://").split(":")
    return f"/ip4/{host}/tcp/{port}"
