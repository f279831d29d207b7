"""xlstm-jax's `tests/dataset/test_batch.py`, rewritten from its behaviour: document borders,
samples and border-keeping slices of `LLMBatch` / `LLMIndexedBatch`."""

import jax
import numpy as np
import pytest

from xlstm_data.compat.xlstm_jax.batch import LLMBatch, LLMIndexedBatch


def batch_from_segments(inputs, segmentation, positions, **extra):
    return LLMBatch(
        inputs=inputs,
        targets=inputs,
        inputs_position=positions,
        inputs_segmentation=segmentation,
        targets_position=positions,
        targets_segmentation=segmentation,
        **extra,
    )


@pytest.mark.parametrize("batch_size", [4, 16])
@pytest.mark.parametrize("context_length", [32, 128])
def test_llm_batch_document_borders(batch_size, context_length):
    inputs = jax.random.randint(
        jax.random.PRNGKey(batch_size * context_length), (batch_size, context_length), 0, 10
    )
    eod_mask = inputs == 0
    segmentation = 1 + np.cumsum(eod_mask, axis=1)
    positions = np.broadcast_to(np.arange(context_length), inputs.shape)
    borders = batch_from_segments(inputs, segmentation, positions).get_document_borders()
    assert borders.shape == (batch_size, context_length)
    assert np.all(borders[:, 0])
    np.testing.assert_array_equal(borders[:, 1:], eod_mask[:, 1:])


@pytest.mark.parametrize("batch_class", [LLMBatch, LLMIndexedBatch])
def test_llm_batch_sample(batch_class):
    sample = batch_class.get_sample(batch_size=4, max_length=8)
    struct = batch_class.get_dtype_struct(batch_size=4, max_length=8)
    sample_leaves, struct_leaves = jax.tree.leaves(sample), jax.tree.leaves(struct)
    assert len(sample_leaves) == len(struct_leaves) == (8 if batch_class is LLMIndexedBatch else 6)
    for leaf, spec in zip(sample_leaves, struct_leaves, strict=True):
        assert isinstance(leaf, jax.Array)
        assert isinstance(spec, jax.ShapeDtypeStruct)
        assert leaf.shape == spec.shape and leaf.dtype == spec.dtype


def random_packed_batch(context_length: int, indexed: bool, batch_size: int = 32):
    keys = jax.random.split(jax.random.PRNGKey(0), 5)
    starts = np.asarray(jax.random.bernoulli(keys[0], 0.1, (batch_size, context_length)))
    segmentation = np.cumsum(starts, axis=1) + 1
    positions = np.zeros_like(segmentation)
    for row in range(batch_size):
        for t in range(1, context_length):
            positions[row, t] = 0 if starts[row, t] else positions[row, t - 1] + 1
    inputs = np.asarray(jax.random.randint(keys[1], (batch_size, context_length), 0, 10))
    targets = np.roll(inputs, 1, axis=1)
    lengths = np.asarray(jax.random.randint(keys[2], (batch_size,), 1, context_length))
    valid = np.arange(context_length)[None, :] < lengths[:, None]
    fields = {
        "inputs": inputs * valid,
        "targets": targets * valid,
        "inputs_position": positions * valid,
        "inputs_segmentation": segmentation * valid,
        "targets_position": positions * valid,
        "targets_segmentation": segmentation * valid,
    }
    if not indexed:
        return LLMBatch(**fields)
    rows = {
        name: np.asarray(jax.random.randint(key, (batch_size,), 0, 10_000))
        for name, key in zip(("document_idx", "sequence_idx"), keys[3:], strict=True)
    }
    return LLMIndexedBatch(**fields, **rows)


def assert_slice_of(sliced, original, start, end):
    for name in vars(original):
        if name == "_document_borders":
            continue
        value, whole = np.asarray(getattr(sliced, name)), np.asarray(getattr(original, name))
        expected = whole[:, start:end] if whole.ndim == 2 else whole
        assert value.shape == expected.shape and value.dtype == expected.dtype, name
        np.testing.assert_array_equal(value, expected, err_msg=name)
    np.testing.assert_array_equal(
        sliced.get_document_borders(), original.get_document_borders()[:, start:end]
    )


@pytest.mark.parametrize("context_length", [16, 2048])
@pytest.mark.parametrize("indexed", [False, True])
def test_llm_batch_slice(context_length, indexed):
    batch = random_packed_batch(context_length, indexed)
    for size in (context_length // 16, context_length // 5, context_length):
        for start in range(0, context_length, size):
            end = min(start + size, context_length)
            part = batch[:, start:end]
            assert_slice_of(part, batch, start, end)
            inner_start, inner_end = size // 4, size // 4 * 3
            assert_slice_of(part[:, inner_start:inner_end], part, inner_start, inner_end)


def test_a_zero_length_slice_keeps_the_row_count():
    batch = random_packed_batch(16, indexed=False)
    assert batch[:, 3:3].get_document_borders().shape == (32, 0)


def test_integer_index_gives_one_row():
    batch = random_packed_batch(16, indexed=True)
    row = batch[2]
    assert row.inputs.shape == (16,) and row.document_idx.shape == ()
    np.testing.assert_array_equal(row.get_document_borders(), batch.get_document_borders()[2])


def test_from_inputs_shifts_unpacked_rows():
    tokens = np.arange(1, 9, dtype=np.int32).reshape(2, 4)
    batch = LLMIndexedBatch.from_inputs(tokens, np.array([1, 2]), np.array([0, 0]))
    np.testing.assert_array_equal(batch.inputs, [[0, 1, 2, 3], [0, 5, 6, 7]])
    np.testing.assert_array_equal(batch.targets, tokens)
    np.testing.assert_array_equal(batch.targets_position, [[0, 1, 2, 3]] * 2)
    assert (np.asarray(batch.inputs_segmentation) == 1).all()
    np.testing.assert_array_equal(batch.document_idx, [1, 2])
    same = LLMBatch.from_inputs(tokens, tokens)
    np.testing.assert_array_equal(same.inputs, tokens)
