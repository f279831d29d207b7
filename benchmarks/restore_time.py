"""Restore time at step 10 vs step 10^6: set_state costs O(1) in the step number.

    .venv/bin/python benchmarks/restore_time.py [--records 2000000]

The unpacked pipeline reaches step 10^6 through `start_from_step` (O(1)), takes its state and
restores it into a fresh iterator; the packed pipeline (whose states can only be reached by
running) compares step 10 with step `--packed-steps`. For scale, the table also gives what
replaying up to the step would cost at the measured batch rate.
"""

from __future__ import annotations

import json
import time

import jax
import numpy as np
from harness import lognormal_lengths, variant_parser, write_token_shards

from xlstm_data import GrainArrayRecordsDataConfig, make_grain_iterator


def restore_seconds(config, state, repeats: int = 5) -> float:
    """Median wall time of set_state plus the first batch, on a freshly built iterator."""
    times = []
    mesh = jax.make_mesh((1,), ("data",))
    for _ in range(repeats):
        with make_grain_iterator(config, mesh, [0]) as iterator:
            started = time.perf_counter()
            iterator.set_state(state)
            jax.block_until_ready(next(iterator).targets)
            times.append(time.perf_counter() - started)
    return float(np.median(times))


def batches_per_second(iterator, steps: int = 200) -> float:
    started = time.perf_counter()
    for _ in range(steps):
        next(iterator)
    return steps / (time.perf_counter() - started)


def main() -> None:
    parser = variant_parser(__doc__)
    parser.add_argument("--records", type=int, default=2_000_000)
    parser.add_argument("--batch", type=int, default=2, help="global batch size (unpacked)")
    parser.add_argument("--packed-steps", type=int, default=1000)
    args = parser.parse_args()
    lengths = lognormal_lengths(args.records, median=20, sigma=0.7, seed=0, max_length=200)
    folder = args.workdir / f"restore_{args.records}"
    write_token_shards(folder, lengths, num_shards=16, vocab=32_000, seed=0)
    mesh = jax.make_mesh((1,), ("data",))
    rows = []

    unpacked = GrainArrayRecordsDataConfig(
        data_path=folder,
        global_batch_size=args.batch,
        max_target_length=256,
        tokenize_data=False,
        eod_token_id=2,
        truncate_documents=True,
        shuffle_data=True,
        worker_count=0,
    )
    for step in (10, 1_000_000):
        with make_grain_iterator(unpacked, mesh, [0], start_from_step=step) as iterator:
            state = iterator.get_state()
            rate = batches_per_second(iterator)
        rows.append(("unpacked", step, restore_seconds(unpacked, state), step / rate))

    packed = GrainArrayRecordsDataConfig(
        data_path=folder,
        global_batch_size=16,
        max_target_length=2048,
        tokenize_data=False,
        eod_token_id=2,
        grain_packing=True,
        shuffle_data=True,
        worker_count=0,
    )
    with make_grain_iterator(packed, mesh, [0]) as iterator:
        states = {}
        started = time.perf_counter()
        for step in range(args.packed_steps + 1):
            if step in (10, args.packed_steps):
                states[step] = iterator.get_state()
            next(iterator)
        rate = args.packed_steps / (time.perf_counter() - started)
    for step, state in states.items():
        rows.append(("packed", step, restore_seconds(packed, state), step / rate))

    print(f"\nrestore time ({args.records:,} records)")
    print(f"{'pipeline':<10}{'step':>12}{'restore_s':>14}{'replay_would_take_s':>22}")
    for name, step, seconds, replay in rows:
        print(f"{name:<10}{step:>12,}{seconds:>14.3f}{replay:>22.1f}")
    by_pipeline = {}
    for name, _, seconds, _ in rows:
        by_pipeline.setdefault(name, []).append(seconds)
    ratios = {name: round(times[-1] / times[0], 2) for name, times in by_pipeline.items()}
    print(f"restore time ratio, late step / step 10: {ratios}")
    print(
        json.dumps(
            {
                "benchmark": "restore time",
                "rows": [
                    {"pipeline": n, "step": s, "restore_s": round(t, 4), "replay_s": round(r, 1)}
                    for n, s, t, r in rows
                ],
                "late_over_early": ratios,
            }
        )
    )


if __name__ == "__main__":
    main()
