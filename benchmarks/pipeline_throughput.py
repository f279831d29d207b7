"""Pre-tokenized ArrayRecord → packed, shifted global batches: xlstm-data vs plain Grain.

    .venv/bin/python benchmarks/pipeline_throughput.py [--documents 20000] [--steps 200]

Variants (each in its own process, same data, same batch shape, no worker processes):
  xlstm_data      make_grain_iterator: packing, shift, global jax.Arrays on a 1-device mesh
  grain_firstfit  the pipeline Grain's documentation suggests: source → shuffle → parse →
                  FirstFitPackIterDataset → batch (documents cut to the row length first,
                  since FirstFit cannot split them)
  raw_read_concat reading the same records 1,000 at a time and concatenating them: the
                  practical limit of any pipeline on this data
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
from harness import (
    lognormal_lengths,
    measure,
    peak_rss_mb,
    report,
    run_variants,
    variant_parser,
    write_token_shards,
)

VOCAB = 32_000


def data_folder(args) -> Path:
    folder = args.workdir / f"tokens_{args.documents}_{args.median}"
    lengths = lognormal_lengths(args.documents, median=args.median, sigma=args.sigma, seed=0)
    write_token_shards(folder, lengths, num_shards=8, vocab=VOCAB, seed=0)
    return folder


def run_xlstm_data(args, folder: Path):
    import jax

    from xlstm_data import GrainArrayRecordsDataConfig, make_grain_iterator

    started = time.perf_counter()
    config = GrainArrayRecordsDataConfig(
        data_path=folder,
        global_batch_size=args.batch,
        max_target_length=args.length,
        tokenize_data=False,
        eod_token_id=2,
        vocab_size=VOCAB,
        grain_packing=True,
        shuffle_data=True,
        worker_count=args.workers,
    )
    iterator = make_grain_iterator(config, jax.make_mesh((1,), ("data",)), [0])

    def count(batch) -> tuple[int, int]:
        segmentation = np.asarray(batch.targets_segmentation)
        return int((segmentation > 0).sum()), segmentation.size

    with iterator:
        return measure(iterator, count, warmup=5, steps=args.steps, started=started)


def run_grain_firstfit(args, folder: Path):
    import grain

    started = time.perf_counter()
    source = grain.sources.ArrayRecordDataSource(
        sorted(str(p) for p in (folder / "train").glob("*.arecord"))
    )
    length = args.length

    def parse(record: bytes) -> dict[str, np.ndarray]:
        return {"targets": np.frombuffer(record, dtype=np.int32)[:length]}

    dataset = grain.MapDataset.source(source).shuffle(seed=0).repeat().map(parse).to_iter_dataset()
    dataset = grain.experimental.FirstFitPackIterDataset(
        dataset, length_struct={"targets": length}, num_packing_bins=args.batch, shuffle_bins=False
    )
    batches = iter(dataset.batch(args.batch))

    def count(batch) -> tuple[int, int]:
        return int((batch["targets_segment_ids"] > 0).sum()), batch["targets"].size

    return measure(batches, count, warmup=2, steps=max(10, args.steps // 4), started=started)


def run_raw_read_concat(args, folder: Path):
    import grain

    started = time.perf_counter()
    source = grain.sources.ArrayRecordDataSource(
        sorted(str(p) for p in (folder / "train").glob("*.arecord"))
    )
    order = np.random.default_rng(0).permutation(len(source))

    def blocks():
        while True:
            for begin in range(0, len(order), 1000):
                records = source.__getitems__(order[begin : begin + 1000].tolist())
                yield np.concatenate([np.frombuffer(r, dtype=np.int32) for r in records])

    def count(tokens) -> tuple[int, int]:
        return len(tokens), len(tokens)

    return measure(blocks(), count, warmup=2, steps=args.steps // 4, started=started)


VARIANTS = {
    "xlstm_data": run_xlstm_data,
    "grain_firstfit": run_grain_firstfit,
    "raw_read_concat": run_raw_read_concat,
}


def main() -> None:
    parser = variant_parser(__doc__)
    parser.add_argument("--documents", type=int, default=20_000)
    parser.add_argument("--median", type=int, default=300, help="median document length")
    parser.add_argument("--sigma", type=float, default=1.0, help="log-normal spread")
    parser.add_argument("--length", type=int, default=2048, help="max_target_length")
    parser.add_argument("--batch", type=int, default=16, help="global batch size")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--workers", type=int, default=0, help="xlstm_data worker processes")
    args = parser.parse_args()
    folder = data_folder(args)
    if args.variant:
        measurement = VARIANTS[args.variant](args, folder)
        print(json.dumps(measurement.figures() | {"peak_rss_mb": round(peak_rss_mb(), 1)}))
        return
    results = run_variants(__file__, list(VARIANTS), sys.argv[1:])
    raw = results["raw_read_concat"]["tokens_per_s"]
    share_of_raw = results["xlstm_data"]["tokens_per_s"] / raw
    report(
        "pre-tokenized ArrayRecord, packed",
        results,
        ours="xlstm_data",
        baseline="grain_firstfit",
        extra={"share_of_raw_read_concat": round(share_of_raw, 3)},
    )
    print(f"xlstm_data reaches {share_of_raw:.0%} of the raw read-and-concatenate rate.")


if __name__ == "__main__":
    main()
