"""Fixtures of the IPFS tests: a real js-ipfs node on loopback for the session, and a corpus of
several datasets both published on it and kept as a local folder."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from .ipfs_corpus import Corpus, write_corpus
from .ipfs_node import IpfsNode, missing_reason


@pytest.fixture(scope="session")
def ipfs_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IpfsNode]:
    reason = missing_reason()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"The IPFS tests must run in CI, but {reason}.")
        pytest.skip(f"The IPFS tests need a real node: {reason}.")
    node = IpfsNode(tmp_path_factory.mktemp("ipfs-node"))
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def node(ipfs_node: IpfsNode) -> IpfsNode:
    """The session's node, running (restarted if a test left it stopped)."""
    if ipfs_node.process is None or ipfs_node.process.poll() is not None:
        ipfs_node.start()
    return ipfs_node


@pytest.fixture(scope="session")
def corpus(ipfs_node: IpfsNode, tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    folder = tmp_path_factory.mktemp("corpus")
    write_corpus(folder)
    root = ipfs_node.add_tree(folder, skip=("shards",))
    root = ipfs_node.add_sharded_dataset(root, "shards", folder / "shards")
    return Corpus(folder, root)
