"""The IPFS source's parts that need no node: CIDs, names, line spans, selection, cache, config."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import pytest

from xlstm_data.config import IpfsDataConfig, load_configs
from xlstm_data.sources.ipfs import Cid, CidError, IntegrityError, TreeError, check_name
from xlstm_data.sources.ipfs.build import choose_datasets, take_files
from xlstm_data.sources.ipfs.cache import CidCache
from xlstm_data.sources.ipfs.cid import DAG_PB, RAW, verify_block
from xlstm_data.sources.ipfs.lines import line_spans, spans_fit
from xlstm_data.sources.ipfs.table import FileEntry

REPO = Path(__file__).resolve().parents[3]
# One directory, as js-ipfs printed it in base58btc and in base32.
DIRECTORY_Z = "zdj7WkDJbbsdhxYLgyjBF9Kz922GUTQtb1A2YK7eiAXUmpun5"
DIRECTORY_B = "bafybeig3uvmhxxonk6zffnshnwn3vnpr26v2mcqtatlgz6wteloiyatgpy"
HI_RAW = "zb2rhgwCVg3iEfvDBxYToAHjm9CXPvZus7Sc9JbjUKuL327yu"  # raw block b"hi\n"


def test_cid_spellings_name_the_same_block():
    assert Cid.parse(DIRECTORY_Z) == Cid.parse(DIRECTORY_B)
    assert str(Cid.parse(DIRECTORY_Z)) == DIRECTORY_B
    assert Cid.parse(DIRECTORY_B.upper()) == Cid.parse(DIRECTORY_B)
    assert Cid.parse(DIRECTORY_B).codec == DAG_PB
    raw = Cid.parse(HI_RAW)
    assert raw.codec == RAW and Cid.from_bytes(raw.to_bytes()) == raw


def test_cid_v0_is_the_dag_pb_cid_v1_of_its_block():
    digest = hashlib.sha256(b"some block").digest()
    v0 = Cid.from_bytes(bytes([0x12, 32]) + digest)
    assert (v0.version, v0.codec, v0.digest) == (0, DAG_PB, digest)
    assert str(v0).startswith("bafybei")
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    number = int.from_bytes(bytes([0x12, 32]) + digest, "big")
    text = ""
    while number:
        number, rest = divmod(number, 58)
        text = alphabet[rest] + text
    assert text.startswith("Qm") and Cid.parse(text) == v0


@pytest.mark.parametrize("text", ["", "hello", "bafy!!", "z0OIl", "Qm" + "1" * 44])
def test_invalid_cids_are_refused(text):
    with pytest.raises(CidError):
        Cid.parse(text)


def test_unverifiable_hash_functions_are_refused():
    sha512 = bytes([1, RAW, 0x13, 64]) + b"\0" * 64
    with pytest.raises(CidError, match="sha2-256"):
        Cid.from_bytes(sha512)


def test_blocks_are_checked_against_their_cid():
    verify_block(Cid.parse(HI_RAW), b"hi\n", "test")
    with pytest.raises(IntegrityError, match="do not hash"):
        verify_block(Cid.parse(HI_RAW), b"ho\n", "test")


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "../etc", "/abs", "a\\b", "nul\0"])
def test_unsafe_names_are_refused(name):
    with pytest.raises(TreeError, match="not a safe file name"):
        check_name(name, "test directory")


def test_safe_names_pass():
    assert check_name("wiki.de-2024 (v2)", "test") == "wiki.de-2024 (v2)"


@pytest.mark.parametrize(
    "text", [b"", b"\n\n", b"one", b"one\ntwo\n", b"\na\n\nbb\n\nccc", b"x\n" * 50 + b"tail"]
)
@pytest.mark.parametrize("piece_bytes", [3, 1 << 20])
def test_line_spans_are_the_non_empty_lines(text, piece_bytes):
    content = np.frombuffer(text, np.uint8)
    spans = line_spans(content, piece_bytes)
    assert [text[s:e] for s, e in spans.tolist()] == [line for line in text.split(b"\n") if line]
    assert spans_fit(spans, content)


def test_stored_spans_of_another_file_do_not_fit():
    content = np.frombuffer(b"aa\nbb\ncc", np.uint8)
    assert not spans_fit(np.array([[0, 1], [3, 5]], np.int64), content)
    assert not spans_fit(np.array([[0, 2], [3, 5], [6, 9]], np.int64), content)
    assert not spans_fit(np.zeros((0, 2), np.int64), content)
    assert not spans_fit(np.array([0, 2]), content)


def test_unknown_datasets_are_reported_and_left_out(caplog):
    available = {"books": 1, "wiki": 2}
    with caplog.at_level(logging.WARNING):
        assert choose_datasets(available, ["wiki", "nope", "wiki"], "root") == ["wiki"]
    assert "nope" in caplog.text and "books" in caplog.text
    assert choose_datasets(available, None, "root") == ["books", "wiki"]
    with pytest.raises(ValueError, match="none of the datasets"):
        choose_datasets(available, ["nope"], "root")


def test_caps_take_a_prefix_of_the_files(caplog):
    caplog.set_level(logging.INFO)
    files = [FileEntry("d", f"{i}.txt", None, 10) for i in range(5)]
    files.insert(2, FileEntry("d", "2.md", None, 10))
    take = take_files
    assert len(take(files, suffixes=None, max_files=None, max_bytes=None)) == 6
    assert [f.path for f in take(files, suffixes=[".txt"], max_files=3, max_bytes=None)] == [
        "0.txt",
        "1.txt",
        "2.txt",
    ]
    assert len(take(files, suffixes=None, max_files=None, max_bytes=35)) == 3
    assert take(files, suffixes=None, max_files=None, max_bytes=5) == []
    # What a cap leaves out is logged.
    assert "take 3 files, 30 bytes, and leave out the files from 3.txt on" in caplog.text


def write_hi(path: Path) -> None:
    path.write_bytes(b"hi\n")


def test_cache_keeps_only_what_was_verified(tmp_path):
    cache = CidCache(tmp_path)
    cid = str(Cid.parse(HI_RAW))

    def fill_and_verify(path: Path) -> None:
        path.write_bytes(b"ho\n")
        verify_block(Cid.parse(HI_RAW), path.read_bytes(), "test")

    with pytest.raises(IntegrityError):
        cache.store(cid, fill_and_verify)
    assert cache.open(cid) is None
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]
    assert cache.store(cid, write_hi).tobytes() == b"hi\n"
    assert cache.open(cid).tobytes() == b"hi\n"


def test_corrupt_cache_entries_are_removed(tmp_path, caplog):
    cache = CidCache(tmp_path)
    cid = str(Cid.parse(HI_RAW))
    cache.store(cid, write_hi)
    cache.file_path(cid).write_bytes(b"ho\n")  # same size, other bytes
    with caplog.at_level(logging.WARNING):
        assert cache.open(cid) is None
    assert "sha256 changed" in caplog.text
    assert not cache.file_path(cid).exists()


def test_a_cache_entry_rewritten_with_its_record_is_not_served(tmp_path, caplog):
    cache = CidCache(tmp_path)
    cid = str(Cid.parse(HI_RAW))
    cache.store(cid, write_hi)
    record = cache.file_path(cid).with_name(cid + ".json")
    cache.file_path(cid).write_bytes(b"ho\n")  # other bytes, and a record that agrees
    record.write_text(json.dumps({"size": 3, "sha256": hashlib.sha256(b"ho\n").hexdigest()}))
    with caplog.at_level(logging.WARNING):
        assert cache.open(cid) is None
    assert "do not hash to CID" in caplog.text


def _config(**fields) -> IpfsDataConfig:
    return IpfsDataConfig(
        **(
            {
                "global_batch_size": 2,
                "max_target_length": 8,
                "tokenize_data": False,
                "root_cid": DIRECTORY_B,
            }
            | fields
        )
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"root_cid": None}, "set exactly one"),
        ({"data_dir": "."}, "set exactly one"),
        ({"root_cid": "not-a-cid"}, "not a usable CID"),
        ({"root_cid": HI_RAW}, "not a directory"),
        ({"dataset_names": ["wiki", "../etc"]}, "not a safe file name"),
        ({"dataset_names": []}, "use None for all"),
        ({"api_url": "127.0.0.1:5001"}, "http://"),
        ({"api_url": None}, "set one, or offline=True"),
        ({"retries": -1}, "retries"),
        ({"read_timeout_s": 0}, "read_timeout_s"),
        ({"max_bytes_per_dataset": 0}, "max_bytes_per_dataset"),
        ({"document_unit": "page"}, "document_unit"),
    ],
)
def test_config_errors_name_the_field_and_fix(fields, message):
    with pytest.raises(ValueError, match=message):
        _config(**fields)


def test_config_accepts_a_cache_only_or_local_setup(tmp_path):
    assert _config(api_url=None, offline=True).offline
    assert _config(root_cid=None, data_dir=str(tmp_path)).data_dir == tmp_path


def test_example_yaml_config_loads():
    (config,), weights = load_configs(REPO / "configs" / "ipfs.yaml")
    assert isinstance(config, IpfsDataConfig) and weights is None
    assert config.dataset_names == ["wiki", "books"] and config.document_unit == "line"
