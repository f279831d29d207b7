"""A 3-source weighted mixture of pre-tokenized ArrayRecord data: xlstm-data vs plain Grain.

    .venv/bin/python benchmarks/mixture_throughput.py [--documents 8000] [--repeats 3]

Three sources with different length mixes (short, medium, long documents), weights 0.5/0.3/0.2,
shuffled, packed into 16 x 2048 batches. Variants, each in its own process:
  xlstm_data      make_grain_iterator([a, b, c], dataset_weights=...) on a 1-device mesh
  grain_firstfit  per source: source → shuffle → parse; grain.IterDataset.mix(weights) →
                  FirstFitPackIterDataset → batch (documents cut to the row length)
"""

from __future__ import annotations

import time

import numpy as np
from harness import (
    count_grain_batch,
    grain_firstfit_batches,
    lognormal_lengths,
    measure,
    measure_loader,
    report,
    run_or_compare,
    variant_parser,
    write_token_shards,
)

WEIGHTS = (0.5, 0.3, 0.2)
MEDIANS = (100, 300, 1200)  # document length medians of the three sources
VOCAB = 32_000


def folders(args):
    out = []
    for i, median in enumerate(MEDIANS):
        folder = args.workdir / f"mixture_{i}_{args.documents}_{median}"
        lengths = lognormal_lengths(args.documents, median=median, sigma=1.0, seed=i)
        write_token_shards(folder, lengths, num_shards=4, vocab=VOCAB, seed=i)
        out.append(folder)
    return out


def run_xlstm_data(args, sources):
    import jax

    from xlstm_data import GrainArrayRecordsDataConfig, make_grain_iterator

    started = time.perf_counter()
    configs = [
        GrainArrayRecordsDataConfig(
            data_path=folder,
            name=f"source{i}",
            global_batch_size=args.batch,
            max_target_length=args.length,
            tokenize_data=False,
            eod_token_id=2,
            vocab_size=VOCAB,
            grain_packing=True,
            shuffle_data=True,
            worker_count=args.workers,
        )
        for i, folder in enumerate(sources)
    ]
    iterator = make_grain_iterator(
        configs, jax.make_mesh((1,), ("data",)), [0], dataset_weights=list(WEIGHTS)
    )

    with iterator:
        return measure_loader(iterator, args, started)


def run_grain_firstfit(args, sources):
    import grain

    started = time.perf_counter()
    length = args.length

    def parse(record: bytes) -> dict[str, np.ndarray]:
        return {"targets": np.frombuffer(record, dtype=np.int32)[:length]}

    streams = [
        grain.MapDataset.source(
            grain.sources.ArrayRecordDataSource(
                sorted(str(p) for p in (folder / "train").glob("*.arecord"))
            )
        )
        .shuffle(seed=i)
        .repeat()
        .map(parse)
        .to_iter_dataset()
        for i, folder in enumerate(sources)
    ]
    mixed = grain.IterDataset.mix(streams, list(WEIGHTS))
    batches = grain_firstfit_batches(mixed, length=length, batch=args.batch)

    return measure(
        batches,
        count_grain_batch,
        warmup=max(5, args.steps // 8),
        steps=max(10, args.steps // 4),
        started=started,
        min_seconds=args.seconds,
    )


VARIANTS = {"xlstm_data": run_xlstm_data, "grain_firstfit": run_grain_firstfit}


def main() -> None:
    parser = variant_parser(__doc__)
    parser.add_argument("--documents", type=int, default=8000, help="documents per source")
    parser.add_argument("--length", type=int, default=2048, help="max_target_length")
    parser.add_argument("--batch", type=int, default=16, help="global batch size")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--workers", type=int, default=0, help="xlstm_data worker processes")
    args = parser.parse_args()
    sources = folders(args)
    results = run_or_compare(__file__, args, VARIANTS, sources)
    if results is None:
        return
    report(
        f"3-source mixture {WEIGHTS}, packed (median of {args.repeats})",
        results,
        ours="xlstm_data",
        baseline="grain_firstfit",
    )


if __name__ == "__main__":
    main()
