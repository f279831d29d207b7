"""The IPFS source mixed with an ArrayRecord source in one `make_grain_iterator` call."""

from __future__ import annotations

import itertools

import jax
import numpy as np
import pytest

from xlstm_data import GrainArrayRecordsDataConfig, make_grain_iterator
from xlstm_data.config import IpfsDataConfig
from xlstm_data.sources.array_record import write_array_record_shards
from xlstm_data.tokenizer import load_tokenizer
from xlstm_data.tools.corpus import generate_documents, train_sentencepiece

from .ipfs_corpus import expected_documents

LENGTH = 64


def _chunks(tokenizer, texts: list[str]) -> set[tuple[int, ...]]:
    """Every row the pipeline may make of `texts`: tokens plus EOD, cut into LENGTH pieces."""
    chunks = set()
    for text in texts:
        ids = [*tokenizer.encode_batch([text]).tokens.tolist(), tokenizer.eos_id]
        chunks |= {tuple(ids[i : i + LENGTH]) for i in range(0, len(ids), LENGTH)}
    return chunks


@pytest.mark.parametrize("worker_count", [0, 1])
def test_ipfs_and_array_record_sources_mix(node, corpus, tmp_path, worker_count):
    """With worker_count=1 the sources are pickled into a Grain worker process."""
    ipfs_texts = [d.decode() for d in expected_documents(corpus.folder, ["shards", "wiki"], "line")]
    record_texts = [
        f"Array record {i}. {text}"
        for i, text in enumerate(generate_documents(60, seed=7, median_words=10))
    ]
    write_array_record_shards(
        [t.encode() for t in record_texts], tmp_path / "arecord" / "train", num_shards=2
    )
    model = train_sentencepiece(ipfs_texts + record_texts, tmp_path / "sp", vocab_size=300)
    shared = {
        "global_batch_size": 8,
        "max_target_length": LENGTH,
        "tokenizer_path": str(model),
        "worker_count": worker_count,
        "read_block_size": 16,
        "shuffle_data": True,
    }
    ipfs = IpfsDataConfig(
        **shared,
        name="ipfs",
        root_cid=corpus.root,
        api_url=node.api_url,
        cache_dir=tmp_path / "cache",
        dataset_names=["shards", "wiki"],
        document_unit="line",
        retries=2,
        retry_backoff_s=0.05,
    )
    arecord = GrainArrayRecordsDataConfig(**shared, name="arecord", data_path=tmp_path / "arecord")
    mesh = jax.make_mesh((1,), ("data",), devices=jax.devices()[:1])

    with make_grain_iterator([ipfs, arecord], mesh, [0], dataset_weights=[0.5, 0.5]) as batches:
        rows = []
        for batch in itertools.islice(batches, 12):
            targets = np.asarray(batch.targets)
            segmentation = np.asarray(batch.targets_segmentation)
            assert targets.shape == (8, LENGTH)
            rows += [
                tuple(row[ids > 0].tolist()) for row, ids in zip(targets, segmentation, strict=True)
            ]
    tokenizer = load_tokenizer(model)
    from_ipfs, from_records = _chunks(tokenizer, ipfs_texts), _chunks(tokenizer, record_texts)
    assert all(row in from_ipfs or row in from_records for row in rows)
    assert sum(row in from_ipfs for row in rows) >= 10
    assert sum(row in from_records for row in rows) >= 10
