"""The `xlstm-data` command: `demo` runs the pipeline on embedded data, `prepare` tokenizes
text once into a token cache, `merge` combines token caches; before a launch, `inspect` shows
the rows of a step, `doctor` dry-runs a config for K hosts and `bench` times it on your data."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
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
    from xlstm_data.tools.text_inputs import TextInput

    source = TextInput(tuple(args.inputs), args.format, args.column, args.split)
    common = {
        "documents_per_shard": args.documents_per_shard,
        "batch_size": args.batch_size,
        "eod_token_id": args.eod_token_id,
        "progress": not args.quiet,
    }
    extra = {}
    if args.ray:
        from xlstm_data.tools.ray_prepare import prepare_cache_on_ray

        run = prepare_cache_on_ray(source, args.output, args.tokenizer, address=args.ray, **common)
        metadata, extra = run.metadata, {"nodes": len(run.nodes), "seconds": round(run.seconds, 3)}
    else:
        from xlstm_data.tools.prepare import prepare_cache

        metadata = prepare_cache(
            source, args.output, args.tokenizer, workers=args.workers, **common
        )
    print(json.dumps({"cache": str(args.output)} | metadata.summary() | extra))


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


def _inspect(args: argparse.Namespace) -> None:
    from xlstm_data.tools.inspection import inspect_step, print_step

    result = inspect_step(
        args.config,
        step=args.step,
        host=args.host,
        hosts=args.hosts,
        devices_per_host=args.devices_per_host,
    )
    if args.json:
        print(json.dumps(result))
    else:
        print_step(result)


def _plan(args: argparse.Namespace) -> None:
    from xlstm_data.tools.plan import build_plans

    summary = build_plans(args.config, f"ray:{args.ray}" if args.ray else args.workers)
    for plan in summary["plans"]:
        print(
            f"{plan['stage']}: {plan['rows']:,} rows of {plan['documents']:,} documents, padding "
            f"{plan['padding_fraction']:.2%}, in {plan['folder']}",
            file=sys.stderr,
        )
    print(json.dumps(summary))


def _documents(args: argparse.Namespace) -> None:
    from xlstm_data.tools.inspection import documents_at

    for piece in documents_at(args.config, args.step):
        print(json.dumps(piece))


def _doctor(args: argparse.Namespace) -> None:
    from xlstm_data.tools.doctor import diagnose
    from xlstm_data.tools.report import print_report, write_html

    report = diagnose(
        args.config,
        hosts=args.hosts,
        devices_per_host=args.devices_per_host,
        steps=args.steps,
        progress=not (args.quiet or args.json),
    )
    if args.report:
        write_html(report, args.report)
    if args.json:
        print(json.dumps(report))
    elif not args.quiet:
        print_report(report)
    errors = [c for c in report["checks"] if c["status"] == "error"]
    verdict = "ready" if not errors else f"{len(errors)} error(s): {errors[0]['detail']}"
    print(f"doctor: {args.config} on {args.hosts} hosts: {verdict}", file=sys.stderr)
    if errors:
        sys.exit(1)


def _bench(args: argparse.Namespace) -> None:
    from xlstm_data.tools.bench import bench

    figures = bench(args.config, steps=args.steps, hosts=args.hosts, progress=not args.quiet)
    if not args.json:
        print(
            f"pipeline {figures['pipeline_tokens_per_s'] / 1e6:.2f} M tokens/s, raw read "
            f"{figures['raw_read_tokens_per_s'] / 1e6:.2f} M tokens/s "
            f"({figures['share_of_raw']:.0%} of raw), padding "
            f"{figures['padding_fraction']:.2%}, first batch after {figures['first_batch_s']} s"
        )
    print(json.dumps(figures))


def _add_hosts(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hosts", type=int, default=1, help="data-loading hosts (processes)")
    parser.add_argument(
        "--devices-per-host", type=int, default=1, help="devices along the mesh's data axes"
    )


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
    prepare.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="tokenize with tasks on a Ray cluster: 'auto' (the cluster this machine is in), "
        "an address, or 'local'; the cache folder must be on a file system all nodes share",
    )
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

    inspect = commands.add_parser("inspect", help="the rows of one step, decoded")
    inspect.add_argument("config", type=Path, help="config YAML (one dataset or a mixture)")
    inspect.add_argument("--step", type=int, default=0)
    inspect.add_argument("--host", type=int, default=0, help="which host's rows")
    _add_hosts(inspect)
    inspect.add_argument("--json", action="store_true", help="machine-readable output")
    inspect.set_defaults(run=_inspect)

    plan = commands.add_parser("plan", help="build a config's global plan once, before the job")
    plan.add_argument("config", type=Path, help="config YAML with plan: global")
    builders = plan.add_mutually_exclusive_group()
    builders.add_argument(
        "--workers", default=1, help="local worker processes building the plan (or 'auto')"
    )
    builders.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="build with tasks on a Ray cluster: 'auto' (the cluster this machine is in), an "
        "address, or 'local'; plan_dir must be on a file system all nodes share",
    )
    plan.set_defaults(run=_plan)

    documents = commands.add_parser(
        "documents", help="the pieces behind every row of a step (a global plan), as JSON lines"
    )
    documents.add_argument("config", type=Path, help="config YAML with plan: global")
    documents.add_argument("--step", type=int, required=True, help="the data step")
    documents.set_defaults(run=_documents)

    doctor = commands.add_parser("doctor", help="dry-run a config for K hosts, in one process")
    doctor.add_argument("config", type=Path, help="config YAML (one dataset or a mixture)")
    _add_hosts(doctor)
    doctor.add_argument("--steps", type=int, default=100, help="steps to simulate per host")
    doctor.add_argument("--report", type=Path, help="also write an HTML report with plots")
    doctor.add_argument("--json", action="store_true", help="the report as JSON")
    doctor.add_argument("--quiet", action="store_true", help="no progress bar or tables")
    doctor.set_defaults(run=_doctor)

    bench_ = commands.add_parser("bench", help="throughput on your data against the raw read")
    bench_.add_argument("config", type=Path, help="config YAML (one dataset or a mixture)")
    bench_.add_argument("--steps", type=int, default=200, help="batches to time")
    bench_.add_argument("--hosts", type=int, default=1, help="time host 0's share of K hosts")
    bench_.add_argument("--json", action="store_true", help="only the JSON line")
    bench_.add_argument("--quiet", action="store_true", help="no progress bar")
    bench_.set_defaults(run=_bench)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    from xlstm_data.errors import ConfigError, DataError

    try:
        args.run(args)
    except (ConfigError, DataError) as error:  # the message names the field or file and the fix
        print(f"xlstm-data {args.command}: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
