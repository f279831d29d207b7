"""xlstm-data merge: caches of one tokenizer as one, optionally equalised."""

import numpy as np
import pytest
from conftest import tokenized, write_jsonl
from hypothesis import given, settings
from hypothesis import strategies as st

from xlstm_data import load_tokenizer
from xlstm_data.sources.token_cache import load_token_cache
from xlstm_data.tools.merge import equalized_selection, merge_caches
from xlstm_data.tools.prepare import prepare_cache
from xlstm_data.tools.text_inputs import TextInput


@settings(max_examples=50, deadline=None)
@given(sizes=st.lists(st.integers(1, 300), min_size=1, max_size=5), seed=st.integers(0, 2**32))
def test_equalized_selection_takes_the_smallest_count_from_each(sizes, seed):
    selection = equalized_selection(sizes, seed)
    for keys, size in zip(selection, sizes, strict=True):
        assert len(keys) == min(sizes) and len(np.unique(keys)) == len(keys)
        assert (np.diff(keys) > 0).all() and keys.min() >= 0 and keys.max() < size
    again = equalized_selection(sizes, seed)
    assert all(np.array_equal(a, b) for a, b in zip(selection, again, strict=True))


def test_merge_keeps_or_equalizes_documents(cache, tmp_path, documents, sp_model):
    small = tmp_path / "small"
    texts = documents[:40]
    prepare_cache(TextInput((str(write_jsonl(tmp_path / "s.jsonl", texts)),)), small, str(sp_model))
    big = load_token_cache(cache).__getitems__(list(range(600)))
    merged = merge_caches([small, cache], tmp_path / "all", documents_per_shard=256)
    assert [s.documents for s in merged.shards] == [256, 256, 128]
    everything = load_token_cache(tmp_path / "all").__getitems__(list(range(640)))
    expected = tokenized(load_tokenizer(sp_model), texts) + [d.tolist() for d in big]
    assert [d.tolist() for d in everything] == expected
    equal = merge_caches([small, cache], tmp_path / "equal", equalize=True, seed=3)
    assert equal.documents == 80 and equal.source["documents_taken"] == [40, 40]
    taken = load_token_cache(tmp_path / "equal").__getitems__(list(range(80)))
    picked = equalized_selection([40, 600], seed=3)[1]
    assert [d.tolist() for d in taken[40:]] == [big[i].tolist() for i in picked]


def test_merge_refuses_caches_of_other_tokenizers(cache, tmp_path, documents, hf_tokenizer_dir):
    source = TextInput((str(write_jsonl(tmp_path / "docs.jsonl", documents[:10])),))
    prepare_cache(source, tmp_path / "hf", str(hf_tokenizer_dir), progress=False)
    with pytest.raises(ValueError, match="differ in tokenizer_fingerprint"):
        merge_caches([cache, tmp_path / "hf"], tmp_path / "merged")
