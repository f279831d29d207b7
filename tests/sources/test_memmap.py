"""Memmap token sources: nanoGPT windows (x/y one token apart), documents, workers, bad files."""

import os
import pickle

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xlstm_data import MemmapDataConfig, make_grain_iterator
from xlstm_data.config import load_configs
from xlstm_data.errors import InvalidRecordError
from xlstm_data.sources.memmap import (
    MemmapWindows,
    TokenFile,
    document_index_path,
    open_memmap_source,
    window_offsets,
)
from xlstm_data.sources.registry import open_source

MESH = jax.make_mesh((8,), ("data",))


def all_batches(iterator) -> list[dict[str, np.ndarray]]:
    with iterator:
        return [{k: np.asarray(v) for k, v in vars(b).items() if v is not None} for b in iterator]


def write_bin(path, tokens, dtype=np.uint16):
    np.asarray(tokens, dtype=dtype).tofile(path)
    return str(path)


def memmap_config(files, **overrides) -> MemmapDataConfig:
    values = {
        "data_files": files,
        "global_batch_size": 8,
        "max_target_length": 16,
        "worker_count": 0,
        "read_block_size": 16,
    }
    return MemmapDataConfig(**(values | overrides))


def test_windows_are_the_file_with_targets_one_token_ahead(tmp_path):
    tokens = np.arange(8 * 17 * 3 + 5) % 1000  # 24 windows of 17 tokens and a 5-token tail
    config = memmap_config(write_bin(tmp_path / "train.bin", tokens), num_epochs=1, window_offset=0)
    iterator = make_grain_iterator(config, MESH, [0])
    batches = all_batches(iterator)
    assert len(batches) == 3
    windows = np.concatenate([np.c_[b["inputs"], b["targets"][:, -1:]] for b in batches])
    np.testing.assert_array_equal(windows, tokens[: 24 * 17].reshape(24, 17))
    for batch in batches:  # nanoGPT's x and y
        np.testing.assert_array_equal(batch["inputs"][:, 1:], batch["targets"][:, :-1])
        assert (batch["targets_segmentation"] == 1).all()
    assert iterator.counts["tokens"] == 24 * 17


def test_windows_are_reproducible_and_follow_the_seed(tmp_path):
    rng = np.random.default_rng(0)
    files = [write_bin(tmp_path / "a.bin", rng.integers(0, 900, 1000))]
    np.save(tmp_path / "b.npy", rng.integers(0, 900, 700).astype(np.int32))
    files.append(str(tmp_path / "b.npy"))

    def first_batches(seed: int) -> list[np.ndarray]:
        config = memmap_config(files, shuffle_data=True, data_shuffle_seed=seed)
        with make_grain_iterator(config, MESH, [0]) as iterator:
            return [np.asarray(next(iterator).inputs) for _ in range(12)]

    first, again = first_batches(1), first_batches(1)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not all(np.array_equal(a, b) for a, b in zip(first, first_batches(2), strict=True))
    # Records are whole windows of one file or the other, at the seed's offsets.
    source = open_source(memmap_config(files, data_shuffle_seed=1))
    assert len(source) == 1000 // 17 + 700 // 17
    windows = {tuple(w) for w in source.__getitems__(list(range(len(source))))}
    assert {tuple(row) for batch in first for row in batch} <= {w[:16] for w in windows}


@settings(max_examples=50, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 5_000), min_size=1, max_size=5),
    window=st.integers(2, 600),
    seed=st.integers(0, 2**32),
)
def test_window_tiling_keeps_every_possible_window(sizes, window, seed):
    sizes = [max(s, window) for s in sizes]
    offsets = window_offsets(np.array(sizes), window, None, seed)
    np.testing.assert_array_equal(offsets, window_offsets(np.array(sizes), window, None, seed))
    files = [TokenFile(f"f{i}.bin", "<u2", (s,), 0) for i, s in enumerate(sizes)]
    source = MemmapWindows(files, window=window, offset=None, seed=seed)
    assert len(source) == sum(s // window for s in sizes)
    starts: dict[str, list[int]] = {}
    for key in range(len(source)):
        file, start = source.locate(key)
        starts.setdefault(file, []).append(start)
    for file, size, offset in zip(files, sizes, offsets, strict=True):
        # Consecutive, non-overlapping, inside the file, from the seeded offset.
        assert starts[file.path] == [offset + k * window for k in range(size // window)]
        assert 0 <= offset <= size % window


def test_worker_processes_reopen_the_files(tmp_path):
    tokens = np.random.default_rng(1).integers(0, 900, 1_000_000)
    files = [write_bin(tmp_path / "train.bin", tokens)]
    source = open_source(memmap_config(files))
    source[0]  # opened here: the pickle must still hold only paths and shapes
    state = pickle.dumps(source)
    assert len(state) < 2_000
    copy = pickle.loads(state)
    np.testing.assert_array_equal(copy.__getitems__([5, 3]), source.__getitems__([5, 3]))
    batches = {}
    for workers in (0, 1):
        config = memmap_config(files, shuffle_data=True, worker_count=workers)
        with make_grain_iterator(config, MESH, [0]) as iterator:
            batches[workers] = [np.asarray(next(iterator).targets) for _ in range(4)]
    for a, b in zip(batches[0], batches[1], strict=True):
        np.testing.assert_array_equal(a, b)


def stream_of_documents(count: int, eod: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(10, 900, int(rng.integers(1, 40))) for _ in range(count)]


def test_documents_mode_splits_a_stream_after_each_eod(tmp_path):
    documents = stream_of_documents(50, eod=5)
    stream = np.concatenate([np.r_[d, 5] for d in documents] + [documents[0]])  # last: no EOD
    path = tmp_path / "stream.npy"
    np.save(path, stream.astype(np.int32))
    config = memmap_config(
        str(path),
        records="documents",
        eod_token_id=5,
        shift_target="inputs",
        max_target_length=48,
        num_epochs=1,
        drop_remainder=False,
    )
    rows = [
        t[s > 0].tolist()
        for b in all_batches(make_grain_iterator(config, MESH, [0]))
        for t, s in zip(b["targets"], b["targets_segmentation"], strict=True)
        if s.any()
    ]
    assert rows == [np.r_[d, 5].tolist() for d in documents] + [documents[0].tolist()]
    index = document_index_path(open_source(config).token_files[0], 5)
    built = index.stat().st_mtime_ns
    os.utime(path, ns=(built + 10**9, built + 10**9))
    open_source(config)  # the index is reused while the data is the same (touched or not) ...
    assert index.stat().st_mtime_ns == built
    other = np.concatenate([np.r_[d, 5] for d in documents[:20]]).astype(np.int32)
    np.save(path, other)
    os.utime(path, ns=(built - 10**9, built - 10**9))  # replaced by an older file
    source = open_source(config)  # ... and built again when the data is other data
    assert index.stat().st_mtime_ns > built
    assert [d.tolist() for d in source.__getitems__(list(range(len(source))))] == [
        np.r_[d, 5].tolist() for d in documents[:20]
    ]


def test_documents_mode_reads_rows_without_their_padding(tmp_path):
    rows = np.array([[7, 8, 9, 0, 0], [1, 2, 3, 4, 5], [6, 0, 0, 0, 0]], dtype=np.uint16)
    np.save(tmp_path / "rows.npy", rows)
    path = str(tmp_path / "rows.npy")
    source = open_memmap_source(memmap_config(path, records="documents", pad_token_id=0))
    assert [r.tolist() for r in source.__getitems__([2, 0, 1])] == [[6], [7, 8, 9], [1, 2, 3, 4, 5]]
    assert source.describe(1) == f"document 1 of {tmp_path / 'rows.npy'}"
    whole = open_memmap_source(memmap_config(path, records="documents"))
    assert whole[0].tolist() == [7, 8, 9, 0, 0]


def test_bad_files_are_named(tmp_path):
    def error(files, **overrides):
        with pytest.raises((ValueError, InvalidRecordError)) as info:
            config = memmap_config(files, **overrides)
            next(make_grain_iterator(config, MESH, [0]))
        return str(info.value)

    short = write_bin(tmp_path / "short.bin", np.arange(10))
    assert f"Token file {short} holds 10 tokens, fewer than one window of 17" in error(short)
    np.save(tmp_path / "cube.npy", np.zeros((2, 3, 4), np.int32))
    assert "cube.npy holds a 3-D array" in error(str(tmp_path / "cube.npy"))
    np.save(tmp_path / "float.npy", np.zeros(100, np.float32))
    assert "float.npy holds float32 values, not integer token ids" in error(
        str(tmp_path / "float.npy")
    )
    (tmp_path / "odd.bin").write_bytes(b"\0" * 101)
    assert "odd.bin has 101 bytes, not a multiple of 2" in error(str(tmp_path / "odd.bin"))
    assert "does not exist" in error(str(tmp_path / "missing.bin"))
    assert "No token file matches" in error(str(tmp_path / "none-*.bin"))
    big = write_bin(tmp_path / "big.bin", np.r_[np.zeros(40), 1000, np.zeros(40)])
    assert f"window 2 of {big} (tokens 34 to 51) holds ids outside [0, 1000)" in error(
        big, vocab_size=1000, window_offset=0, drop_remainder=False
    )
    stream = write_bin(tmp_path / "stream.bin", np.arange(100))
    assert "stream.bin is a 1-D stream" in error(stream, records="documents")
    # An int64 id past int32 would wrap into a valid id (2^32 + 5 → 5): refused, named.
    np.save(tmp_path / "wide.npy", np.r_[np.zeros(40), 2**32 + 5, np.zeros(40)].astype(np.int64))
    assert "wide.npy holds id 4294967301, beyond the int32 token ids" in error(
        str(tmp_path / "wide.npy"), vocab_size=1000, window_offset=0, drop_remainder=False
    )


def test_config_defaults_and_yaml(tmp_path):
    (tmp_path / "memmap.yaml").write_text(
        "data_config_type: memmap\ndata_files: [/data/train.bin]\n"
        "global_batch_size: 8\nmax_target_length: 1024\n"
    )
    (config,), _ = load_configs(tmp_path / "memmap.yaml")
    assert isinstance(config, MemmapDataConfig)
    assert (config.shift_target, config.row_length, config.add_eod) == ("targets", 1025, False)
    assert not config.tokenize_data and config.tokenizer_path is None
    with pytest.raises(ValueError, match="tokenize_data = True must be False"):
        memmap_config("x.bin", tokenize_data=True)
