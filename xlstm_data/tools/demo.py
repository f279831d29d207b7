"""The main job: the pipeline on embedded default data, with a sample and throughput figures.

Builds (once) a generated corpus as ArrayRecord shards and as an HF dataset saved to disk, plus a
small sentencepiece tokenizer trained on it, then runs `make_grain_iterator` over a mixture of
both, packed, on 8 fake CPU devices.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from xlstm_data.config import DataConfig, GrainArrayRecordsDataConfig, HFHubDataConfig
from xlstm_data.sources.array_record import write_array_record_shards
from xlstm_data.tools.corpus import generate_documents, train_sentencepiece

LOGGER = logging.getLogger(__name__)

DEMO_DEVICES = 8
TRAIN_DOCUMENTS = 6_000
VALIDATION_DOCUMENTS = 300


def build_demo_data(workdir: Path) -> None:
    """Corpus (ArrayRecord + HF saved dataset) and tokenizer under `workdir`, built once."""
    import datasets

    if (workdir / "tokenizer.model").is_file():
        return
    datasets.disable_progress_bars()
    started = time.perf_counter()
    splits = {
        "train": generate_documents(TRAIN_DOCUMENTS, seed=0),
        "validation": generate_documents(VALIDATION_DOCUMENTS, seed=1),
    }
    for split, texts in splits.items():
        write_array_record_shards(
            [t.encode() for t in texts], workdir / "arrayrecord" / split, num_shards=8, prefix=split
        )
    hf_splits = {
        s: generate_documents(len(t) // 2, seed=10 + i, median_words=120)
        for i, (s, t) in enumerate(splits.items())
    }
    datasets.DatasetDict(
        {s: datasets.Dataset.from_dict({"text": t}) for s, t in hf_splits.items()}
    ).save_to_disk(str(workdir / "huggingface"))
    train_sentencepiece(splits["train"][:2000], workdir / "tokenizer", vocab_size=1024)
    print(
        f"Built demo data in {workdir} ({time.perf_counter() - started:.1f} s): "
        f"{TRAIN_DOCUMENTS} ArrayRecord documents, {len(hf_splits['train'])} HF documents, "
        "a 1024-piece sentencepiece tokenizer."
    )


def demo_configs(
    workdir: Path,
    *,
    global_batch_size: int = 32,
    max_target_length: int = 512,
    worker_count: int = 0,
) -> list[DataConfig]:
    """The mixture the demo runs (the same as configs/demo.yaml)."""
    shared = {
        "global_batch_size": global_batch_size,
        "max_target_length": max_target_length,
        "tokenizer_path": str(workdir / "tokenizer.model"),
        "grain_packing": True,
        "shuffle_data": True,
        "worker_count": worker_count,
    }
    return [
        GrainArrayRecordsDataConfig(
            name="arrayrecord", data_path=workdir / "arrayrecord", **shared
        ),
        HFHubDataConfig(name="huggingface", hf_path=str(workdir / "huggingface"), **shared),
    ]


def describe_row(batch, tokenizer, max_chars: int = 70) -> str:
    """The row with the most documents: each segment's id, length and decoded start."""
    all_segmentation = np.asarray(batch.targets_segmentation)
    row = int(all_segmentation.max(axis=1).argmax())
    targets = np.asarray(batch.targets)[row]
    segmentation = all_segmentation[row]
    lines = [
        f"Row {row}: {len(targets)} tokens, {int((segmentation == 0).sum())} padding, "
        f"segmentation {segmentation[:24].tolist()}…"
    ]
    for segment in range(1, int(segmentation.max(initial=0)) + 1):
        ids = targets[segmentation == segment]
        text = tokenizer.decode(ids).replace("\n", " ")
        text = text if len(text) <= max_chars else text[:max_chars] + "…"
        lines.append(f"  segment {segment:2d} ({len(ids):4d} tokens): {text}")
    return "\n".join(lines)


def run_demo(
    workdir: Path, *, steps: int, weights: tuple[float, float] = (0.7, 0.3), worker_count: int = 0
) -> dict[str, float]:
    import jax

    from xlstm_data.api import make_grain_iterator
    from xlstm_data.tokenizer import load_tokenizer

    build_demo_data(workdir)
    configs = demo_configs(workdir, worker_count=worker_count)
    mesh = jax.make_mesh((DEMO_DEVICES,), ("data",))
    tokenizer = load_tokenizer(workdir / "tokenizer.model")
    started = time.perf_counter()
    with make_grain_iterator(configs, mesh, [0], dataset_weights=list(weights)) as iterator:
        batch = next(iterator)
        first_batch_s = time.perf_counter() - started
        print(
            f"Mixture {dict(zip([c.name for c in configs], weights, strict=True))} on "
            f"{DEMO_DEVICES} CPU devices; batch {batch.targets.shape}, sharded "
            f"{batch.targets.sharding.spec}"
        )
        print(describe_row(batch, tokenizer))
        tokens_before = iterator.counts["tokens"]
        started = time.perf_counter()
        for _ in range(steps):
            batch = next(iterator)
        jax.block_until_ready(batch)
        elapsed = time.perf_counter() - started
        figures = {
            "steps": steps,
            "time_to_first_batch_s": round(first_batch_s, 3),
            "batches_per_s": round(steps / elapsed, 1),
            "tokens_per_s": round((iterator.counts["tokens"] - tokens_before) / elapsed),
            "padding_fraction": round(iterator.padding_fraction, 4),
        }
    print(
        f"{steps} batches in {elapsed:.2f} s: {figures['tokens_per_s']:,} tokens/s, "
        f"{figures['batches_per_s']} batches/s, padding fraction "
        f"{figures['padding_fraction']:.2%}, first batch after {first_batch_s:.2f} s"
    )
    return figures
