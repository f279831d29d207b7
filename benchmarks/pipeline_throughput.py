"""Pre-tokenized ArrayRecord → packed, shifted global batches: xlstm-data against each of
Grain's packers and the batched raw read, on a chosen mix of document lengths.

    .venv/bin/python benchmarks/pipeline_throughput.py [--length-mix short|web|long]
        [--median M --sigma S] [--documents N] [--orders shuffled sequential] [--repeats 3]

Length mixes (log-normal): short, median 30 tokens (chat, captions, instructions); web, median
300; long, median 5,000, many longer than a row (books, code files, papers). The number of
documents defaults to about 10^7 tokens of data for each mix.

Variants, each in its own process, on the same records, 16 x 2048 rows, 1 device:
  xlstm_data          make_grain_iterator: packing (best fit), shift, global jax.Arrays
  xlstm_data_host     the same host's packed, shifted batches as numpy, before the transfer
                      to the devices (`api.build_reader(...).batches(0)`): what the transfer
                      costs on CPU devices
  xlstm_data_plan     the same records as a token cache read through a global plan
  grain_firstfit      source → (shuffle) → parse → FirstFitPackIterDataset → batch
  grain_bestfit       ... → BestFitPackIterDataset → batch
  grain_concat_split  ... → ConcatThenSplitIterDataset (MaxText's packer) → batch
  raw_read_concat     reading the same records 1,000 at a time through Grain's
                      ArrayRecordDataSource and joining them into one token array: the
                      practical limit of a plain batched read
First fit and best fit cannot split a document, so for them documents are cut to the row
length first (their tokens/s counts only the tokens they keep).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
from harness import (
    LENGTH_MIXES,
    add_length_mix,
    count_grain_batch,
    lognormal_lengths,
    measure,
    measure_loader,
    report,
    run_variants,
    variant_args,
    variant_parser,
    write_token_shards,
)

VOCAB = 32_000
ORDERS = ("shuffled", "sequential")
GRAIN_PACKERS = {
    "grain_firstfit": "FirstFitPackIterDataset",
    "grain_bestfit": "BestFitPackIterDataset",
    "grain_concat_split": "ConcatThenSplitIterDataset",
}


def mix(args) -> tuple[int, float, int]:
    """(median, sigma, documents) of the chosen length mix, overridden by the flags."""
    median, sigma, documents = LENGTH_MIXES[args.length_mix]
    return args.median or median, args.sigma or sigma, args.documents or documents


def data_folder(args) -> Path:
    median, sigma, documents = mix(args)
    folder = args.workdir / f"tokens_{documents}_{median}_{sigma}"
    lengths = lognormal_lengths(documents, median=median, sigma=sigma, seed=0)
    write_token_shards(folder, lengths, num_shards=8, vocab=VOCAB, seed=0)
    return folder


def shard_files(folder: Path) -> list[str]:
    return sorted(str(p) for p in (folder / "train").glob("*.arecord"))


def xlstm_data_config(args, folder: Path, shuffle: bool):
    from xlstm_data import GrainArrayRecordsDataConfig

    return GrainArrayRecordsDataConfig(
        data_path=folder,
        global_batch_size=args.batch,
        max_target_length=args.length,
        tokenize_data=False,
        eod_token_id=2,
        vocab_size=VOCAB,
        grain_packing=True,
        shuffle_data=shuffle,
        worker_count=args.workers,
        device_prefetch=args.device_prefetch,
    )


def run_xlstm_data(args, folder: Path, shuffle: bool):
    import jax

    from xlstm_data import make_grain_iterator

    started = time.perf_counter()
    config = xlstm_data_config(args, folder, shuffle)
    iterator = make_grain_iterator(config, jax.make_mesh((1,), ("data",)), [0])
    with iterator:
        return measure_loader(iterator, args, started)


def run_xlstm_data_host(args, folder: Path, shuffle: bool):
    from xlstm_data.api import build_reader
    from xlstm_data.stages.shift import field

    started = time.perf_counter()
    batches = iter(build_reader(xlstm_data_config(args, folder, shuffle)).batches(0))

    def count(item) -> tuple[int, int]:
        # From the batch itself, as for every variant (a window's counts come with its first
        # batch, which would skew a count over a few windows).
        segmentation = field(item[0], "targets_segmentation")
        return np.count_nonzero(segmentation), segmentation.size

    warmup, steps = args.steps // 2, args.steps
    return measure(batches, count, warmup=warmup, steps=steps, started=started,
                   min_seconds=args.seconds)  # fmt: skip


def token_cache(folder: Path) -> Path:
    """The shards of `folder` as a token cache (int32 ids, their lengths), made once."""
    from xlstm_data.sources.array_record import ArrayRecordSource, count_records
    from xlstm_data.sources.token_cache_files import CacheMetadata, ShardInfo, lengths_file

    cache = folder / "cache"
    if (cache / "metadata.json").is_file():
        return cache
    cache.mkdir(exist_ok=True)
    shards = []
    for index, file in enumerate(shard_files(folder)):
        count = count_records(file)
        records = ArrayRecordSource([file], [count]).__getitems__(range(count))
        lengths = np.array([len(r) // 4 for r in records], np.int64)
        name = f"shard_{index:06d}.arecord"
        (cache / name).symlink_to(file)
        np.save(cache / lengths_file(name), lengths)
        shards.append(ShardInfo(name, count, int(lengths.sum())))
    metadata = CacheMetadata(
        tokenizer_path="generated",
        tokenizer_fingerprint="generated",
        vocab_size=VOCAB,
        dtype="int32",
        eod_token_id=2,
        source={"generated": str(folder)},
        documents_per_shard=max(s.documents for s in shards),
        shards=shards,
        complete=True,
    )
    metadata.write(cache)
    return cache


def run_xlstm_data_plan(args, folder: Path, shuffle: bool):
    import jax

    from xlstm_data import TokenCacheDataConfig, make_grain_iterator

    cache = token_cache(folder)
    started = time.perf_counter()
    config = TokenCacheDataConfig(
        cache_path=cache,
        global_batch_size=args.batch,
        max_target_length=args.length,
        grain_packing=True,
        shuffle_data=shuffle,
        worker_count=args.workers,
        plan="global",
        plan_dir=str(args.workdir / "plans"),
    )
    iterator = make_grain_iterator(config, jax.make_mesh((1,), ("data",)), [0])
    with iterator:
        measurement = measure_loader(iterator, args, started)
    counts = iterator.counts
    measurement.read_per_used_token = counts["read_tokens"] / max(counts["tokens"], 1)
    return measurement


def run_grain(args, folder: Path, shuffle: bool, packer: str):
    import grain

    started = time.perf_counter()
    length, cut = args.length, packer != "ConcatThenSplitIterDataset"

    def parse(record: bytes) -> dict[str, np.ndarray]:
        tokens = np.frombuffer(record, dtype=np.int32)
        return {"targets": tokens[:length] if cut else tokens}

    dataset = grain.MapDataset.source(grain.sources.ArrayRecordDataSource(shard_files(folder)))
    if shuffle:
        dataset = dataset.shuffle(seed=0)
    dataset = dataset.repeat().map(parse).to_iter_dataset()
    options = {"length_struct": {"targets": length}}
    if cut:
        options |= {"num_packing_bins": args.batch, "shuffle_bins": False}
    packed = getattr(grain.experimental, packer)(dataset, **options)
    batches = iter(packed.batch(args.batch))
    return measure(
        batches,
        count_grain_batch,
        warmup=max(5, args.steps // 8),
        steps=max(10, args.steps // 4),
        started=started,
        min_seconds=args.seconds,
    )


def run_raw_read_concat(args, folder: Path, shuffle: bool):
    import grain

    started = time.perf_counter()
    # Grain's own source: the plain batched read (one ArrayRecord call per file), not ours.
    source = grain.sources.ArrayRecordDataSource(shard_files(folder))
    order = np.random.default_rng(0).permutation(len(source)) if shuffle else np.arange(len(source))

    def blocks():
        while True:
            for begin in range(0, len(order), 1000):
                records = source.__getitems__(order[begin : begin + 1000])
                yield np.frombuffer(b"".join(records), dtype=np.int32)

    def count(tokens) -> tuple[int, int]:
        return len(tokens), len(tokens)

    return measure(
        blocks(),
        count,
        warmup=args.steps // 8,
        steps=args.steps // 4,
        started=started,
        min_seconds=args.seconds,
    )


VARIANTS = {
    "xlstm_data": run_xlstm_data,
    "xlstm_data_host": run_xlstm_data_host,
    "xlstm_data_plan": run_xlstm_data_plan,
    **{
        name: lambda args, folder, shuffle, packer=packer: run_grain(args, folder, shuffle, packer)
        for name, packer in GRAIN_PACKERS.items()
    },
    "raw_read_concat": run_raw_read_concat,
}


def main() -> None:
    parser = variant_parser(__doc__)
    add_length_mix(parser)
    parser.add_argument("--median", type=int, help="median document length (overrides the mix)")
    parser.add_argument("--sigma", type=float, help="log-normal spread (overrides the mix)")
    parser.add_argument("--documents", type=int, help="documents (default: ~10^7 tokens' worth)")
    parser.add_argument("--orders", nargs="+", choices=ORDERS, default=["shuffled"])
    parser.add_argument("--length", type=int, default=2048, help="max_target_length")
    parser.add_argument("--batch", type=int, default=16, help="global batch size")
    parser.add_argument("--steps", type=int, default=200, help="batches timed at least")
    parser.add_argument("--workers", type=int, default=0, help="xlstm_data worker processes")
    parser.add_argument("--device-prefetch", type=int, default=0, help="batches made ahead")
    args = parser.parse_args()
    folder = data_folder(args)
    if args.variant:
        name, order = args.variant.split(":")
        measurement = VARIANTS[name](args, folder, order == "shuffled")
        print(json.dumps(measurement.figures()))
        return
    median, sigma, documents = mix(args)
    for order in args.orders:
        names = [f"{name}:{order}" for name in VARIANTS]
        results = run_variants(__file__, names, variant_args(sys.argv[1:]), repeats=args.repeats)
        ours, raw = results[f"xlstm_data:{order}"], results[f"raw_read_concat:{order}"]
        plan = results[f"xlstm_data_plan:{order}"]
        best_grain = max(GRAIN_PACKERS, key=lambda n: results[f"{n}:{order}"]["tokens_per_s"])
        grain_rate = results[f"{best_grain}:{order}"]["tokens_per_s"]
        shares = {
            name: round(results[f"{name}:{order}"]["tokens_per_s"] / raw["tokens_per_s"], 3)
            for name in ("xlstm_data", "xlstm_data_host", "xlstm_data_plan")
        }
        report(
            f"pre-tokenized ArrayRecord, packed, {order}, {args.length_mix} mix (median "
            f"{median}, sigma {sigma}, {documents} documents; median of {args.repeats})",
            results,
            ours=f"xlstm_data:{order}",
            baseline=f"{best_grain}:{order}",
            extra={
                "length_mix": args.length_mix,
                "share_of_raw_read_concat": shares,
                "best_grain_packer": best_grain,
                "ratio_to_best_grain": round(ours["tokens_per_s"] / grain_rate, 2),
            },
            notes=[
                f"online: {shares['xlstm_data']:.0%} (host batches before the transfer: "
                f"{shares['xlstm_data_host']:.0%}) and plan: {shares['xlstm_data_plan']:.0%} "
                f"of the raw read-and-concatenate rate; xlstm_data runs "
                f"{ours['tokens_per_s'] / grain_rate:.1f}x the best Grain packer ({best_grain}).",
                f"The plan read {plan['read_per_used_token']:.2f}x the tokens its batches hold.",
            ],
        )


if __name__ == "__main__":
    main()
