"""The `xlstm-data` command: `demo` runs the pipeline on embedded data, `prepare` tokenizes
text once into a token cache, `merge` combines token caches."""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path


def _demo(args: argparse.Namespace) -> None:
    # Fake devices must be configured before JAX is imported.
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count=8".strip()
    from xlstm_data.tools.demo import run_demo

    figures = run_demo(args.workdir, steps=args.steps, worker_count=args.workers)
    print(json.dumps(figures))


def _prepare(args: argparse.Namespace) -> None:
    from xlstm_data.tools.prepare import prepare_cache
    from xlstm_data.tools.text_inputs import TextInput

    metadata = prepare_cache(
        TextInput(tuple(args.inputs), args.format, args.column, args.split),
        args.output,
        args.tokenizer,
        documents_per_shard=args.documents_per_shard,
        workers=args.workers,
        batch_size=args.batch_size,
        eod_token_id=args.eod_token_id,
        progress=not args.quiet,
    )
    print(json.dumps({"cache": str(args.output)} | metadata.summary()))


def _merge(args: argparse.Namespace) -> None:
    from xlstm_data.tools.merge import merge_caches

    metadata = merge_caches(
        args.caches,
        args.output,
        equalize=args.equalize,
        seed=args.seed,
        documents_per_shard=args.documents_per_shard,
        progress=not args.quiet,
    )
    print(json.dumps({"cache": str(args.output)} | metadata.summary()))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xlstm-data", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run the pipeline on embedded demo data")
    demo.add_argument(
        "--workdir",
        type=Path,
        default=Path(".xlstm_data_demo"),
        help="where the demo data is built (once)",
    )
    demo.add_argument("--steps", type=int, default=200, help="batches to time")
    demo.add_argument(
        "--workers", type=int, default=0, help="Grain worker processes (0: threads in this process)"
    )
    demo.set_defaults(run=_demo)

    prepare = commands.add_parser("prepare", help="tokenize text once into a token cache")
    prepare.add_argument("inputs", nargs="+", help="input files, folders or globs")
    prepare.add_argument("--output", "-o", type=Path, required=True, help="cache folder")
    prepare.add_argument(
        "--tokenizer", required=True, help="sentencepiece .model, HF tokenizer.json or folder"
    )
    prepare.add_argument(
        "--format",
        default="auto",
        help="text (a document per file), lines, csv, jsonl, parquet, hf (a save_to_disk "
        "folder), arrayrecord; auto (default) goes by the suffix",
    )
    prepare.add_argument("--column", default="text", help="text column (csv, jsonl, parquet, hf)")
    prepare.add_argument("--split", default="train", help="split of an hf folder")
    prepare.add_argument("--documents-per-shard", type=int, default=20_000)
    prepare.add_argument("--workers", type=int, default=2, help="tokenizing processes")
    prepare.add_argument("--batch-size", type=int, default=256, help="texts per encode call")
    prepare.add_argument("--eod-token-id", type=int, help="default: the tokenizer's EOS id")
    prepare.add_argument("--quiet", action="store_true", help="no progress bar")
    prepare.set_defaults(run=_prepare)

    merge = commands.add_parser("merge", help="combine token caches of one tokenizer")
    merge.add_argument("caches", nargs="+", type=Path, help="cache folders, in order")
    merge.add_argument("--output", "-o", type=Path, required=True, help="new cache folder")
    merge.add_argument(
        "--equalize",
        action="store_true",
        help="take as many documents from each cache as the smallest holds",
    )
    merge.add_argument("--seed", type=int, default=0, help="seed of the equalising sample")
    merge.add_argument("--documents-per-shard", type=int, help="default: the first cache's")
    merge.add_argument("--quiet", action="store_true", help="no progress bar")
    merge.set_defaults(run=_merge)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    args.run(args)


if __name__ == "__main__":
    main()
