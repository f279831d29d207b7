"""Shared fixtures: a generated corpus, tiny trained tokenizers and ArrayRecord folders."""

import json
import os

# Eight fake CPU devices for mesh tests; must be set before JAX is imported anywhere.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")

from pathlib import Path

import numpy as np
import pytest

from xlstm_data.sources.array_record import write_array_record_shards
from xlstm_data.tools.corpus import generate_documents, train_hf_bpe, train_sentencepiece
from xlstm_data.tools.prepare import prepare_cache
from xlstm_data.tools.text_inputs import TextInput

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def documents() -> list[str]:
    return generate_documents(600, seed=1, median_words=40)


@pytest.fixture(scope="session")
def sp_model(tmp_path_factory, documents) -> Path:
    return train_sentencepiece(documents, tmp_path_factory.mktemp("sp") / "sp", vocab_size=300)


@pytest.fixture(scope="session")
def hf_tokenizer_dir(tmp_path_factory, documents) -> Path:
    return train_hf_bpe(documents, tmp_path_factory.mktemp("hf_tok"), vocab_size=400)


@pytest.fixture(scope="session")
def text_data(tmp_path_factory, documents) -> Path:
    """data_path with a `train` split of UTF-8 text records in 3 shards."""
    root = tmp_path_factory.mktemp("text_data")
    write_array_record_shards([d.encode() for d in documents], root / "train", num_shards=3)
    return root


def token_records(count: int, *, seed: int = 0, max_length: int = 40) -> list[np.ndarray]:
    """Distinct pre-tokenized documents: record i starts with token 1000 + i."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(count):
        body = rng.integers(10, 900, size=int(rng.integers(0, max_length)), dtype=np.int32)
        records.append(np.concatenate([[1000 + i], body]).astype(np.int32))
    return records


@pytest.fixture(scope="session")
def token_data(tmp_path_factory) -> tuple[Path, list[np.ndarray]]:
    """data_path with a `train` split of 203 int32 token records in 4 shards."""
    root = tmp_path_factory.mktemp("token_data")
    records = token_records(203)
    write_array_record_shards([r.tobytes() for r in records], root / "train", num_shards=4)
    return root, records


def write_jsonl(path, texts):
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    return path


def tokenized(tokenizer, texts) -> list[list[int]]:
    ids = tokenizer.encode_batch(texts)
    return [d.tolist() for d in np.split(ids.tokens, np.cumsum(ids.lengths)[:-1])]


@pytest.fixture(scope="session")
def cache(tmp_path_factory, documents, sp_model):
    """A token cache of `documents` in 4 shards of 150."""
    folder = tmp_path_factory.mktemp("cache")
    source = TextInput((str(write_jsonl(folder / "docs.jsonl", documents)),))
    prepare_cache(source, folder / "cache", str(sp_model), documents_per_shard=150, progress=False)
    return folder / "cache"
