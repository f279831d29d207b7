"""Text → on-the-fly tokenization → packed batches, next to the raw batched tokenizer.

    .venv/bin/python benchmarks/tokenize_throughput.py [--documents 4000] [--tokenizer PATH]

Variants, each in its own process, on the same generated text (log-normal lengths):
  xlstm_data_arrayrecord  make_grain_iterator over UTF-8 ArrayRecord shards, packed
  xlstm_data_huggingface  make_grain_iterator over the same text as an HF dataset on disk
  grain_firstfit          Grain's documented pipeline: source → map(decode, tokenize one
                          record) → FirstFitPackIterDataset → batch
  raw_tokenizer           the tokenizer's batched encode over the same texts (the limit)
The tokenizer is a sentencepiece model trained on the text unless --tokenizer names one
(e.g. ../shared/data/llama2-tokenizer.model).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from harness import (
    LENGTH_MIXES,
    TOKENS_PER_WORD,
    add_length_mix,
    count_grain_batch,
    grain_firstfit_batches,
    measure,
    measure_loader,
    report,
    run_or_compare,
    variant_parser,
)


def prepare(args) -> tuple[Path, str]:
    """Generated text as ArrayRecord shards and an HF dataset, plus a tokenizer path."""
    from xlstm_data.sources.array_record import write_array_record_shards
    from xlstm_data.tools.corpus import generate_documents, train_sentencepiece

    median, _, documents = LENGTH_MIXES[args.length_mix]
    documents = args.documents or documents // 2
    folder = args.workdir / f"text_{args.length_mix}_{documents}"
    if not (folder / "done").is_file():
        import datasets

        words = max(1, round(median / TOKENS_PER_WORD))
        texts = generate_documents(documents, seed=0, median_words=words, max_words=40_000)
        write_array_record_shards([t.encode() for t in texts], folder / "train", num_shards=8)
        datasets.Dataset.from_dict({"text": texts}).save_to_disk(str(folder / "hf"))
        train_sentencepiece(texts[:2000], folder / "sp", vocab_size=4000)
        (folder / "done").write_text("ok")
    return folder, args.tokenizer or str(folder / "sp.model")


def texts_of(folder: Path) -> list[str]:
    from xlstm_data.sources.array_record import load_array_record_dataset

    source = load_array_record_dataset(folder / "train")
    return [r.decode() for r in source.__getitems__(np.arange(len(source)))]


def run_xlstm_data(args, folder: Path, tokenizer: str, kind: str):
    import jax

    from xlstm_data import GrainArrayRecordsDataConfig, HFHubDataConfig, make_grain_iterator

    started = time.perf_counter()
    shared = {
        "global_batch_size": args.batch,
        "max_target_length": args.length,
        "tokenizer_path": tokenizer,
        "grain_packing": True,
        "shuffle_data": True,
        "worker_count": args.workers,
    }
    if kind == "arrayrecord":
        config = GrainArrayRecordsDataConfig(data_path=folder, **shared)
    else:
        config = HFHubDataConfig(hf_path=str(folder / "hf"), **shared)
    iterator = make_grain_iterator(config, jax.make_mesh((1,), ("data",)), [0])

    with iterator:
        return measure_loader(iterator, args, started)


def run_grain_firstfit(args, folder: Path, tokenizer_path: str):
    import grain

    from xlstm_data.tokenizer import load_tokenizer

    started = time.perf_counter()
    tokenizer = load_tokenizer(tokenizer_path)
    files = sorted(str(p) for p in (folder / "train").glob("*.arecord"))
    length, eos = args.length, tokenizer.eos_id

    def tokenize(record: bytes) -> dict[str, np.ndarray]:
        ids = tokenizer.encode_batch([record.decode()]).tokens[: length - 1]
        return {"targets": np.append(ids, eos).astype(np.int32)}

    dataset = (
        grain.MapDataset.source(grain.sources.ArrayRecordDataSource(files))
        .shuffle(seed=0)
        .repeat()
        .map(tokenize)
        .to_iter_dataset()
    )
    batches = grain_firstfit_batches(dataset, length=length, batch=args.batch)

    return measure(
        batches,
        count_grain_batch,
        warmup=1,
        steps=max(5, args.steps // 2),
        started=started,
        min_seconds=args.seconds,
    )


def run_raw_tokenizer(args, folder: Path, tokenizer_path: str):
    from xlstm_data.tokenizer import load_tokenizer

    started = time.perf_counter()
    tokenizer = load_tokenizer(tokenizer_path)
    texts = texts_of(folder)

    def blocks():
        while True:
            for begin in range(0, len(texts), 512):
                yield tokenizer.encode_batch(texts[begin : begin + 512])

    def count(documents) -> tuple[int, int]:
        return len(documents.tokens), len(documents.tokens)

    return measure(
        blocks(),
        count,
        warmup=1,
        steps=max(4, len(texts) // 512),
        started=started,
        min_seconds=args.seconds,
    )


VARIANTS = {
    "xlstm_data_arrayrecord": lambda a, f, t: run_xlstm_data(a, f, t, "arrayrecord"),
    "xlstm_data_huggingface": lambda a, f, t: run_xlstm_data(a, f, t, "huggingface"),
    "grain_firstfit": run_grain_firstfit,
    "raw_tokenizer": run_raw_tokenizer,
}


def main() -> None:
    parser = variant_parser(__doc__)
    add_length_mix(parser)
    parser.add_argument("--documents", type=int, help="default: ~5 * 10^6 tokens' worth")
    parser.add_argument("--tokenizer", help="tokenizer to use instead of the trained one")
    parser.add_argument("--length", type=int, default=2048, help="max_target_length")
    parser.add_argument("--batch", type=int, default=16, help="global batch size")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--workers", type=int, default=0, help="xlstm_data worker processes")
    args = parser.parse_args()
    folder, tokenizer = prepare(args)
    results = run_or_compare(__file__, args, VARIANTS, folder, tokenizer)
    if results is None:
        return
    raw = results["raw_tokenizer"]["tokens_per_s"]
    shares = {
        name: round(results[name]["tokens_per_s"] / raw, 3)
        for name in ("xlstm_data_arrayrecord", "xlstm_data_huggingface")
    }
    report(
        f"on-the-fly tokenization, packed (median of {args.repeats})",
        results,
        ours="xlstm_data_arrayrecord",
        baseline="grain_firstfit",
        extra={"share_of_raw_tokenizer": shares},
        notes=[f"share of the raw batched tokenizer's tokens/s: {shares}"],
    )


if __name__ == "__main__":
    main()
