"""ArrayRecord shards: shard order, reads of small and large records, and the errors for bad
folders and files."""

import grain
import numpy as np
import pytest
from array_record.python.array_record_module import ArrayRecordReader, ArrayRecordWriter

from xlstm_data.errors import DataError
from xlstm_data.sources.array_record import (
    ONE_BY_ONE_BYTES,
    ArrayRecordSource,
    load_array_record_dataset,
    record_group_size,
    write_array_record_shards,
)


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


def random_records(count: int, size: int, seed: int = 0) -> list[bytes]:
    """Incompressible records, so that their stored size is their size."""
    rng = np.random.default_rng(seed)
    return [rng.bytes(size) for _ in range(count)]


@pytest.mark.parametrize("size", [100, 12_000])
def test_reads_match_grains_source_for_small_and_large_records(tmp_path, size):
    records = random_records(40, size)
    files = write_array_record_shards(records, tmp_path, num_shards=3)
    source = load_array_record_dataset(tmp_path)
    # Large records are read one call each (without the GIL), small ones in one call per file.
    assert source.reads_release_gil == (size >= ONE_BY_ONE_BYTES)
    keys = np.random.default_rng(1).permutation(np.r_[np.arange(40), [5, 5, 39]]).tolist()
    reference = grain.sources.ArrayRecordDataSource([str(f) for f in files])
    assert source.__getitems__(keys) == reference.__getitems__(keys) == [records[k] for k in keys]
    assert source._one_by_one == [size >= ONE_BY_ONE_BYTES] * 3


def test_large_records_in_chunks_of_several_are_read_in_one_call(tmp_path):
    records = random_records(12, 12_000)
    path = tmp_path / "train_000000.arecord"
    writer = ArrayRecordWriter(str(path), "group_size:4")
    for record in records:
        writer.write(record)
    writer.close()
    source = load_array_record_dataset(tmp_path)
    assert record_group_size(ArrayRecordReader(str(path))) == 4
    assert source.__getitems__([11, 0, 5]) == [records[11], records[0], records[5]]
    # One call per record would decompress a chunk of four records for each of them.
    assert source.reads_release_gil and source._one_by_one == [False]


def test_a_damaged_record_read_one_by_one_names_its_file(tmp_path):
    (path,) = write_array_record_shards(random_records(20, 12_000), tmp_path, num_shards=1)
    data = bytearray(path.read_bytes())
    data[100_000:100_200] = bytes(200)  # inside record 8, the footer intact
    path.write_bytes(bytes(data))
    source = load_array_record_dataset(tmp_path)
    assert source.reads_release_gil
    with pytest.raises(DataError, match=f"{path.name} cannot be read.*damaged"):
        source.__getitems__(list(range(20)))


def test_a_file_that_fails_when_first_opened_by_a_read_names_itself(tmp_path):
    """Readers open lazily in each worker process: a file damaged or removed since it was
    counted is named by the read that opens it."""
    damaged, removed = tmp_path / "train_000000.arecord", tmp_path / "train_000001.arecord"
    damaged.write_bytes(b"not an array record file" * 5000)
    for path in (damaged, removed):
        with pytest.raises(DataError, match=f"{path.name} cannot be read"):
            ArrayRecordSource([str(path)], [20]).__getitems__([0, 3])
