"""Start-up: time to the first global batch with 1,000 ArrayRecord shards.

    .venv/bin/python benchmarks/startup_time.py [--shards 1000] [--repeats 3]

Variants, each in its own fresh process (imports included in neither figure: the clock starts
once the modules are loaded):
  xlstm_data      make_grain_iterator over pre-tokenized shards, shuffled, packed, 1 device
  grain_firstfit  grain ArrayRecordDataSource(paths) → shuffle → parse → FirstFit → batch
"""

from __future__ import annotations

import time

import numpy as np
from harness import (
    count_grain_batch,
    count_llm_batch,
    grain_firstfit_batches,
    lognormal_lengths,
    measure,
    report,
    run_or_compare,
    variant_parser,
    write_token_shards,
)


def data_folder(args):
    folder = args.workdir / f"startup_{args.shards}"
    lengths = lognormal_lengths(args.shards * 20, median=300, sigma=1.0, seed=0)
    write_token_shards(folder, lengths, num_shards=args.shards, vocab=32_000, seed=0)
    return folder


def run_xlstm_data(args, folder):
    import jax

    from xlstm_data import GrainArrayRecordsDataConfig, make_grain_iterator

    mesh = jax.make_mesh((1,), ("data",))
    started = time.perf_counter()
    config = GrainArrayRecordsDataConfig(
        data_path=folder,
        global_batch_size=16,
        max_target_length=2048,
        tokenize_data=False,
        eod_token_id=2,
        grain_packing=True,
        shuffle_data=True,
        worker_count=args.workers,
    )
    iterator = make_grain_iterator(config, mesh, [0])
    with iterator:
        return measure(iterator, count_llm_batch, warmup=0, steps=5, started=started)


def run_grain_firstfit(args, folder):
    import grain

    started = time.perf_counter()
    files = sorted(str(p) for p in (folder / "train").glob("*.arecord"))

    def parse(record: bytes) -> dict[str, np.ndarray]:
        return {"targets": np.frombuffer(record, dtype=np.int32)[:2048]}

    dataset = (
        grain.MapDataset.source(grain.sources.ArrayRecordDataSource(files))
        .shuffle(seed=0)
        .repeat()
        .map(parse)
        .to_iter_dataset()
    )
    batches = grain_firstfit_batches(dataset, length=2048, batch=16)
    return measure(batches, count_grain_batch, warmup=0, steps=5, started=started)


VARIANTS = {"xlstm_data": run_xlstm_data, "grain_firstfit": run_grain_firstfit}


def main() -> None:
    parser = variant_parser(__doc__)
    parser.add_argument("--shards", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=0, help="xlstm_data worker processes")
    args = parser.parse_args()
    folder = data_folder(args)
    results = run_or_compare(__file__, args, VARIANTS, folder)
    if results is None:
        return
    report(
        f"start-up with {args.shards} shards (median of {args.repeats})",
        results,
        ours="xlstm_data",
        baseline="grain_firstfit",
        notes=[
            f"time to first batch: xlstm_data {results['xlstm_data']['time_to_first_batch_s']:.2f}"
            f" s, grain_firstfit {results['grain_firstfit']['time_to_first_batch_s']:.2f} s"
        ],
    )


if __name__ == "__main__":
    main()
