"""One process of a real multihost run (started by the multihost tests, not collected by pytest).

Joins a JAX distributed job over loopback with gloo CPU collectives, builds the iterator from a
JSON config and, by `--mode`:
  run      iterates and writes what this process saw: batch count, global shapes, its rows;
  save     iterates `--save-at` steps, saves the iterator with Orbax, writes `--out`, then keeps
           running until it is killed;
  restore  restores the latest Orbax checkpoint and writes what it saw next, like `run`.
"""

import argparse
import json
import os
import time

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"

import jax
import numpy as np
import orbax.checkpoint as ocp

from xlstm_data import config_from_dict, load_configs, make_grain_iterator
from xlstm_data.checkpoint import DataIteratorRestore, DataIteratorSave
from xlstm_data.telemetry import per_source


def local_rows(array: jax.Array) -> dict[int, list[int]]:
    """Global row index → row values, for the rows held by this process."""
    rows = {}
    for shard in array.addressable_shards:
        begin = shard.index[0].start or 0
        for offset, row in enumerate(np.asarray(shard.data)):
            rows[begin + offset] = row.tolist()
    return rows


def record(iterator, max_steps: int) -> dict:
    seen = {
        "length": None,
        "shapes": [],
        "targets": [],
        "segmentation": [],
        "sources": [],
        "metrics": [],
    }
    seen["length"] = len(iterator)
    for _ in range(max_steps):  # the stream itself, not one epoch window (a `for` loop)
        before = per_source(iterator.counts)
        try:
            batch = next(iterator)
        except StopIteration:
            break
        after = per_source(iterator.counts)
        seen["sources"].append({k: v - before.get(k, 0) for k, v in after.items()})
        seen["metrics"].append(iterator.metrics())
        seen["shapes"].append(list(batch.targets.shape))
        seen["targets"].append(local_rows(batch.targets))
        seen["segmentation"].append(local_rows(batch.targets_segmentation))
    return seen


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--process-id", type=int, required=True)
    parser.add_argument("--num-processes", type=int, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--config", required=True, help="JSON of a config dict, or a YAML path")
    parser.add_argument("--mode", choices=["run", "save", "restore"], default="run")
    parser.add_argument("--max-steps", type=int, default=1000)
    parser.add_argument("--save-at", type=int, default=0)
    parser.add_argument("--checkpoint", default="")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=f"127.0.0.1:{args.port}",
        num_processes=args.num_processes,
        process_id=args.process_id,
        initialization_timeout=60,
        shutdown_timeout_seconds=30,
    )
    mesh = jax.make_mesh((jax.device_count(),), ("data",))
    if args.config.endswith(".yaml"):
        configs, weights = load_configs(args.config)
    else:
        configs, weights = config_from_dict(json.loads(args.config)), None
    iterator = make_grain_iterator(configs, mesh, list(range(args.num_processes)), weights)
    with iterator:
        if args.mode == "save":
            for _ in range(args.save_at):
                next(iterator)
            manager = ocp.CheckpointManager(args.checkpoint)
            manager.save(args.save_at, args=ocp.args.Composite(data=DataIteratorSave(iterator)))
            manager.wait_until_finished()
            with open(args.out, "w") as file:
                json.dump({"saved": args.save_at}, file)
            while True:  # a job that keeps training until it is preempted
                next(iterator)
                time.sleep(0.05)
        if args.mode == "restore":
            manager = ocp.CheckpointManager(args.checkpoint)
            manager.restore(
                manager.latest_step(), args=ocp.args.Composite(data=DataIteratorRestore(iterator))
            )
        seen = record(iterator, args.max_steps)
    with open(args.out, "w") as file:
        json.dump(seen, file)
    jax.distributed.shutdown()


if __name__ == "__main__":
    main()
