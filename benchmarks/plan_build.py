"""Global plans: build time and peak memory by documents and workers, steady-state tokens/s
of plan batches next to the online packing path on the same token cache, and the start of a
host on a stored plan (`--open-documents`: time to the first batch, peak RSS).

    .venv/bin/python benchmarks/plan_build.py [--documents 1000000 10000000] [--workers 1 2]
        [--repeats 3]

Build variants (each in its own process): `build:N:W` builds the plan of N documents
(log-normal lengths, median 300, three sources weighted 0.5/0.3/0.2, read from memory-mapped
length files written once under --workdir) with W local worker processes. Its peak RSS is
sampled over the process and its workers: `peak_rss_mb` (the driver), `workers_rss_mb` (all
workers together, at their peak), `anonymous_mb` (the driver's memory that is not pages of
mapped files). Read variants on one pre-tokenized token cache (16 x 2048 batches, 1 device):
  plan_global     make_grain_iterator with plan="global"
  online_packing  make_grain_iterator with grain_packing=True (the online path)
"""

from __future__ import annotations

import json
import shutil
import sys
import threading
import time

import numpy as np
from harness import (
    LENGTH_MIXES,
    add_length_mix,
    lognormal_lengths,
    measure_loader,
    peak_rss_mb,
    run_variants,
    variant_args,
    variant_parser,
)

SHARES = (0.5, 0.3, 0.2)


def length_files(args, documents: int) -> list[np.ndarray]:
    """The three sources' document lengths as `.npy` files (written once, 10^7 at a time),
    memory-mapped."""
    from numpy.lib.format import open_memmap

    median, sigma, _ = LENGTH_MIXES[args.length_mix]
    folder = args.workdir / f"plan_lengths_{args.length_mix}_{documents}"
    arrays = []
    for index, share in enumerate(SHARES):
        path = folder / f"source{index}.npy"
        if not path.is_file():
            folder.mkdir(parents=True, exist_ok=True)
            size = int(share * documents)
            array = open_memmap(path.with_suffix(".partial"), "w+", np.int64, (size,))
            for begin in range(0, size, 10**7):
                count = min(10**7, size - begin)
                seed = index * 10**4 + begin // 10**7
                array[begin : begin + count] = lognormal_lengths(
                    count, median=median, sigma=sigma, seed=seed
                )
            array.flush()
            del array
            path.with_suffix(".partial").rename(path)
        arrays.append(np.load(path, mmap_mode="r"))
    return arrays


class TreeMemory:
    """Samples the RSS of this process and of its descendants (the workers) every 50 ms."""

    def __init__(self):
        import psutil

        self._process, self._gone = psutil.Process(), psutil.Error
        self.workers_mb = 0.0
        self.anonymous_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            try:
                workers = sum(c.memory_info().rss for c in self._process.children(recursive=True))
                info = self._process.memory_full_info()
            except self._gone:  # a worker ended between listing and reading
                continue
            self.workers_mb = max(self.workers_mb, workers / 2**20)
            self.anonymous_mb = max(self.anonymous_mb, (info.rss - info.shared) / 2**20)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def run_build(args, value: str) -> dict:
    from xlstm_data.readers.plan.build import build_plan

    documents, workers = (int(v) for v in value.split(":"))
    lengths = length_files(args, documents)
    folder = args.workdir / f"plan_build_{documents}_{workers}"
    shutil.rmtree(folder, ignore_errors=True)
    memory = TreeMemory()
    started = time.perf_counter()
    plan = build_plan(lengths, list(SHARES), folder, row_length=2048, seed=0,
                      window_rows=65_536, progress=False, workers=workers)  # fmt: skip
    seconds = time.perf_counter() - started
    memory.stop()
    figures = {
        "build_s": round(seconds, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "workers_rss_mb": round(memory.workers_mb, 1),
        "anonymous_mb": round(memory.anonymous_mb, 1),
        "rows": plan.num_rows,
        "padding_fraction": plan.report["padding_fraction"],
        "largest_share_deviation": round(plan.report["largest_share_deviation"], 6),
    }
    shutil.rmtree(folder)
    return figures


def token_cache(args):
    """A token cache of generated token documents (written once under --workdir)."""
    from xlstm_data.sources.token_cache_files import CacheMetadata, ShardInfo, write_shard

    folder = args.workdir / f"plan_cache_{args.length_mix}_{args.read_documents}"
    if (folder / "metadata.json").is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    median, sigma, _ = LENGTH_MIXES[args.length_mix]
    lengths = lognormal_lengths(args.read_documents, median=median, sigma=sigma, seed=1)
    rng = np.random.default_rng(1)
    tokens = rng.integers(3, 32_000, int(lengths.sum())).astype(np.uint16)
    documents = np.split(tokens, np.cumsum(lengths)[:-1])
    metadata = CacheMetadata(
        tokenizer_path="generated",
        tokenizer_fingerprint="generated",
        vocab_size=32_000,
        dtype="uint16",
        eod_token_id=2,
        source={"generated": args.read_documents},
        documents_per_shard=5_000,
    )
    shards: list[ShardInfo] = []
    for index, begin in enumerate(range(0, len(documents), 5_000)):
        shards.append(write_shard(folder, index, documents[begin : begin + 5_000]))
    metadata.shards, metadata.complete = shards, True
    metadata.write(folder)
    return folder


def run_read(args, plan: str):
    import jax

    from xlstm_data import TokenCacheDataConfig, make_grain_iterator

    folder = token_cache(args)
    started = time.perf_counter()
    config = TokenCacheDataConfig(
        cache_path=folder,
        global_batch_size=16,
        max_target_length=2048,
        shuffle_data=True,
        worker_count=0,
        plan=plan,
        grain_packing=True,
        **({"plan_dir": str(args.workdir / "plans")} if plan == "global" else {}),
    )
    iterator = make_grain_iterator(config, jax.make_mesh((1,), ("data",)), [0])

    with iterator:
        return measure_loader(iterator, args, started).figures()


def short_documents(args, documents: int):
    """A memmap token file of `documents` documents of 1 to 8 tokens, each ending in EOD (so
    10^8 documents fit in about 1 GB), written once under --workdir."""
    folder = args.workdir / f"open_{documents}"
    path = folder / "tokens.npy"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(2)
        lengths = rng.integers(1, 9, documents)
        tokens = rng.integers(3, 32_000, int(lengths.sum())).astype(np.uint16)
        tokens[np.cumsum(lengths) - 1] = 2  # EOD closes every document
        np.save(path, tokens)
    return path


def run_open(args, documents: int) -> dict:
    """A host's start on a stored plan: make_grain_iterator and its first batch (the plan of
    these documents built by an earlier process)."""
    import jax

    from xlstm_data import MemmapDataConfig, make_grain_iterator

    path = short_documents(args, documents)
    started = time.perf_counter()
    config = MemmapDataConfig(data_files=str(path), records="documents", eod_token_id=2,
                              global_batch_size=16, max_target_length=2048, plan="global",
                              shuffle_data=True, worker_count=0,
                              plan_dir=str(path.parent / "plans"))  # fmt: skip
    with make_grain_iterator(config, jax.make_mesh((1,), ("data",)), [0]) as iterator:
        next(iterator)
        first_batch_s = time.perf_counter() - started
    return {"first_batch_s": round(first_batch_s, 3), "peak_rss_mb": round(peak_rss_mb(), 1)}


def main() -> None:
    parser = variant_parser(__doc__)
    parser.add_argument("--documents", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--read-documents", type=int, default=20_000)
    add_length_mix(parser)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument(
        "--open-documents",
        type=int,
        nargs="+",
        default=[1_000_000],
        help="documents of the stored plans whose opening is timed",
    )
    parser.add_argument("--skip-reads", action="store_true", help="only the build variants")
    args = parser.parse_args()
    if args.variant:
        kind, value = args.variant.split(":", 1)
        if kind == "build":
            figures = run_build(args, value)
        elif kind in ("open", "prebuild"):
            figures = run_open(args, int(value))
        else:
            figures = run_read(args, value)
        print(json.dumps(figures))
        return
    passed = variant_args(sys.argv[1:])
    variants = [f"build:{n}:{w}" for n in args.documents for w in args.workers]
    builds = run_variants(__file__, variants, passed, repeats=args.repeats)
    print(f"\nplan build (median of {args.repeats})")
    print(f"{'documents':>12}{'workers':>8}{'build_s':>10}{'driver_mb':>11}{'anon_mb':>9}"
          f"{'workers_mb':>12}{'rows':>12}{'padding':>10}")  # fmt: skip
    for name, figures in builds.items():
        _, documents, workers = name.split(":")
        print(
            f"{int(documents):>12,}{workers:>8}{figures['build_s']:>10}"
            f"{figures['peak_rss_mb']:>11}{figures['anonymous_mb']:>9}"
            f"{figures['workers_rss_mb']:>12}{int(figures['rows']):>12,}"
            f"{figures['padding_fraction']:>10.4%}"
        )
    if args.skip_reads:
        print(json.dumps({"benchmark": "plan build", "build": builds}))
        return
    token_cache(args)
    reads = run_variants(__file__, ["read:global", "read:online"], passed, repeats=args.repeats)
    print(f"\nsteady state on a token cache (median of {args.repeats})")
    for name, figures in reads.items():
        first, padding = figures["time_to_first_batch_s"], figures["padding_fraction"]
        print(
            f"{name:<14}{figures['tokens_per_s']:>14,.0f} tokens/s  first batch {first:.2f} s"
            f"  padding {padding:.2%}"
        )
    ratio = reads["read:global"]["tokens_per_s"] / reads["read:online"]["tokens_per_s"]
    print(f"tokens/s ratio global plan / online packing: {ratio:.2f}x")
    run_variants(__file__, [f"prebuild:{n}" for n in args.open_documents], passed, repeats=1)
    opens = run_variants(
        __file__, [f"open:{n}" for n in args.open_documents], passed, repeats=args.repeats
    )
    print(f"\nopening a stored plan: make_grain_iterator + first batch (median of {args.repeats})")
    for name, figures in opens.items():
        print(
            f"{int(name.split(':')[1]):>14,} documents  first batch {figures['first_batch_s']} s"
            f"  peak RSS {figures['peak_rss_mb']} MB"
        )
    print(
        json.dumps(
            {
                "benchmark": "plan build and read",
                "build": builds,
                "read": reads,
                "open": opens,
                "ratio_tokens_per_s": round(ratio, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
