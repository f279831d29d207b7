"""Shared benchmark plumbing: isolated runs, timing, peak memory, the table and the JSON line.

Every variant runs in a fresh Python process (`python <script> --variant NAME ...`), so its
peak RSS and start-up time are its own and variants cannot warm each other's caches.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class Measurement:
    """What one variant did: real tokens, batches, row slots, wall times, peak RSS; for a
    global plan, the tokens it read per token it used."""

    tokens: int
    batches: int
    slots: int
    first_batch_s: float
    steady_s: float
    peak_rss_mb: float
    read_per_used_token: float | None = None

    def figures(self) -> dict[str, float]:
        figures = {
            "tokens_per_s": round(self.tokens / self.steady_s),
            "batches_per_s": round(self.batches / self.steady_s, 2),
            "time_to_first_batch_s": round(self.first_batch_s, 3),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "padding_fraction": round(1 - self.tokens / self.slots, 4) if self.slots else 0.0,
        }
        if self.read_per_used_token is not None:
            figures["read_per_used_token"] = round(self.read_per_used_token, 3)
        return figures


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(
    batches: Iterator,
    count_tokens: Callable[[object], tuple[int, int]],
    *,
    warmup: int,
    steps: int,
    started: float,
    min_seconds: float = 0.0,
) -> Measurement:
    """Times `steps` batches after `warmup` (enough to drain what the pipeline read ahead while
    starting, so the figure is the steady rate), and more until `min_seconds` have passed (so
    that a fast pipeline is timed over many read blocks, not the few it read ahead);
    `count_tokens(batch)` gives (real tokens, slots)."""
    first = next(batches)
    first_batch_s = time.perf_counter() - started
    for _ in range(warmup):
        next(batches)
    tokens = slots = done = 0
    begin = time.perf_counter()
    while done < steps or time.perf_counter() - begin < min_seconds:
        real, total = count_tokens(next(batches))
        tokens, slots, done = tokens + real, slots + total, done + 1
    steady_s = time.perf_counter() - begin
    del first
    return Measurement(tokens, done, slots, first_batch_s, steady_s, peak_rss_mb())


def measure_loader(iterator: Iterator, args: argparse.Namespace, started: float) -> Measurement:
    """`measure` of an xlstm-data iterator as every benchmark times one: half of `--steps` to
    warm up, then `--steps` (and at least `--seconds`)."""
    return measure(
        iterator,
        count_llm_batch,
        warmup=args.steps // 2,
        steps=args.steps,
        started=started,
        min_seconds=args.seconds,
    )


def count_llm_batch(batch) -> tuple[int, int]:
    """(real tokens, row slots) of an `LLMBatch`."""
    segmentation = np.asarray(batch.targets_segmentation)
    return np.count_nonzero(segmentation), segmentation.size


def count_grain_batch(batch) -> tuple[int, int]:
    """(real tokens, row slots) of a batch from Grain's packers."""
    return np.count_nonzero(batch["targets_segment_ids"]), batch["targets"].size


def grain_firstfit_batches(dataset, *, length: int, batch: int) -> Iterator:
    """The baseline's end: Grain's FirstFitPackIterDataset with one batch of bins, batched."""
    import grain

    packed = grain.experimental.FirstFitPackIterDataset(
        dataset, length_struct={"targets": length}, num_packing_bins=batch, shuffle_bins=False
    )
    return iter(packed.batch(batch))


# The three length mixes every throughput benchmark can run (log-normal): median tokens, spread,
# and how many documents make about 10^7 tokens. Text benchmarks turn tokens into words at
# about 1.5 tokens per word of the generated pseudo-English.
LENGTH_MIXES = {"short": (30, 1.0, 300_000), "web": (300, 1.0, 30_000), "long": (5000, 1.0, 2_000)}
TOKENS_PER_WORD = 1.5


def add_length_mix(parser: argparse.ArgumentParser, default: str = "web") -> None:
    """--length-mix short|web|long: chat lines and captions, web pages, books and papers."""
    parser.add_argument(
        "--length-mix",
        choices=sorted(LENGTH_MIXES),
        default=default,
        help="document lengths: short (median 30 tokens), web (300), long (5,000)",
    )


def lognormal_lengths(
    count: int, *, median: int, sigma: float, seed: int, max_length: int = 50_000
) -> np.ndarray:
    """Document lengths with many short and a few very long documents."""
    rng = np.random.default_rng(seed)
    return np.clip(rng.lognormal(np.log(median), sigma, count), 1, max_length).astype(np.int64)


def write_token_shards(
    folder: Path, lengths: np.ndarray, *, num_shards: int, vocab: int, seed: int
) -> int:
    """Pre-tokenized int32 documents of the given lengths as ArrayRecord shards; returns tokens."""
    if (folder / "done").is_file():
        return int((folder / "done").read_text())
    # Imported here: the writer brings Grain, which would count in every variant's peak RSS.
    from xlstm_data.sources.array_record import write_array_record_shards

    rng = np.random.default_rng(seed)
    tokens = rng.integers(3, vocab, size=int(lengths.sum()), dtype=np.int32)
    ends = np.cumsum(lengths)
    records = [tokens[e - n : e].tobytes() for e, n in zip(ends, lengths, strict=True)]
    write_array_record_shards(records, folder / "train", num_shards=num_shards)
    (folder / "done").write_text(str(len(tokens)))
    return len(tokens)


def run_variants(
    script: str, variants: list[str], args: list[str], *, repeats: int = 1
) -> dict[str, dict]:
    """Runs each variant of `script` `repeats` times, each in its own process, and returns the
    median of every figure. The runs go in rounds (every variant once, then again), so that a
    machine whose speed drifts over minutes slows every variant alike and the ratios hold."""
    runs: dict[str, list[dict]] = {variant: [] for variant in variants}
    for _ in range(repeats):
        for variant in variants:
            output = subprocess.run(
                [sys.executable, script, "--variant", variant, *args],
                capture_output=True,
                text=True,
                check=False,
                env={**os.environ, "PYTHONWARNINGS": "ignore"},
            )
            if output.returncode != 0:
                raise RuntimeError(f"variant {variant} failed:\n{output.stderr[-4000:]}")
            runs[variant].append(json.loads(output.stdout.strip().splitlines()[-1]))
    return {
        variant: {key: float(np.median([run[key] for run in done])) for key in done[0]}
        for variant, done in runs.items()
    }


def run_or_compare(script: str, args, variants: dict[str, Callable], *data) -> dict | None:
    """In a variant process (`--variant NAME`): runs that variant on `data`, prints its figures
    and returns None. Otherwise: runs every variant in its own process and returns the medians."""
    if args.variant:
        print(json.dumps(variants[args.variant](args, *data).figures()))
        return None
    return run_variants(script, list(variants), variant_args(sys.argv[1:]), repeats=args.repeats)


def report(
    title: str,
    results: dict[str, dict],
    *,
    ours: str,
    baseline: str,
    extra: dict | None = None,
    notes: Sequence[str] = (),
) -> None:
    """Prints the table (one row per variant, ratio ours/baseline), `notes`, and one JSON line
    (always the last line)."""
    keys = [
        "tokens_per_s",
        "batches_per_s",
        "time_to_first_batch_s",
        "peak_rss_mb",
        "padding_fraction",
    ]
    print(f"\n{title}")
    print(f"{'variant':<28}" + "".join(f"{k:>24}" for k in keys))
    for name, figures in results.items():
        print(f"{name:<28}" + "".join(f"{figures.get(k, float('nan')):>24,}" for k in keys))
    ratio = results[ours]["tokens_per_s"] / results[baseline]["tokens_per_s"]
    print(f"tokens/s ratio {ours}/{baseline}: {ratio:.2f}x")
    for note in notes:
        print(note)
    line = {"benchmark": title, "results": results, "ratio_tokens_per_s": round(ratio, 3)}
    print(json.dumps(line | (extra or {})))


def variant_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path("/tmp/xlstm_data_bench"),
        help="where generated data is kept between runs",
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per variant (median)")
    parser.add_argument(
        "--seconds",
        type=float,
        default=4.0,
        help="time each variant for at least this long (over many read blocks)",
    )
    return parser


def variant_args(argv: list[str]) -> list[str]:
    """The command line minus --repeats, passed on to each variant process."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--repeats":
            skip = True
        elif not arg.startswith("--repeats="):
            out.append(arg)
    return out
