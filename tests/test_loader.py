"""The loader: exact resume (get_state/set_state, mismatched setups), epochs, ramp-up,
start_from_step."""

import json

import jax
import numpy as np
import pytest
from conftest import token_records
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xlstm_data import GrainArrayRecordsDataConfig, make_grain_iterator
from xlstm_data.sources.array_record import write_array_record_shards

MESH = jax.make_mesh((8,), ("data",))


@pytest.fixture(scope="module")
def second_token_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("second_tokens")
    records = [r + 1000 for r in token_records(97, seed=5)]
    write_array_record_shards([r.tobytes() for r in records], root / "train", num_shards=2)
    return root


def config(root, **overrides) -> GrainArrayRecordsDataConfig:
    values = {
        "data_path": root,
        "global_batch_size": 16,
        "max_target_length": 16,
        "tokenize_data": False,
        "eod_token_id": 5,
        "worker_count": 0,
        "read_block_size": 16,
    }
    return GrainArrayRecordsDataConfig(**(values | overrides))


def batch_arrays(batch) -> list[np.ndarray]:
    return [np.asarray(v) for v in vars(batch).values() if v is not None]


def take(iterator, steps: int) -> list[list[np.ndarray]]:
    out = []
    for _ in range(steps):
        try:
            out.append(batch_arrays(next(iterator)))
        except StopIteration:
            break
    return out


def assert_same(a: list[list[np.ndarray]], b: list[list[np.ndarray]]) -> None:
    assert len(a) == len(b)
    for batch_a, batch_b in zip(a, b, strict=True):
        for x, y in zip(batch_a, batch_b, strict=True):
            np.testing.assert_array_equal(x, y)


def build(configs, weights=None):
    return make_grain_iterator(configs, MESH, [0], dataset_weights=weights)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    packing=st.booleans(),
    mixing=st.booleans(),
    rampup=st.sampled_from([None, {0: 0.5, 3: 1.0}, {2: 2.0}]),
    workers=st.sampled_from([0, 0, 0, 0, 1, 2]),
    shuffle=st.booleans(),
    num_epochs=st.sampled_from([None, 2]),
    stop=st.integers(0, 40),
)
def test_restore_equals_uninterrupted_run(
    token_data, second_token_data, packing, mixing, rampup, workers, shuffle, num_epochs, stop
):
    overrides = {
        "grain_packing": packing,
        "batch_rampup_factors": rampup,
        "worker_count": workers,
        "shuffle_data": shuffle,
        "num_epochs": num_epochs,
        "drop_remainder": num_epochs is None,
    }
    configs = [config(token_data[0], **overrides)]
    if mixing:
        configs.append(config(second_token_data, **overrides))
    weights = [2, 1] if mixing else None
    after = 6
    with build(configs, weights) as reference:
        before = take(reference, stop)
        state = json.loads(json.dumps(reference.get_state()))
        expected = take(reference, after)
    assert len(before) == stop or num_epochs is not None
    with build(configs, weights) as resumed:
        resumed.set_state(state)
        assert resumed.step == len(before)
        assert_same(take(resumed, after), expected)


def test_state_is_small_and_restores_in_constant_time(token_data):
    with build(config(token_data[0], grain_packing=True, shuffle_data=True)) as iterator:
        take(iterator, 3)
        state = iterator.get_state()
    assert len(json.dumps(state)) < 4096


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"data_shuffle_seed": 7}, "configs[0].data_shuffle_seed: saved 42, now 7"),
        ({"global_batch_size": 32}, "configs[0].global_batch_size"),
        ({"grain_packing": False}, "configs[0].grain_packing"),
        ({"worker_count": 1}, "configs[0].worker_count"),
    ],
)
def test_restoring_into_another_setup_names_the_difference(token_data, overrides, named):
    base = {"grain_packing": True, "shuffle_data": True}
    with build(config(token_data[0], **base)) as iterator:
        take(iterator, 2)
        state = iterator.get_state()
    other = build(config(token_data[0], **(base | overrides)))
    with other, pytest.raises(ValueError, match="another setup") as error:
        other.set_state(state)
    assert named in str(error.value)


def test_restoring_with_other_files_or_tokenizer_fails(token_data, second_token_data, sp_model):
    with build(config(token_data[0])) as iterator:
        state = iterator.get_state()
    with build(config(second_token_data)) as other, pytest.raises(ValueError) as error:
        other.set_state(state)
    assert "configs[0].data: saved '203 records in 4 files" in str(error.value)
    other = build(config(token_data[0], tokenizer_path=str(sp_model)))
    with other, pytest.raises(ValueError, match=r"configs\[0\].tokenizer: saved None"):
        other.set_state(state)


def test_every_epoch_has_its_own_order_and_covers_every_record(token_data):
    root, records = token_data
    setup = config(
        root,
        shuffle_data=True,
        num_epochs=2,
        drop_remainder=False,
        truncate_documents=True,
        max_target_length=48,
    )
    with build(setup) as iterator:
        assert len(iterator) == 13
        batches = take(iterator, 100)
    assert len(batches) == 26
    firsts = [b[1][:, 0] for b in batches]  # targets, first token of each row
    epoch_a, epoch_b = np.concatenate(firsts[:13]), np.concatenate(firsts[13:])
    ids = sorted(1000 + i for i in range(len(records)))
    assert sorted(epoch_a[epoch_a > 0].tolist()) == ids
    assert sorted(epoch_b[epoch_b > 0].tolist()) == ids
    assert epoch_a.tolist() != epoch_b.tolist()


def test_reset_after_epoch_repeats_the_evaluation_epoch(token_data):
    setup = config(token_data[0], num_epochs=1, drop_remainder=False, truncate_documents=True)
    iterator = make_grain_iterator(setup, MESH, [0], reset_after_epoch=True)
    with iterator:
        first = [batch_arrays(b) for b in iterator]
        second = [batch_arrays(b) for b in iterator]
    assert len(first) == len(iterator) == 13
    assert_same(first, second)


def test_rampup_changes_the_batch_size_at_the_given_steps(token_data):
    setup = config(token_data[0], grain_packing=True, batch_rampup_factors={0: 0.5, 2: 1.0, 4: 2.0})
    with build(setup) as iterator:
        sizes = [next(iterator).inputs.shape[0] for _ in range(6)]
    assert sizes == [8, 8, 16, 16, 32, 32]


def test_rampup_batches_must_divide_over_devices(token_data):
    setup = config(token_data[0], batch_rampup_factors={0: 0.25})
    with pytest.raises(ValueError, match="gives 4 rows at step 0, not divisible by the 8"):
        build(setup)


def test_start_from_step_skips_ahead_exactly(token_data):
    setup = config(
        token_data[0],
        truncate_documents=True,
        shuffle_data=True,
        batch_rampup_factors={0: 1.0, 5: 2.0},
    )
    with build(setup) as reference:
        expected = take(reference, 40)[33:]
    skipped = make_grain_iterator(setup, MESH, [0], start_from_step=33)
    with skipped:
        assert_same(take(skipped, 7), expected)
    with pytest.raises(ValueError, match="start_from_step=3 needs one record per row"):
        make_grain_iterator(config(token_data[0], grain_packing=True), MESH, [0], start_from_step=3)
