"""One loader for sentencepiece, HF tokenizer.json and HF folders; batched, nothing added."""

import pickle

import numpy as np
import pytest
from conftest import SHARED_DATA

from xlstm_data.tokenizer import HFTokenizer, SentencePieceTokenizer, load_tokenizer


def test_sentencepiece_model(sp_model, documents):
    tokenizer = load_tokenizer(sp_model)
    assert isinstance(tokenizer, SentencePieceTokenizer)
    assert (tokenizer.vocab_size, tokenizer.bos_id, tokenizer.eos_id, tokenizer.pad_id) == (
        300,
        1,
        2,
        0,
    )
    encoded = tokenizer.encode_batch(documents[:5])
    assert len(encoded) == 5 and encoded.tokens.dtype == np.int32
    first = encoded.tokens[: encoded.lengths[0]]
    assert tokenizer.decode(first) == documents[0]
    assert pickle.loads(pickle.dumps(tokenizer)).encode_batch(documents[:5]).tokens.tolist() == (
        encoded.tokens.tolist()
    )


def test_hf_folder_and_file(hf_tokenizer_dir, documents):
    from_folder = load_tokenizer(hf_tokenizer_dir)
    from_file = load_tokenizer(hf_tokenizer_dir / "tokenizer.json")
    assert isinstance(from_folder, HFTokenizer)
    assert (from_folder.bos_id, from_folder.eos_id, from_folder.pad_id) == (1, 2, 0)
    a, b = from_folder.encode_batch(documents[:3]), from_file.encode_batch(documents[:3])
    assert a.tokens.tolist() == b.tokens.tolist()
    assert from_folder.decode(a.tokens[: a.lengths[0]]) == documents[0]
    assert from_folder.fingerprint == from_file.fingerprint


def test_fingerprint_follows_file_content(tmp_path, sp_model):
    copy = tmp_path / "copy.model"
    copy.write_bytes(sp_model.read_bytes())
    assert load_tokenizer(copy).fingerprint == load_tokenizer(sp_model).fingerprint


def test_missing_paths_fail_clearly(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_tokenizer(tmp_path / "missing.model")
    with pytest.raises(ValueError, match="without tokenizer.json"):
        load_tokenizer(tmp_path)


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is not present")
def test_real_llama2_and_bert_tokenizers():
    llama = load_tokenizer(SHARED_DATA / "llama2-tokenizer.model")
    assert (llama.vocab_size, llama.bos_id, llama.eos_id, llama.pad_id) == (32000, 1, 2, None)
    text = (SHARED_DATA / "tinyshakespeare.txt").read_text()[:20000]
    encoded = llama.encode_batch([text])
    assert llama.decode(encoded.tokens) == text
    bert = load_tokenizer(SHARED_DATA / "bert-wordpiece")
    assert bert.vocab_size == 30522
    encoded = bert.encode_batch([text])
    # The published file truncates to 128 and pads; the loader must switch both off and add
    # no [CLS]/[SEP].
    assert encoded.lengths[0] > 1000
    assert bert.pad_id not in encoded.tokens.tolist()
    assert bert.bos_id not in encoded.tokens.tolist() and bert.eos_id not in encoded.tokens.tolist()
