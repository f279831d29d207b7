"""Splitting long documents into row-length pieces (no token lost), or truncating them."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from xlstm_data.documents import Documents
from xlstm_data.stages.split import split_documents, truncate_documents

document_lists = st.lists(st.lists(st.integers(1, 500), max_size=60), max_size=40)


def as_lists(documents: Documents) -> list[list[int]]:
    ends = np.cumsum(documents.lengths)
    return [
        documents.tokens[e - n : e].tolist() for e, n in zip(ends, documents.lengths, strict=True)
    ]


@given(document_lists, st.integers(1, 17))
def test_chunking_keeps_every_token_in_order(docs, max_length):
    documents = Documents.from_lists(docs)
    chunked = split_documents(documents, max_length)
    assert chunked.tokens.tolist() == documents.tokens.tolist()
    assert (chunked.lengths <= max_length).all()
    expected = []
    for doc in docs:
        expected += [doc[i : i + max_length] for i in range(0, len(doc), max_length)] or [[]]
    assert as_lists(chunked) == expected
    assert chunked.counts["split_documents"] == sum(len(d) > max_length for d in docs)


@given(document_lists, st.integers(1, 17))
def test_truncation_keeps_prefixes_and_counts_the_rest(docs, max_length):
    truncated = truncate_documents(Documents.from_lists(docs), max_length)
    assert as_lists(truncated) == [d[:max_length] for d in docs]
    assert truncated.counts["truncated_tokens"] == sum(max(0, len(d) - max_length) for d in docs)
