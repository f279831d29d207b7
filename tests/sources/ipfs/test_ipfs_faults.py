"""Faults between the source and a real node: an outage, a flaky connection, altered bytes and
a damaged cache."""

from __future__ import annotations

import hashlib
import json
import logging
import time

import pytest

from xlstm_data.sources.ipfs import IpfsFetchError, TreeError, open_ipfs_source
from xlstm_data.sources.ipfs.cache import CidCache

from .fault_proxy import FaultProxy
from .ipfs_corpus import expected_documents, ipfs_config, read_all, stopped


def _cached_files(cache_dir) -> list:
    return [p for p in (cache_dir / "files").rglob("*") if p.is_file()]


def test_node_stopped_mid_run_gives_a_clear_error_after_retries(node, corpus, tmp_path):
    source = open_ipfs_source(
        ipfs_config(
            root_cid=corpus.root, api_url=node.api_url, cache_dir=tmp_path, dataset_names=["news"]
        )
    )
    assert source[0] == (corpus.folder / "news" / "2024" / "feb.txt").read_bytes()
    with stopped(node):
        started = time.monotonic()
        with pytest.raises(IpfsFetchError) as error:
            source[1]
        elapsed = time.monotonic() - started
    message = str(error.value)
    assert source.entries[1].cid in message and node.api_url in message
    assert "after 2 retries" in message and "running and reachable" in message
    assert elapsed < 20
    assert source[1] == (corpus.folder / "news" / "2024" / "jan.txt").read_bytes()


@pytest.mark.parametrize(
    "faults",
    [
        ("503", "503"),
        ("drop", "drop"),
        ("delay",),
        ("truncate", "truncate"),
        ("503", "drop", "truncate"),
    ],
)
def test_transient_faults_are_retried(node, corpus, tmp_path, faults):
    config = {
        "root_cid": corpus.root,
        "cache_dir": tmp_path,
        "dataset_names": ["books"],
        "read_timeout_s": 1.0,
        "retries": 3,
        "fetch_threads": 1,
    }
    with FaultProxy(node.api_url, delay_s=2.0) as proxy:
        proxy.inject(*faults)
        source = open_ipfs_source(ipfs_config(**config, api_url=proxy.url))
        assert read_all(source) == expected_documents(corpus.folder, ["books"], "file")
        assert proxy.requests > len(faults)


def test_altered_bytes_are_rejected_and_nothing_is_cached(node, corpus, tmp_path):
    config = {"root_cid": corpus.root, "cache_dir": tmp_path, "dataset_names": ["books"]}
    with FaultProxy(node.api_url) as proxy:
        proxy.alter = True
        with pytest.raises(IpfsFetchError, match="do not hash to CID"):
            open_ipfs_source(ipfs_config(**config, api_url=proxy.url))  # the tree walk
        assert not (tmp_path / "tables").exists() or not list((tmp_path / "tables").iterdir())
        open_ipfs_source(ipfs_config(**config, api_url=node.api_url))  # honest tables
        source = open_ipfs_source(ipfs_config(**config, api_url=proxy.url))
        for key, entry in enumerate(source.entries):  # dag-pb long.txt, raw short.txt
            with pytest.raises(IpfsFetchError, match="do not hash to CID") as error:
                source[key]
            assert entry.cid in str(error.value) and proxy.url in str(error.value)
    assert _cached_files(tmp_path) == []


def test_truncated_cache_file_is_detected_and_fetched_again(node, corpus, tmp_path, caplog):
    config = ipfs_config(
        root_cid=corpus.root,
        api_url=node.api_url,
        cache_dir=tmp_path,
        dataset_names=["books"],
        document_unit="line",
    )
    expected = expected_documents(corpus.folder, ["books"], "line")
    assert read_all(open_ipfs_source(config)) == expected
    cache = CidCache(tmp_path)
    long_file = next(e for e in open_ipfs_source(config).entries if e.path == "long.txt")
    path = cache.file_path(long_file.cid)
    path.write_bytes(path.read_bytes()[:1000])
    with caplog.at_level(logging.WARNING):
        assert read_all(open_ipfs_source(config)) == expected
    assert "is corrupt" in caplog.text
    assert path.stat().st_size == long_file.size


def test_offline_without_a_cache_says_what_to_do(corpus, tmp_path):
    with pytest.raises(TreeError, match="offline=True.*run once with offline=False"):
        open_ipfs_source(ipfs_config(root_cid=corpus.root, cache_dir=tmp_path, offline=True))


def test_an_endpoint_that_trickles_is_given_up_in_bounded_time(node, corpus, tmp_path):
    with FaultProxy(node.api_url, delay_s=0.5) as proxy:
        source = open_ipfs_source(
            ipfs_config(
                root_cid=corpus.root,
                api_url=proxy.url,
                cache_dir=tmp_path,
                dataset_names=["books"],
                request_timeout_s=2.0,
                read_timeout_s=5.0,
            )
        )
        proxy.inject(*["trickle"] * 20)
        started = time.monotonic()
        with pytest.raises(IpfsFetchError, match="longer than request_timeout_s = 2.0 s"):
            source[0]
    assert time.monotonic() - started < 15


def test_an_endless_error_body_is_not_read(node, corpus, tmp_path):
    with FaultProxy(node.api_url) as proxy:
        source = open_ipfs_source(
            ipfs_config(
                root_cid=corpus.root, api_url=proxy.url, cache_dir=tmp_path, dataset_names=["books"]
            )
        )
        proxy.inject(*["endless_404"] * 20)
        started = time.monotonic()
        with pytest.raises(IpfsFetchError, match="HTTP 404"):
            source[0]
        elapsed = time.monotonic() - started
        sent = proxy.sent_error_bytes
    assert elapsed < 15 and sent < 64 << 20  # the client hung up after its first kilobyte


def test_retry_after_is_capped(node, corpus, tmp_path, monkeypatch):
    from xlstm_data.sources.ipfs import client

    monkeypatch.setattr(client, "MAX_RETRY_AFTER_S", 1.0)
    with FaultProxy(node.api_url) as proxy:
        source = open_ipfs_source(
            ipfs_config(
                root_cid=corpus.root, api_url=proxy.url, cache_dir=tmp_path, dataset_names=["books"]
            )
        )
        proxy.inject("retry_after")
        started = time.monotonic()
        assert read_all(source) == expected_documents(corpus.folder, ["books"], "file")
    assert time.monotonic() - started < 10


def test_a_cached_file_rewritten_with_its_record_is_fetched_again(node, corpus, tmp_path, caplog):
    config = ipfs_config(
        root_cid=corpus.root, api_url=node.api_url, cache_dir=tmp_path, dataset_names=["books"]
    )
    expected = expected_documents(corpus.folder, ["books"], "file")
    assert read_all(open_ipfs_source(config)) == expected
    cache = CidCache(tmp_path)
    for entry in open_ipfs_source(config).entries:  # dag-pb long.txt, raw short.txt
        path = cache.file_path(entry.cid)
        forged = path.read_bytes()[::-1]  # same size, other bytes, and a record that agrees
        path.write_bytes(forged)
        record = {"size": len(forged), "sha256": hashlib.sha256(forged).hexdigest()}
        path.with_name(path.name + ".json").write_text(json.dumps(record))
    with caplog.at_level(logging.WARNING):
        assert read_all(open_ipfs_source(config)) == expected
    assert caplog.text.count("is corrupt") == 2
