"""xlstm-jax's `tests/dataset/test_grain_iterator.py` and `test_synthetic_dataloading.py`,
rewritten from their behaviour for xlstm-data's pipeline: host split, reshuffled epochs, exact
resume inside `for` loops, ramp-up, mixing, epoch windows and `len()`, synthetic data.

Records are identifiable: record i starts with token FIRST + i, so `targets[:, 0]` names the
record a row holds (unpacked rows, one record each).
"""

import itertools

import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec

from xlstm_data.api import preprocess_dataset
from xlstm_data.compat.xlstm_jax import (
    GrainArrayRecordsDataConfig,
    LLMBatch,
    SyntheticDataConfig,
    create_data_iterator,
    create_mixed_data_iterator,
    get_process_loading_data,
)
from xlstm_data.sources.array_record import load_array_record_dataset, write_array_record_shards
from xlstm_data.stages.shift import field

FIRST, EOD, LENGTH, GLOBAL_BATCH = 1000, 5, 16, 32
MESH = jax.make_mesh((8, 1, 1), ("dp", "fsdp", "tp"))


def write_records(root, ids, *, tokens_per_record=8, split="train"):
    """Records FIRST + i for i in `ids`, each `tokens_per_record` tokens long."""
    rng = np.random.default_rng(0)
    records = []
    for i in ids:
        body = rng.integers(10, 900, size=tokens_per_record - 1, dtype=np.int32)
        records.append(np.concatenate([[FIRST + i], body]).astype(np.int32).tobytes())
    write_array_record_shards(records, root / split, num_shards=2)
    return root


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """Folders of 34, 201, 256, 500 and 2000 records."""
    base = tmp_path_factory.mktemp("compat_records")
    return {n: write_records(base / str(n), range(n)) for n in (34, 201, 256, 500, 2000)}


def config(root, **overrides):
    values = {
        "data_path": root,
        "global_batch_size": GLOBAL_BATCH,
        "max_target_length": LENGTH,
        "tokenize_data": False,
        "eod_token_id": EOD,
        "truncate_documents": True,
        "worker_count": 0,
    }
    return GrainArrayRecordsDataConfig(**(values | overrides))


def record_ids(batch) -> np.ndarray:
    """The record of each real row of a batch (padding rows left out)."""
    targets = np.asarray(batch.targets if isinstance(batch, LLMBatch) else batch)
    return targets[:, 0][targets[:, 0] >= FIRST] - FIRST


@pytest.mark.parametrize("host_count", [2, 4])
@pytest.mark.parametrize("num_elements", [34, 201])
@pytest.mark.parametrize("drop_remainder", [True, False])
def test_grain_dataloader_process_split(records, host_count, num_elements, drop_remainder):
    """Hosts read disjoint rows of every global batch and yield as many batches each; one
    epoch covers the records once (xlstm-jax gives each host a contiguous slice instead,
    with uneven batch counts)."""
    source = load_array_record_dataset(records[num_elements] / "train")
    per_host = []
    for host in range(host_count):
        dataset, _ = preprocess_dataset(
            host, host_count, source, "text", False, GLOBAL_BATCH, LENGTH, False, 42,
            add_bos=False, add_eos=False, num_epochs=1, drop_remainder=drop_remainder,
            eod_token_id=EOD,
            truncate_documents=True, worker_count=0,
        )  # fmt: skip
        per_host.append([record_ids(field(fields, "targets")) for fields, _ in dataset])
    assert len({len(batches) for batches in per_host}) == 1
    kept = num_elements // GLOBAL_BATCH * GLOBAL_BATCH if drop_remainder else num_elements
    local = GLOBAL_BATCH // host_count
    for step in range(len(per_host[0])):
        global_batch = np.concatenate([batches[step] for batches in per_host])
        begin = step * GLOBAL_BATCH
        np.testing.assert_array_equal(global_batch, np.arange(begin, min(begin + 32, kept)))
        for host, batches in enumerate(per_host):
            start = begin + host * local
            np.testing.assert_array_equal(batches[step], np.arange(start, min(start + local, kept)))


@pytest.mark.parametrize("num_elements", [256, 500])
def test_grain_dataloader_shuffling_over_epochs(records, num_elements):
    setup = config(records[num_elements], shuffle_data=True, num_epochs=4)
    loader = create_data_iterator(setup, MESH)
    assert loader.iterator_length == len(loader) == num_elements // GLOBAL_BATCH
    loops = [list(loader) for _ in range(4)]
    assert all(len(loop) == loader.iterator_length for loop in loops)
    firsts = [record_ids(loop[0]).tolist() for loop in loops]
    assert all(a != b for a, b in itertools.combinations(firsts, 2))
    first_epoch = np.concatenate([record_ids(b) for b in loops[0]])
    assert len(np.unique(first_epoch)) == len(first_epoch)
    assert (np.diff(first_epoch) < 0).any()
    again = list(loader)  # the stream has ended: the next loop starts it over
    assert len(again) == loader.iterator_length
    np.testing.assert_array_equal(again[0].targets, loops[0][0].targets)


def batches_after(loader, switch: int, count: int) -> tuple[dict, list]:
    """The state after batch `switch` of up to 4 `for` loops, and the `count` batches after."""
    state, after = None, []
    for _ in range(4):
        for batch in loader:
            if state is None:
                switch -= 1
                if switch == 0:
                    state = loader.get_state()
                continue
            after.append(batch)
            if len(after) == count:
                return state, after
    raise AssertionError("the loops ended before enough batches")


def restored_batches(loader, state: dict, count: int) -> list:
    loader.set_state(state)
    out = []
    for _ in range(4):
        for batch in loader:
            out.append(batch)
            if len(out) == count:
                return out
    raise AssertionError("the loops ended before enough batches")


@pytest.mark.parametrize("switch_after", [5, 25])
@pytest.mark.parametrize(
    ("packing", "rampup", "workers"), [(True, False, 1), (False, True, 0), (False, False, 0)]
)
def test_grain_dataloader_states(records, switch_after, packing, rampup, workers):
    setup = config(
        records[500],
        grain_packing=packing,
        grain_packing_bin_count=128 if packing else None,
        truncate_documents=not packing,
        shuffle_data=True,
        num_epochs=4,
        worker_count=workers,
        batch_rampup_factors={0: 0.25, 5: 0.5, 10: 0.75, 20: 1.0} if rampup else None,
    )
    with create_data_iterator(setup, MESH) as loader:
        state, expected = batches_after(loader, switch_after, 10)
    with create_data_iterator(setup, MESH) as fresh:
        found = restored_batches(fresh, state, 10)
    for a, b in zip(expected, found, strict=True):
        np.testing.assert_array_equal(a.inputs, b.inputs)
        np.testing.assert_array_equal(a.targets, b.targets)


@pytest.mark.parametrize("drop_remainder", [True, False])
@pytest.mark.parametrize(
    "factors", [{0: 0.25, 5: 0.5, 10: 1.0, 15: 2.0}, {0: 1.0}], ids=["ramped", "constant"]
)
def test_grain_dataloader_rampup(records, drop_remainder, factors):
    setup = config(
        records[2000], num_epochs=1, drop_remainder=drop_remainder, batch_rampup_factors=factors
    )
    batches = list(create_data_iterator(setup, MESH))
    expected, sizes = GLOBAL_BATCH, []
    for step in range(len(batches)):
        expected = int(GLOBAL_BATCH * factors.get(step, expected / GLOBAL_BATCH))
        sizes.append(expected)
    assert [b.inputs.shape[0] for b in batches] == sizes
    seen = np.concatenate([record_ids(b) for b in batches])
    if drop_remainder:  # the last incomplete batch is left out
        assert len(seen) == sum(sizes) <= 2000
    else:  # ... or padded with masked rows: every record comes once
        np.testing.assert_array_equal(seen, np.arange(2000))


@pytest.fixture(scope="module")
def mixture_parts(tmp_path_factory):
    base = tmp_path_factory.mktemp("compat_mixture")
    ranges = [range(0, 250), range(250, 375), range(375, 500)]
    return [write_records(base / str(r.start), r) for r in ranges]


@pytest.mark.parametrize("uniform_weights", [True, False])
def test_grain_dataloader_mixing(mixture_parts, uniform_weights):
    configs = [config(root, shuffle_data=True) for root in mixture_parts]
    weights = None if uniform_weights else [250, 125, 125]
    loader = create_mixed_data_iterator(configs, MESH, dataset_weights=weights)
    expected_length = 250 * 3 // GLOBAL_BATCH if uniform_weights else 500 // GLOBAL_BATCH
    assert abs(loader.iterator_length - expected_length) <= 1
    loops = [list(loader) for _ in range(4)]
    assert all(len(loop) == loader.iterator_length for loop in loops)
    firsts = [record_ids(loop[0]).tolist() for loop in loops]
    assert all(a != b for a, b in itertools.combinations(firsts, 2))
    for batch in loops[0]:  # the sources are interleaved finely
        ids = record_ids(batch)
        assert ids.min() < 250 and ((ids >= 250) & (ids < 375)).any() and ids.max() >= 375
    counts = np.bincount(
        np.concatenate([record_ids(b) for loop in loops for b in loop]), minlength=500
    )
    if uniform_weights:
        assert counts[:250].sum() < counts[250:].sum()
        assert np.abs(counts[:250] - 4).max() <= 1 and np.abs(counts[250:] - 8).max() <= 1
    else:
        assert np.abs(counts - counts.mean()).max() <= 1 and np.abs(counts - 4).max() <= 1


def test_a_mixture_with_drop_remainder_reads_every_record_of_each_source(mixture_parts):
    """125 records and batches of 32: every record every epoch, not 96 of them."""
    configs = [config(root, shuffle_data=True, num_epochs=1) for root in mixture_parts]
    loader = create_mixed_data_iterator(configs, MESH, dataset_weights=[250, 125, 125])
    seen = np.concatenate([record_ids(b) for b in loader])
    assert len(seen) >= 500 - GLOBAL_BATCH  # the mixture's own last partial batch at most
    small = seen[seen >= 250]
    assert len(np.unique(small)) == len(small)


@pytest.fixture(scope="module")
def long_records(tmp_path_factory):
    """400 records of 40 tokens: three rows each at length 16."""
    base = tmp_path_factory.mktemp("compat_long")
    write_records(base, range(400), tokens_per_record=40, split="validation")
    return write_records(base, range(400), tokens_per_record=40)


def test_max_steps_per_epoch_caps_the_steps(long_records):
    _, capped = GrainArrayRecordsDataConfig.create_train_eval_configs(
        eval_kwargs={"max_steps_per_epoch": 5}, **vars_of(config(long_records))
    )
    _, whole = GrainArrayRecordsDataConfig.create_train_eval_configs(
        **vars_of(config(long_records))
    )
    capped_loader, whole_loader = (
        create_data_iterator(capped, MESH),
        create_data_iterator(whole, MESH),
    )
    first = list(capped_loader)
    assert len(first) == len(capped_loader) == 5  # 160 records make 480 rows
    reference = list(whole_loader)
    assert len(reference) > 5
    for a, b in zip(first, reference[:5], strict=True):
        np.testing.assert_array_equal(a.targets, b.targets)
    assert len(list(capped_loader)) == 5  # every evaluation loop is the same 5 batches


def vars_of(setup) -> dict:
    names = ("data_path", "global_batch_size", "max_target_length", "tokenize_data",
             "eod_token_id", "worker_count")  # fmt: skip
    return {name: getattr(setup, name) for name in names}


def test_an_evaluation_loop_is_one_whole_pass_every_time(long_records):
    train, evaluation = GrainArrayRecordsDataConfig.create_train_eval_configs(
        train_kwargs={"grain_packing": True}, **vars_of(config(long_records))
    )
    assert (evaluation.num_epochs, train.num_epochs) == (1, None)
    eval_loader = create_data_iterator(evaluation, MESH)
    passes = [list(eval_loader) for _ in range(3)]
    for loop in passes:  # documents split over rows: 1,200 rows, more than len() estimates
        rows = np.concatenate([np.asarray(b.targets) for b in loop])
        assert len(loop) == len(passes[0]) and len(rows[rows[:, 0] >= FIRST]) == 400
        for a, b in zip(loop, passes[0], strict=True):
            np.testing.assert_array_equal(a.targets, b.targets)
    train_loader = create_data_iterator(train, MESH)
    assert len(train_loader) == 400 // GLOBAL_BATCH  # records / batch, xlstm-jax's estimate
    windows = [list(train_loader) for _ in range(2)]  # the stream goes on across loops
    assert [len(w) for w in windows] == [len(train_loader)] * 2
    assert not np.array_equal(windows[0][0].targets, windows[1][0].targets)


def test_batches_are_sharded_over_every_mesh_axis(records):
    mesh = jax.make_mesh((2, 2, 2), ("dp", "fsdp", "tp"))
    setup = config(records[256])
    assert get_process_loading_data(setup, mesh) == [0]
    batch = next(iter(create_data_iterator(setup, mesh)))
    assert batch.inputs.shape == (GLOBAL_BATCH, LENGTH)
    assert batch.inputs.sharding.spec == PartitionSpec(mesh.axis_names)


@pytest.mark.parametrize(("train_batches", "eval_batches"), [(8, 5), (10, 15)])
@pytest.mark.parametrize("global_batch_size", [16, 256])
@pytest.mark.parametrize(("tp", "fsdp"), [(1, 1), (2, 2), (1, 4), (4, 1)])
def test_synthetic_dataloader(train_batches, eval_batches, global_batch_size, tp, fsdp):
    mesh = jax.make_mesh((8 // (tp * fsdp), fsdp, tp), ("dp", "fsdp", "tp"))
    train, evaluation = SyntheticDataConfig.create_train_eval_configs(
        train_kwargs={"num_batches": train_batches},
        eval_kwargs={"num_batches": eval_batches},
        global_batch_size=global_batch_size,
        max_target_length=128,
        data_shuffle_seed=42,
    )
    loaders = create_data_iterator(train, mesh), create_data_iterator(evaluation, mesh)
    assert (len(loaders[0]), len(loaders[1])) == (train_batches, eval_batches)
    for loader in loaders:
        for _ in range(3):
            batches = list(loader)
            assert len(batches) == len(loader)
            for batch in batches:
                assert isinstance(batch, LLMBatch)
                assert batch.inputs.shape == (global_batch_size, 128)
                assert batch.inputs.sharding.spec == PartitionSpec(mesh.axis_names)


def test_create_data_iterator_refuses_what_is_not_a_data_config():
    from xlstm_data import ConfigError
    from xlstm_data.compat.xlstm_jax import create_data_iterator

    mesh = jax.make_mesh((jax.device_count(),), ("data",))
    with pytest.raises(ConfigError, match="pass a SyntheticDataConfig or a DataConfig"):
        create_data_iterator({"global_batch_size": 8}, mesh)
