"""Peak memory of the memmap source: a 200 MB and a 4 GB token file, the same number of batches.

    .venv/bin/python benchmarks/memmap_memory.py [--steps 1000] [--workdir /tmp/xlstm_data_bench]

Variants (each in its own process; shuffled windows of 2049 uint16 tokens, 16 rows a batch,
the same pipeline through `preprocess_dataset`, no worker processes):
  small_200mb      MemmapDataConfig's source on a 200 MB .bin file
  large_4gb        the same on a 4 GB .bin file (written sparsely: a pattern every 64 MB)
  np_memmap_4gb    reference: the same windows of the 4 GB file read through np.memmap, which
                   the source does not do; its resident set grows with the pages it has read
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
from harness import measure, peak_rss_mb, report, run_variants, variant_args, variant_parser

SIZES = {"small_200mb": 200_000_000, "large_4gb": 4_000_000_000}
VOCAB = 50_257
_PATTERN_TOKENS = 1 << 19  # 1 MB of tokens
_PATTERN_EVERY = 64 << 20  # bytes


def token_file(workdir: Path, size: int) -> Path:
    """A uint16 token file of `size` bytes, written once: densely up to 256 MB, else sparsely."""
    path = workdir / f"tokens_{size}.bin"
    if path.is_file() and path.stat().st_size == size:
        return path
    workdir.mkdir(parents=True, exist_ok=True)
    pattern = np.random.default_rng(0).integers(3, VOCAB, _PATTERN_TOKENS, dtype=np.uint16)
    step = pattern.nbytes if size <= 256 << 20 else _PATTERN_EVERY
    with open(path, "wb") as out:
        out.truncate(size)  # the rest reads as token 0
        for offset in range(0, size, step):
            out.seek(offset)
            out.write(pattern.tobytes()[: size - offset])
    return path


def mapped_windows_source(source):
    """The windows of `source`, read through np.memmap instead of positioned reads."""
    from xlstm_data.sources.memmap import MemmapWindows

    class MappedWindows(MemmapWindows):
        def _read(self, file_index, starts, lengths):
            tokens = self.maps.setdefault(
                file_index, np.memmap(self.files[file_index], dtype=np.uint16, mode="r")
            )
            return np.concatenate([tokens[s : s + n] for s, n in zip(starts, lengths, strict=True)])

    mapped = MappedWindows.__new__(MappedWindows)
    mapped.__dict__.update(source.__getstate__() | {"maps": {}})
    return mapped


def run(args, variant: str):
    from xlstm_data import MemmapDataConfig, open_source, preprocess_dataset

    started = time.perf_counter()
    size = SIZES["large_4gb" if variant == "np_memmap_4gb" else variant]
    config = MemmapDataConfig(
        data_files=str(token_file(args.workdir, size)),
        global_batch_size=args.batch,
        max_target_length=args.length,
        shuffle_data=True,
        vocab_size=VOCAB,
        worker_count=0,
    )
    source = open_source(config)
    if variant == "np_memmap_4gb":
        source = mapped_windows_source(source)
    dataset, _ = preprocess_dataset(
        0,
        1,
        source,
        "tokens",
        False,
        args.batch,
        args.length,
        True,
        config.data_shuffle_seed,
        add_bos=False,
        add_eos=False,
        add_eod=False,
        worker_count=0,
        shift_target="targets",
        vocab_size=VOCAB,
    )

    from xlstm_data.stages.shift import field

    def count(element) -> tuple[int, int]:
        segmentation = field(element[0], "targets_segmentation")
        return int((segmentation > 0).sum()), segmentation.size

    return measure(
        iter(dataset), count, warmup=5, steps=args.steps, started=started, min_seconds=args.seconds
    )


def main() -> None:
    parser = variant_parser(__doc__)
    parser.add_argument("--length", type=int, default=2048, help="max_target_length")
    parser.add_argument("--batch", type=int, default=16, help="global batch size")
    parser.add_argument("--steps", type=int, default=1000)
    args = parser.parse_args()
    if args.variant:
        measurement = run(args, args.variant)
        print(json.dumps(measurement.figures() | {"peak_rss_mb": round(peak_rss_mb(), 1)}))
        return
    for size in SIZES.values():
        token_file(args.workdir, size)
    variants = ["small_200mb", "large_4gb", "np_memmap_4gb"]
    results = run_variants(__file__, variants, variant_args(sys.argv[1:]), repeats=args.repeats)
    small, large = (results[v]["peak_rss_mb"] for v in ("small_200mb", "large_4gb"))
    ratio = large / small
    report(
        f"memmap source: peak RSS, 200 MB vs 4 GB file (median of {args.repeats})",
        results,
        ours="large_4gb",
        baseline="small_200mb",
        extra={"peak_rss_ratio_4gb_to_200mb": round(ratio, 3), "flat_within_10pct": ratio < 1.1},
        notes=[
            f"peak RSS 4 GB / 200 MB file: {ratio:.3f} ({'flat' if ratio < 1.1 else 'NOT flat'})."
        ],
    )


if __name__ == "__main__":
    main()
