"""ArrayRecord shards: shard order, and the errors for bad folders and files."""

import pytest

from xlstm_data.sources.array_record import load_array_record_dataset, write_array_record_shards


def test_shards_are_read_in_shard_index_order(tmp_path):
    for shard in (10, 2, 1):
        write_array_record_shards(
            [f"{shard}-{i}".encode() for i in range(3)], tmp_path / "tmp", num_shards=1
        )
        (tmp_path / "tmp" / "train_000000.arecord").rename(tmp_path / f"train_{shard}.arecord")
    source = load_array_record_dataset(tmp_path)
    assert [source[i] for i in range(len(source))] == [
        f"{s}-{i}".encode() for s in (1, 2, 10) for i in range(3)
    ]
    assert source.describe(4) == f"record 1 of {tmp_path / 'train_2.arecord'}"
    assert source.__getitems__([8, 0]) == [b"10-2", b"1-0"]


def test_missing_empty_and_corrupt_folders(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_array_record_dataset(tmp_path / "missing")
    with pytest.raises(ValueError, match=r"no \*\.arecord files"):
        load_array_record_dataset(tmp_path)
    (tmp_path / "train_000000.arecord").write_bytes(b"this is not an array record file" * 10)
    with pytest.raises(ValueError, match="train_000000.arecord cannot be opened.*corrupt"):
        load_array_record_dataset(tmp_path)


def test_truncated_shard_is_reported(tmp_path):
    (path,) = write_array_record_shards([b"x" * 1000] * 200, tmp_path, num_shards=1)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match=f"{path.name} cannot be opened"):
        load_array_record_dataset(tmp_path)
