"""The IPFS source against a real node: the documents of a published tree, then the same from
the cache alone (node stopped), from a local mirror, and through a gateway."""

from __future__ import annotations

import logging
import pickle

import pytest
import requests

from xlstm_data.sources.ipfs import Cid, IntegrityError, IpfsFetchError, open_ipfs_source
from xlstm_data.sources.ipfs.build import client_settings
from xlstm_data.sources.ipfs.client import IpfsClient
from xlstm_data.sources.ipfs.unixfs import NodeType, decode_node, verify_file

from .ipfs_corpus import expected_documents, ipfs_config, read_all, stopped


def test_tree_yields_its_documents_then_works_from_the_cache_alone(node, corpus, tmp_path):
    cache = tmp_path / "cache"
    for unit in ("file", "line"):
        source = open_ipfs_source(
            ipfs_config(
                root_cid=corpus.root, api_url=node.api_url, cache_dir=cache, document_unit=unit
            )
        )
        assert read_all(source) == expected_documents(corpus.folder, corpus.datasets, unit)
    with stopped(node):
        for unit in ("file", "line"):
            for offline in (False, True):
                source = open_ipfs_source(
                    ipfs_config(
                        root_cid=corpus.root,
                        api_url=node.api_url,
                        cache_dir=cache,
                        document_unit=unit,
                        offline=offline,
                    )
                )
                documents = read_all(source)
                assert documents == expected_documents(corpus.folder, corpus.datasets, unit)


def test_tree_has_multi_block_files_and_a_sharded_directory(node, corpus, tmp_path):
    """The corpus exercises dag-pb files (several blocks) and a HAMT directory, not just raw
    single-block files in plain directories."""
    source = open_ipfs_source(
        ipfs_config(root_cid=corpus.root, api_url=node.api_url, cache_dir=tmp_path)
    )
    long_file = next(entry for entry in source.entries if entry.path == "long.txt")
    assert Cid.parse(long_file.cid).codec_name == "dag-pb"
    assert long_file.size > 262144  # more than one 256 KiB chunk
    listing = requests.post(
        f"{node.api_url}/api/v0/ls", params={"arg": corpus.root}, timeout=10
    ).json()["Objects"][0]["Links"]
    shards = Cid.parse(next(link["Hash"] for link in listing if link["Name"] == "shards"))
    block = requests.post(
        f"{node.api_url}/api/v0/block/get", params={"arg": str(shards)}, timeout=10
    ).content
    shard = decode_node(shards, block)
    assert shard.type == NodeType.HAMT_SHARD
    assert any(len(link.name) == 2 for link in shard.links)  # a sub-shard
    assert len([e for e in source.entries if e.dataset == "shards"]) == 40


def test_local_mirror_yields_the_same_documents(corpus, tmp_path):
    for unit in ("file", "line"):
        source = open_ipfs_source(
            ipfs_config(root_cid=None, data_dir=corpus.folder, document_unit=unit)
        )
        assert read_all(source) == expected_documents(corpus.folder, corpus.datasets, unit)


def test_dataset_names_suffixes_and_caps_choose_the_files(node, corpus, tmp_path, caplog):
    config = {"root_cid": corpus.root, "api_url": node.api_url, "cache_dir": tmp_path}
    with caplog.at_level(logging.WARNING):
        source = open_ipfs_source(
            ipfs_config(**config, dataset_names=["wiki", "missing"], file_suffixes=[".txt"])
        )
    assert "missing" in caplog.text
    assert read_all(source) == expected_documents(corpus.folder, ["wiki"], "file", (".txt",))
    source = open_ipfs_source(
        ipfs_config(**config, dataset_names=["news", "books"], max_files_per_dataset=1)
    )
    assert [f"{f.dataset}/{f.path}" for f in source.entries] == [
        "news/2024/feb.txt",
        "books/long.txt",
    ]
    with pytest.raises(ValueError, match="none of the datasets"):
        open_ipfs_source(ipfs_config(**config, dataset_names=["missing"]))


def test_source_survives_pickling_and_describes_its_records(node, corpus, tmp_path):
    source = open_ipfs_source(
        ipfs_config(
            root_cid=corpus.root,
            api_url=node.api_url,
            cache_dir=tmp_path,
            dataset_names=["wiki"],
            document_unit="line",
        )
    )
    copy = pickle.loads(pickle.dumps(source))
    assert read_all(copy) == read_all(source)
    description = source.describe(1)
    assert "wiki/a.txt" in description and "(CID bafk" in description
    assert "dataset 'wiki'" in description


def test_gateway_serves_raw_files_but_needs_trustless_blocks_for_dag_pb(node, corpus, tmp_path):
    """js-ipfs's gateway ignores ?format=raw, so a dag-pb file cannot be verified through it:
    that must fail clearly, while raw single-block files verify from their bytes alone."""
    config = {"root_cid": corpus.root, "cache_dir": tmp_path, "dataset_names": ["books"]}
    open_ipfs_source(ipfs_config(**config, api_url=node.api_url))  # tables into the cache
    source = open_ipfs_source(ipfs_config(**config, api_url=None, gateway_url=node.gateway_url))
    short = next(i for i, entry in enumerate(source.entries) if entry.path == "short.txt")
    assert source[short] == (corpus.folder / "books" / "short.txt").read_bytes()
    with pytest.raises(IpfsFetchError, match=r"format=raw") as error:
        source[0]
    assert source.entries[0].cid in str(error.value) and node.gateway_url in str(error.value)


def test_cid_v0_tree_with_dag_pb_leaves(node, corpus, tmp_path):
    """`ipfs add` without options: CIDv0 directories and files whose leaves are dag-pb nodes."""
    root = node.add_tree(corpus.folder, skip=("shards",), cid_version=0)
    assert root.startswith("Qm")
    source = open_ipfs_source(ipfs_config(root_cid=root, api_url=node.api_url, cache_dir=tmp_path))
    datasets = ["books", "news", "wiki"]
    assert read_all(source) == expected_documents(corpus.folder, datasets, "file")
    long_file = next(entry for entry in source.entries if entry.path == "long.txt")
    content = bytearray((corpus.folder / "books" / "long.txt").read_bytes())
    client = IpfsClient(client_settings(ipfs_config(root_cid=root, api_url=node.api_url)))
    cid = Cid.parse(long_file.cid)
    assert {link.cid.codec_name for link in decode_node(cid, client.block(cid)).links} == {"dag-pb"}
    verify_file(cid, memoryview(bytes(content)), client.block)
    for altered in (content[:-1], content + b"x", content[:300_000] + b"X" + content[300_001:]):
        with pytest.raises(IntegrityError):
            verify_file(cid, memoryview(bytes(altered)), client.block)
