"""Token cache: `prepare` against the raw tokenizer, then reading the cache and a memmap file.

    .venv/bin/python benchmarks/cache_throughput.py [--documents 8000] [--tokenizer sp|hf|PATH]

Variants (each in its own process, on the same generated text):
  encode       the tokenizer's batched `encode_batch` (256 texts a call) in one process: the
               rate a single tokenizing process reaches (sentencepiece uses threads itself)
  prepare      `prepare_cache` with --workers processes, from the JSON Lines file to a
               finished cache (start-up, reading, tokenizing, writing shards, metadata)
  read_cache   `make_grain_iterator` over the cache: packed, shuffled, 16 x 2048
  read_memmap  the same tokens as one uint16 .bin file (documents joined by EOD) through
               `MemmapDataConfig`: shuffled windows of 2049 tokens, 16 a batch
  grain_cache_firstfit   baseline for read_cache: Grain's documented pipeline over the cache's
               shards (source → shuffle → parse, EOD → FirstFitPackIterDataset → batch)
  grain_memmap_windows   baseline for read_memmap: a Grain MapDataset of shuffled np.memmap
               windows → batch, the way nanoGPT-style loaders read a .bin file
"""

from __future__ import annotations

import json
import shutil
import sys
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
    peak_rss_mb,
    report,
    run_variants,
    variant_args,
    variant_parser,
)

BATCH_TEXTS = 256


def build_data(args) -> dict[str, Path]:
    """Text (JSON Lines), tokenizer, a cache and a memmap file under the workdir, built once
    (by the "build" process, before the variants)."""
    from xlstm_data.sources.token_cache import load_token_cache
    from xlstm_data.tools.corpus import generate_documents, train_hf_bpe, train_sentencepiece
    from xlstm_data.tools.prepare import prepare_cache
    from xlstm_data.tools.text_inputs import TextInput

    median, _, documents = LENGTH_MIXES[args.length_mix]
    documents = args.documents or documents // 4
    folder = args.workdir / f"cache_bench_{args.length_mix}_{documents}_{Path(args.tokenizer).name}"
    paths = {
        "text": folder / "docs.jsonl",
        "cache": folder / "cache",
        "memmap": folder / "tokens.bin",
        "tokenizer": Path(args.tokenizer),
    }
    if args.tokenizer == "sp":
        paths["tokenizer"] = folder / "sp.model"
    elif args.tokenizer == "hf":
        paths["tokenizer"] = folder / "hf"
    if paths["memmap"].is_file():
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    words = max(1, round(median / TOKENS_PER_WORD))
    texts = generate_documents(documents, seed=0, median_words=words, max_words=40_000)
    paths["text"].write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    if args.tokenizer == "sp":
        train_sentencepiece(texts[:2000], folder / "sp", vocab_size=2048)
    elif args.tokenizer == "hf":
        train_hf_bpe(texts[:2000], folder / "hf", vocab_size=2048)
    prepare_cache(
        TextInput((str(paths["text"]),)), paths["cache"], str(paths["tokenizer"]), progress=False
    )
    cache = load_token_cache(paths["cache"])
    eod = cache.metadata.eod_token_id
    documents = cache.__getitems__(list(range(len(cache))))
    np.concatenate([np.r_[d, eod] for d in documents]).astype(np.uint16).tofile(paths["memmap"])
    return paths


def run_encode(args, paths) -> dict:
    from xlstm_data.tokenizer import load_tokenizer

    texts = [json.loads(line)["text"] for line in paths["text"].open()]
    tokenizer = load_tokenizer(str(paths["tokenizer"]))
    started = time.perf_counter()
    tokens = sum(
        len(tokenizer.encode_batch(texts[i : i + BATCH_TEXTS]).tokens)
        for i in range(0, len(texts), BATCH_TEXTS)
    )
    seconds = time.perf_counter() - started
    return {"tokens_per_s": round(tokens / seconds), "seconds": round(seconds, 2)}


def run_prepare(args, paths) -> dict:
    from xlstm_data.tools.prepare import prepare_cache
    from xlstm_data.tools.text_inputs import TextInput

    output = paths["cache"].with_name("prepared")
    shutil.rmtree(output, ignore_errors=True)
    started = time.perf_counter()
    metadata = prepare_cache(
        TextInput((str(paths["text"]),)),
        output,
        str(paths["tokenizer"]),
        workers=args.workers,
        documents_per_shard=args.documents_per_shard,
        batch_size=BATCH_TEXTS,
        progress=False,
    )
    seconds = time.perf_counter() - started
    return {"tokens_per_s": round(metadata.tokens / seconds), "seconds": round(seconds, 2)}


def read(config, args) -> dict:
    import jax

    from xlstm_data import make_grain_iterator

    started = time.perf_counter()
    iterator = make_grain_iterator(config, jax.make_mesh((1,), ("data",)), [0])

    with iterator:
        return measure_loader(iterator, args, started).figures()


def run_read_cache(args, paths) -> dict:
    from xlstm_data import TokenCacheDataConfig

    config = TokenCacheDataConfig(
        cache_path=paths["cache"],
        global_batch_size=16,
        max_target_length=2048,
        grain_packing=True,
        shuffle_data=True,
        worker_count=0,
    )
    return read(config, args)


def run_read_memmap(args, paths) -> dict:
    from xlstm_data import MemmapDataConfig

    config = MemmapDataConfig(
        data_files=str(paths["memmap"]),
        global_batch_size=16,
        max_target_length=2048,
        shuffle_data=True,
        worker_count=0,
    )
    return read(config, args)


def run_grain_cache_firstfit(args, paths) -> dict:
    import grain

    from xlstm_data.sources.token_cache import load_token_cache

    started = time.perf_counter()
    cache = load_token_cache(paths["cache"])
    eod, dtype = cache.metadata.eod_token_id, cache.dtype

    def parse(record: bytes) -> dict[str, np.ndarray]:
        return {"targets": np.append(np.frombuffer(record, dtype), eod)[:2048].astype(np.int32)}

    dataset = (
        grain.MapDataset.source(grain.sources.ArrayRecordDataSource(cache.files))
        .shuffle(seed=0)
        .repeat()
        .map(parse)
        .to_iter_dataset()
    )
    batches = grain_firstfit_batches(dataset, length=2048, batch=16)

    steps = max(10, args.steps // 4)
    return measure(
        batches, count_grain_batch, warmup=2, steps=steps, started=started, min_seconds=args.seconds
    ).figures()


def run_grain_memmap_windows(args, paths) -> dict:
    import grain

    started = time.perf_counter()
    tokens = np.memmap(paths["memmap"], dtype=np.uint16, mode="r")
    window = 2049

    def take(index: int) -> dict[str, np.ndarray]:
        chunk = np.asarray(tokens[index * window : (index + 1) * window], dtype=np.int32)
        return {"inputs": chunk[:-1], "targets": chunk[1:]}

    dataset = (
        grain.MapDataset.range(len(tokens) // window)
        .shuffle(seed=0)
        .repeat()
        .map(take)
        .batch(16)
        .to_iter_dataset()
    )

    def count(batch) -> tuple[int, int]:
        return batch["targets"].size, batch["targets"].size

    return measure(
        iter(dataset), count, warmup=5, steps=args.steps, started=started, min_seconds=args.seconds
    ).figures()


VARIANTS = {
    "encode": run_encode,
    "prepare": run_prepare,
    "read_cache": run_read_cache,
    "grain_cache_firstfit": run_grain_cache_firstfit,
    "read_memmap": run_read_memmap,
    "grain_memmap_windows": run_grain_memmap_windows,
}


def main() -> None:
    parser = variant_parser(__doc__)
    add_length_mix(parser)
    parser.add_argument("--documents", type=int, help="default: ~2.5 * 10^6 tokens' worth")
    parser.add_argument(
        "--tokenizer", default="sp", help="sp or hf (trained on the text), or a tokenizer path"
    )
    parser.add_argument("--workers", type=int, default=2, help="prepare's processes")
    parser.add_argument("--documents-per-shard", type=int, default=500)
    parser.add_argument("--steps", type=int, default=200, help="batches read")
    args = parser.parse_args()
    if not args.variant:
        compare(args)
        return
    paths = build_data(args)
    figures = VARIANTS[args.variant](args, paths) if args.variant != "build" else {}
    print(json.dumps(figures | {"peak_rss_mb": round(peak_rss_mb(), 1)}))


def compare(args) -> None:
    # Data are built in a process of their own: a child started from a large parent would
    # inherit its peak RSS.
    argv = variant_args(sys.argv[1:])
    run_variants(__file__, ["build"], argv)
    results = run_variants(__file__, list(VARIANTS), argv, repeats=args.repeats)

    def ratio(ours: str, baseline: str) -> float:
        return round(results[ours]["tokens_per_s"] / results[baseline]["tokens_per_s"], 3)

    extra = {
        "ratio_read_cache_to_memmap": ratio("read_cache", "read_memmap"),
        "ratio_read_cache_to_grain": ratio("read_cache", "grain_cache_firstfit"),
        "ratio_read_memmap_to_grain": ratio("read_memmap", "grain_memmap_windows"),
    }
    report(
        f"token cache ({args.tokenizer} tokenizer, {args.workers} prepare workers, "
        f"median of {args.repeats})",
        results,
        ours="prepare",
        baseline="encode",
        extra=extra,
        notes=[
            f"reading: cache / Grain FirstFit on the cache {extra['ratio_read_cache_to_grain']}x, "
            f"memmap / Grain memmap windows {extra['ratio_read_memmap_to_grain']}x, "
            f"cache / memmap {extra['ratio_read_cache_to_memmap']}x"
        ],
    )


if __name__ == "__main__":
    main()
