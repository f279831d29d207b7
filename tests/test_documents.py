"""Blocks of documents: ragged arrays built in one copy, special tokens around each document."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from xlstm_data.documents import Documents, positions_within, ranges_index

document_lists = st.lists(st.lists(st.integers(1, 500), max_size=60), max_size=40)


def as_lists(documents: Documents) -> list[list[int]]:
    ends = np.cumsum(documents.lengths)
    return [
        documents.tokens[e - n : e].tolist() for e, n in zip(ends, documents.lengths, strict=True)
    ]


def test_ranges_index_matches_python():
    starts, lengths = np.array([5, 0, 9, 2]), np.array([3, 0, 2, 1])
    expected = [5, 6, 7, 9, 10, 2]
    assert ranges_index(starts, lengths).tolist() == expected
    assert positions_within(np.array([2, 0, 3])).tolist() == [0, 1, 0, 1, 2]


@given(document_lists, st.booleans(), st.lists(st.integers(600, 700), max_size=2, unique=True))
def test_special_tokens_wrap_non_empty_documents(docs, bos, end_ids):
    prefix = (999,) if bos else ()
    expected = [[*prefix, *d, *end_ids] if d else [] for d in docs]
    from_lists = Documents.from_lists(docs, prefix=prefix, suffix=tuple(end_ids))
    from_arrays = Documents.from_lists(
        [np.array(d, np.int32) for d in docs], prefix=prefix, suffix=tuple(end_ids)
    )
    assert as_lists(from_lists) == expected
    assert as_lists(from_arrays) == expected
