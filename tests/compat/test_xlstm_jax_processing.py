"""xlstm-jax's `test_grain_data_processing.py` and `test_hf_data_processing.py`, rewritten from
their behaviour on local data (a wikitext-like corpus with empty lines, a locally trained HF
tokenizer instead of gpt2): ArrayRecord and HF sources give identical batches, packed batches
are consistent, evaluation ends, `max_steps_per_epoch` keeps the first batches."""

import itertools
import json

import jax
import numpy as np
import pytest
from conftest import tokenized
from jax.sharding import PartitionSpec

from xlstm_data.compat.xlstm_jax import (
    GrainArrayRecordsDataConfig,
    HFHubDataConfig,
    create_data_iterator,
    load_tokenizer,
)
from xlstm_data.compat.xlstm_jax.grain_data_processing import load_array_record_dataset
from xlstm_data.sources.array_record import write_array_record_shards
from xlstm_data.tools.corpus import generate_documents

MESH = jax.make_mesh((8, 1, 1), ("dp", "fsdp", "tp"))
BATCH, LENGTH = 2 * 8, 64


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Train and validation texts (every fifth one empty, like wikitext's blank lines), as
    ArrayRecord shards (`<split>_000000.arecord`, …) and as JSON-lines files."""
    root = tmp_path_factory.mktemp("wikitext_like")
    splits = {}
    for split, count, seed in (("train", 500, 3), ("validation", 300, 4)):
        texts = generate_documents(count, seed=seed, median_words=30)
        texts = ["" if i % 5 == 4 else t for i, t in enumerate(texts)]
        splits[split] = texts
        write_array_record_shards([t.encode() for t in texts], root / "ar" / split, num_shards=3)
        lines = "".join(json.dumps({"text": t}) + "\n" for t in texts)
        (root / f"{split}.jsonl").write_text(lines)
    return root, splits


def configs(kind, corpus, tokenizer_dir, *, eval_packing=True, eval_max_steps=None):
    root, _ = corpus
    shared = {
        "global_batch_size": BATCH,
        "max_target_length": LENGTH,
        "data_column": "text",
        "tokenizer_path": str(tokenizer_dir),
        "add_bos": False,
        "add_eos": False,
        "add_eod": True,
        "worker_count": 0,
    }
    train_kwargs = {"grain_packing": True, "max_steps_per_epoch": None}
    eval_kwargs = {"grain_packing": eval_packing, "max_steps_per_epoch": eval_max_steps}
    if kind == "ar":
        del shared["data_column"]  # records are the text itself
        return GrainArrayRecordsDataConfig.create_train_eval_configs(
            train_kwargs, eval_kwargs, data_path=root / "ar", tokenize_data=True, **shared
        )
    files = {"train": str(root / "train.jsonl"), "validation": str(root / "validation.jsonl")}
    return HFHubDataConfig.create_train_eval_configs(
        train_kwargs, eval_kwargs, hf_path="json", hf_data_files=files, **shared
    )


def fields(batch) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in vars(batch).items() if v is not None}


def test_array_records_identical_to_hf_dataset_and_loader(corpus, hf_tokenizer_dir):
    root, splits = corpus
    for split, texts in splits.items():
        source = load_array_record_dataset(root / "ar" / split)
        assert [source[i].decode() for i in range(len(source))] == texts
    loaders = {
        kind: [create_data_iterator(c, MESH) for c in configs(kind, corpus, hf_tokenizer_dir)]
        for kind in ("ar", "hf")
    }
    for index in (0, 1):  # train, then evaluation
        ar = list(itertools.islice(loaders["ar"][index], 100))
        hf = list(itertools.islice(loaders["hf"][index], 100))
        assert len(ar) == len(hf) > 0
        for a, b in zip(ar, hf, strict=True):
            for name, value in fields(a).items():
                np.testing.assert_array_equal(value, fields(b)[name], err_msg=name)


def test_unpacked_evaluation_ends_and_max_steps_keeps_its_first_batches(corpus, hf_tokenizer_dir):
    _, unlimited = configs("ar", corpus, hf_tokenizer_dir, eval_packing=False)
    _, limited = configs("ar", corpus, hf_tokenizer_dir, eval_packing=False, eval_max_steps=4)
    whole = list(itertools.islice(create_data_iterator(unlimited, MESH), 1000))
    assert 4 < len(whole) < 1000
    first = list(create_data_iterator(limited, MESH))
    assert len(first) == 4
    for a, b in zip(first, whole[:4], strict=True):
        for name, value in fields(a).items():
            np.testing.assert_array_equal(value, fields(b)[name], err_msg=name)


def test_hf_dataset_with_packing(corpus, hf_tokenizer_dir):
    _, splits = corpus
    train, evaluation = configs("hf", corpus, hf_tokenizer_dir)
    eos = load_tokenizer(str(hf_tokenizer_dir), add_bos=False, add_eos=False).eos_token_id
    train_loader, eval_loader = (
        create_data_iterator(train, MESH),
        create_data_iterator(evaluation, MESH),
    )
    first = next(iter(train_loader))
    assert first.inputs.shape == (BATCH, LENGTH)
    assert first.inputs.sharding.spec == PartitionSpec(MESH.axis_names)
    sample = itertools.islice(create_data_iterator(evaluation, MESH), 20)
    splits_batches = (list(itertools.islice(train_loader, 20)), list(sample))
    for batches in splits_batches:
        inputs = np.stack([np.asarray(b.inputs) for b in batches])
        assert (inputs == 0).mean() < 0.1 and (inputs == eos).mean() < 0.1
    for batch in itertools.chain(*splits_batches):
        inputs, targets = np.asarray(batch.inputs), np.asarray(batch.targets)
        segmentation = np.asarray(batch.targets_segmentation)
        np.testing.assert_array_equal(inputs[:, 1:], targets[:, :-1])
        new_document = segmentation[:, 1:] == segmentation[:, :-1] + 1
        assert (targets[:, :-1][new_document] == eos).all()
        assert (targets[segmentation == 0] == 0).all()
    tokenizer = load_tokenizer(str(hf_tokenizer_dir), add_bos=False, add_eos=False).tokenizer
    documents = [f" {' '.join(map(str, d))} " for d in tokenized(tokenizer, splits["validation"])]
    passes = [list(eval_loader) for _ in range(3)]
    assert len({len(p) for p in passes}) == 1 and len(passes[0]) < 1000
    for batch in passes[0]:
        targets, segmentation = np.asarray(batch.targets), np.asarray(batch.targets_segmentation)
        for row, segments in zip(targets, segmentation, strict=True):
            for segment in range(1, segments.max() + 1):
                piece = row[(segments == segment) & (row != eos)]
                text = f" {' '.join(map(str, piece))} "
                assert any(text in document for document in documents)  # a part of one
    for batch in [*passes[0], first]:
        borders = np.asarray(batch.get_document_borders())
        assert borders[:, 0].all()
        np.testing.assert_array_equal(borders[:, 1:], np.asarray(batch.inputs)[:, 1:] == eos)
