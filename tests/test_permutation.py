"""The per-index permutation behind shuffling: a bijection, seeded, random-looking."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from xlstm_data.permutation import ChunkedPermutation, RandomPermutation


@given(st.integers(1, 5000), st.integers(0, 2**32))
def test_is_a_bijection(size, seed):
    permutation = RandomPermutation(size, (seed, 3))
    values = permutation(np.arange(size))
    assert sorted(values.tolist()) == list(range(size))


def test_depends_on_seed_and_is_reproducible():
    a = RandomPermutation(1000, (1, 0))(np.arange(1000))
    assert (a == RandomPermutation(1000, (1, 0))(np.arange(1000))).all()
    assert (a != RandomPermutation(1000, (1, 1))(np.arange(1000))).mean() > 0.9
    # Random access: one position gives the same value as the whole array.
    assert RandomPermutation(1000, (1, 0))(417) == a[417]


def test_looks_shuffled():
    values = RandomPermutation(10_000, 7)(np.arange(10_000))
    assert abs(np.corrcoef(np.arange(10_000), values)[0, 1]) < 0.05


def test_rejects_positions_outside_the_range():
    with pytest.raises(IndexError):
        RandomPermutation(10, 0)(np.array([10]))


@given(
    st.integers(1, 3000),
    st.lists(st.integers(0, 10**9), min_size=1, max_size=50),
    st.integers(1, 64),
)
def test_chunked_permutation_gives_the_same_values(size, positions, chunk):
    positions = np.array(positions) % size
    assert (
        ChunkedPermutation(size, 5, chunk)(positions) == RandomPermutation(size, 5)(positions)
    ).all()
