"""`prepare` on a local two-node Ray cluster against the local `prepare`, same input, tokens/s.

    .venv/bin/python benchmarks/ray_prepare.py [--documents 20000] [--files 8]

The input is generated pseudo-English in JSON Lines files, tokenized with a trained
sentencepiece model. Variants, each in its own process:
  local      `prepare_cache` with --workers processes (the single-machine command)
  ray        `prepare_cache_on_ray` on a Ray cluster of two nodes on 127.0.0.1 with
             --cpus-per-node CPUs each, started by the variant (start-up not timed)
Both write a cache of the same shards; the figure is tokens/s from the first task to the
finished metadata.json, and the caches are compared byte for byte.
"""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import sys
import time
from pathlib import Path

from harness import report, run_variants, variant_args, variant_parser


def build_data(args) -> Path:
    from xlstm_data.tools.corpus import generate_documents, train_sentencepiece

    folder = args.workdir / f"ray_prepare_{args.documents}_{args.files}"
    if (folder / "done").is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    documents = generate_documents(args.documents, seed=0, median_words=200)
    train_sentencepiece(documents[:2000], folder / "sp", vocab_size=2000)
    per_file = -(-len(documents) // args.files)
    for i in range(args.files):
        part = documents[i * per_file : (i + 1) * per_file]
        (folder / f"part{i:03d}.jsonl").write_text(
            "".join(json.dumps({"text": d}) + "\n" for d in part)
        )
    (folder / "done").touch()
    return folder


def source_of(folder: Path):
    from xlstm_data.tools.text_inputs import TextInput

    return TextInput((str(folder / "part*.jsonl"),))


def run_local(args, folder: Path) -> dict:
    from xlstm_data.tools.prepare import prepare_cache

    output = folder / "local_cache"
    shutil.rmtree(output, ignore_errors=True)
    started = time.perf_counter()
    metadata = prepare_cache(source_of(folder), output, str(folder / "sp.model"),
                             documents_per_shard=args.documents_per_shard,
                             workers=args.workers, progress=False)  # fmt: skip
    seconds = time.perf_counter() - started
    return {"tokens_per_s": round(metadata.tokens / seconds), "seconds": round(seconds, 3)}


def run_ray(args, folder: Path) -> dict:
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # nodes on 127.0.0.1
    import ray
    from ray.cluster_utils import Cluster

    from xlstm_data.tools.ray_prepare import prepare_cache_on_ray

    node = {"num_cpus": args.cpus_per_node, "object_store_memory": 100 << 20,
            "node_ip_address": "127.0.0.1", "include_dashboard": False}  # fmt: skip
    cluster = Cluster(initialize_head=True, head_node_args=node)
    try:
        cluster.add_node(**node)
        ray.init(address=cluster.address, log_to_driver=False)
        output = folder / "ray_cache"
        shutil.rmtree(output, ignore_errors=True)
        run = prepare_cache_on_ray(
            source_of(folder),
            output,
            str(folder / "sp.model"),
            documents_per_shard=args.documents_per_shard,
            progress=False,
        )
    finally:
        ray.shutdown()
        cluster.shutdown()
    return {
        "tokens_per_s": round(run.metadata.tokens / run.seconds),
        "seconds": round(run.seconds, 3),
        "nodes": len(run.nodes),
    }


VARIANTS = {"local": run_local, "ray": run_ray}


def main() -> None:
    parser = variant_parser(__doc__)
    parser.add_argument("--documents", type=int, default=20_000)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--documents-per-shard", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2, help="local prepare's processes")
    parser.add_argument("--cpus-per-node", type=int, default=1)
    args = parser.parse_args()
    folder = build_data(args)
    if args.variant:
        print(json.dumps(VARIANTS[args.variant](args, folder)))
        return
    results = run_variants(__file__, list(VARIANTS), variant_args(sys.argv[1:]),
                           repeats=args.repeats)  # fmt: skip
    names = sorted(os.listdir(folder / "local_cache"))
    identical = names == sorted(os.listdir(folder / "ray_cache")) and all(
        filecmp.cmp(folder / "local_cache" / n, folder / "ray_cache" / n, shallow=False)
        for n in names
    )
    report(
        "xlstm-data prepare: Ray cluster vs one machine",
        results,
        ours="ray",
        baseline="local",
        extra={"identical": identical},
        notes=[
            f"{args.documents} documents in {args.files} JSON Lines files; local prepare with "
            f"{args.workers} workers; Ray: 2 nodes x {args.cpus_per_node} CPUs on this machine",
            f"caches byte-identical: {identical}",
        ],
    )


if __name__ == "__main__":
    main()
