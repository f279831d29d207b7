"""The `xlstm-data` command: `demo` runs the pipeline on embedded data."""

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
    from xlstm_data.demo import run_demo

    figures = run_demo(args.workdir, steps=args.steps, worker_count=args.workers)
    print(json.dumps(figures))


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
