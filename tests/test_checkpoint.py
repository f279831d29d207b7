"""Saving the data iterator with Orbax next to the model state; crashes while saving."""

import jax.numpy as jnp
import orbax.checkpoint as ocp
import pytest
from test_loader import assert_same, build, config, take

from xlstm_data.checkpoint import DataIteratorRestore, DataIteratorSave


def test_orbax_saves_the_iterator_next_to_model_state(tmp_path, token_data):
    manager = ocp.CheckpointManager(tmp_path / "checkpoints")
    setup = config(token_data[0], grain_packing=True, shuffle_data=True)
    with build(setup) as iterator:
        take(iterator, 4)
        manager.save(
            4,
            args=ocp.args.Composite(
                params=ocp.args.StandardSave({"w": jnp.arange(3.0)}),
                data=DataIteratorSave(iterator),
            ),
        )
        manager.wait_until_finished()
        expected = take(iterator, 3)
    with build(setup) as resumed:
        restored = manager.restore(
            4,
            args=ocp.args.Composite(
                params=ocp.args.StandardRestore({"w": jnp.zeros(3)}),
                data=DataIteratorRestore(resumed),
            ),
        )
        assert restored["params"]["w"].tolist() == [0.0, 1.0, 2.0]
        assert_same(take(resumed, 3), expected)


def test_a_crash_while_saving_leaves_the_last_good_checkpoint(tmp_path, token_data, monkeypatch):
    manager = ocp.CheckpointManager(tmp_path / "checkpoints")
    setup = config(token_data[0], grain_packing=True)
    with build(setup) as iterator:
        take(iterator, 2)
        manager.save(2, args=ocp.args.Composite(data=DataIteratorSave(iterator)))
        manager.wait_until_finished()
        expected = take(iterator, 2)

        def crash():
            raise RuntimeError("preempted while saving")

        monkeypatch.setattr(iterator, "get_state", crash)
        with pytest.raises(RuntimeError, match="preempted"):
            manager.save(4, args=ocp.args.Composite(data=DataIteratorSave(iterator)))
            manager.wait_until_finished()
    manager = ocp.CheckpointManager(tmp_path / "checkpoints")
    assert manager.latest_step() == 2
    with build(setup) as resumed:
        manager.restore(2, args=ocp.args.Composite(data=DataIteratorRestore(resumed)))
        assert_same(take(resumed, 2), expected)
