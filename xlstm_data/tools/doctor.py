"""`xlstm-data doctor`: a dry run of a config for K hosts, in one process, before a real launch.

It checks what a real run would hit first (the config's rules, the batch against hosts and
devices, tokenizers, every source readable, the plan) and then runs every simulated host's
reader for some steps (`tools/simulate.py`), so the figures it reports are those of the real
pipeline on this data: batches per host and whether the hosts agree, padding, split and
truncated documents, each source's realised share against its weight, document lengths,
tokens/s and the step time the pipeline can feed, and the latency of the first batch.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections import Counter
from typing import Any, Literal

import numpy as np
from tqdm import tqdm

from xlstm_data.config import load_configs
from xlstm_data.config.settings import check_weights, loader_settings
from xlstm_data.epoch_window import window_lengths
from xlstm_data.errors import ConfigError, DataError
from xlstm_data.readers.inputs import Input, open_inputs
from xlstm_data.schedule import BatchSchedule
from xlstm_data.tools.simulate import HostRun, host_readers, run_host

Status = Literal["ok", "warning", "error"]

# A realised share further than this from its weight (absolute) is worth a warning.
SHARE_TOLERANCE = 0.05
# Padding above this share of the row slots is worth a warning.
PADDING_WARNING = 0.05


@dataclasses.dataclass
class Check:
    name: str
    status: Status
    detail: str


class Doctor:
    """Collects checks and figures; stops at the first error that leaves nothing to run."""

    def __init__(self, path: str | os.PathLike, hosts: int, devices_per_host: int, steps: int):
        self.path, self.hosts, self.steps = path, hosts, steps
        self.devices_per_host = devices_per_host
        self.checks: list[Check] = []
        self.figures: dict[str, Any] = {}

    def check(self, name: str, status: Status, detail: str) -> None:
        self.checks.append(Check(name, status, detail))

    @property
    def failed(self) -> bool:
        return any(c.status == "error" for c in self.checks)

    def report(self) -> dict[str, Any]:
        return {
            "config": str(self.path),
            "hosts": self.hosts,
            "devices_per_host": self.devices_per_host,
            "ok": not self.failed,
            "checks": [dataclasses.asdict(c) for c in self.checks],
            **self.figures,
        }


def diagnose(
    path: str | os.PathLike,
    *,
    hosts: int,
    devices_per_host: int = 1,
    steps: int = 100,
    progress: bool = True,
) -> dict[str, Any]:
    """The doctor's report of the config at `path` for `hosts` hosts of `devices_per_host`
    devices, from up to `steps` simulated steps per host (JSON-serialisable; `ok` is False
    when a check failed, and that check's detail says what to fix)."""
    doctor = Doctor(path, hosts, devices_per_host, steps)
    try:
        _diagnose(doctor, progress)
    except (ConfigError, DataError, OSError) as error:
        doctor.check("run", "error", str(error))
    return doctor.report()


def _diagnose(doctor: Doctor, progress: bool) -> None:
    configs, weights = load_configs(doctor.path)
    weights = check_weights(weights, len(configs))
    settings = loader_settings(configs)
    doctor.check(
        "config",
        "ok",
        f"{len(configs)} dataset(s), plan={settings.reader!r}, global batch "
        f"{settings.global_batch_size} x {settings.max_target_length} tokens",
    )
    hosts, devices = doctor.hosts, doctor.hosts * doctor.devices_per_host
    for divisor, what in ((hosts, "hosts"), (devices, "devices (hosts x devices per host)")):
        if settings.global_batch_size % divisor:
            doctor.check(
                "batch",
                "error",
                f"global_batch_size = {settings.global_batch_size} is not divisible by the "
                f"{divisor} {what}; use a multiple of {devices} (every device gets whole "
                "rows).",
            )
            return
    BatchSchedule(  # checks every ramp-up batch against hosts and devices
        settings.global_batch_size,
        settings.batch_rampup_factors,
        host_count=hosts,
        data_parallel_size=devices,
    )
    doctor.check(
        "batch",
        "ok",
        f"{settings.global_batch_size // hosts} rows per host, "
        f"{settings.global_batch_size // devices} per device",
    )
    started = time.perf_counter()
    inputs = open_inputs(configs)
    _check_sources(doctor, inputs)
    if doctor.failed:
        return
    readers = host_readers(
        configs, weights, inputs, hosts=hosts, devices_per_host=doctor.devices_per_host
    )
    first = next(readers)
    opened_s = time.perf_counter() - started
    _describe_reader(doctor, first, weights)
    limit = window_lengths(first).step_limit
    steps = doctor.steps if limit is None else min(doctor.steps, limit)
    runs: list[HostRun] = []
    with tqdm(
        total=hosts * steps, desc="simulating hosts", unit="batch", disable=not progress
    ) as bar:
        for reader in [first, *readers]:
            runs.append(run_host(reader, steps=steps, on_batch=lambda *_: bar.update()))
            bar.update(steps - runs[-1].batches)
    agreed = _agreement(doctor, first, runs, steps)
    delivered = [run.as_delivered(agreed, first) for run in runs]
    _figures(doctor, first, inputs, weights, delivered, opened_s)


def _check_sources(doctor: Doctor, inputs: list[Input]) -> None:
    """Every source opens (done) and its first and last records read."""
    for input in inputs:
        source, keys = input.source, sorted({0, len(input.source) - 1})
        try:
            source.__getitems__(keys)
        except Exception as error:  # a reader's own error type: name the record instead
            doctor.check(
                "sources",
                "error",
                f"{source.describe(keys[-1])} cannot be read: {error}. Check the file.",
            )
            return
        tokenizer = input.tokenizer_fingerprint
        doctor.check(
            "sources",
            "ok",
            f"{input.name}: {len(source)} records readable"
            + (f", tokenizer {tokenizer[:12]}" if tokenizer else ""),
        )


def _describe_reader(doctor: Doctor, reader: Any, weights: list[float]) -> None:
    if reader.settings.reader == "global":
        doctor.check(
            "plan",
            "ok",
            f"plan {reader.fingerprint[:16]} in {reader.plan_folder} "
            f"({reader.report['rows']} rows, padding {reader.report['padding_fraction']:.2%})",
        )
        doctor.figures["plan"] = {"fingerprint": reader.fingerprint} | reader.report
    lengths = window_lengths(reader)
    doctor.figures["steps_per_epoch"] = {
        "exact": reader.steps_per_epoch,
        "len": lengths.iterator_length,
        "total_steps": lengths.step_limit,
    }


def _agreement(doctor: Doctor, reader: Any, runs: list[HostRun], steps: int) -> int:
    """Whether the hosts make as many batches; what the real loader does when they do not:
    the batches every host delivers."""
    counts = [run.batches for run in runs]
    if len(set(counts)) == 1:
        agreed = counts[0]
        doctor.check("hosts agree", "ok", f"every host made {agreed} batches (of {steps} asked)")
    elif reader.drop_remainder:
        agreed = min(counts)
        doctor.check(
            "hosts agree",
            "warning",
            f"hosts made {counts} batches: all stop after {agreed} (drop_remainder=True), "
            f"hosts with more drop {sum(counts) - agreed * len(counts)} batches in all",
        )
    else:
        agreed = max(counts)
        doctor.check(
            "hosts agree",
            "warning",
            f"hosts made {counts} batches: hosts that run out first send fully masked "
            f"batches until step {agreed} (drop_remainder=False)",
        )
    doctor.figures["batches"] = {"made_per_host": counts, "agreed": agreed}
    return agreed


def _figures(
    doctor: Doctor,
    reader: Any,
    inputs: list[Input],
    weights: list[float],
    runs: list[HostRun],
    opened_s: float,
) -> None:
    counts: Counter = Counter()
    for run in runs:
        counts.update(run.counts)
    tokens, slots = sum(r.tokens for r in runs), sum(r.slots for r in runs)
    padding = 1 - tokens / slots if slots else math.nan
    doctor.figures["padding_fraction"] = round(padding, 6)
    doctor.check(
        "padding",
        "warning" if padding > PADDING_WARNING else "ok",
        f"{padding:.2%} of the row slots are padding",
    )
    plan = doctor.figures.get("plan", {})
    doctor.figures["documents"] = {
        "pieces_in_rows": counts["documents"],
        "split_documents": counts["split_documents"] or plan.get("split_documents", 0),
        "truncated_documents": counts["truncated_documents"],
        "truncated_tokens": counts["truncated_tokens"] or plan.get("truncated_tokens", 0),
        "invalid_records": counts["invalid_records"],
        "empty_documents": counts["empty_documents"],
    }
    _mixture(doctor, reader, inputs, weights, runs)
    doctor.figures["hosts_detail"] = [
        {
            "host": run.host,
            "batches": run.batches,
            "tokens": run.tokens,
            "padding_fraction": round(run.padding_fraction, 6),
            "tokens_per_s": round(run.steady_rate()),
            "source_tokens": dict(run.source_tokens()),
        }
        for run in runs
    ]
    rates = [run.steady_rate() for run in runs if run.batches > 1]
    slot_rates = [run.steady_rate("slots") for run in runs if run.batches > 1]
    rows, length = reader.batch_shape(0)
    local_slots = rows // reader.host_count * length
    doctor.figures["throughput"] = {
        "tokens_per_s_per_host": round(float(np.median(rates))) if rates else None,
        "step_time_s": round(local_slots / float(np.median(slot_rates)), 6) if slot_rates else None,
        "first_batch_s": round(opened_s + runs[0].first_batch_s, 3),
    }
    doctor.figures["lengths"] = _length_histogram(inputs, runs)
    doctor.figures["per_step"] = _per_step(runs)
    doctor.figures["timeline"] = [
        [round(s.done_s, 4), s.tokens] for s in runs[0].steps
    ]  # host 0: when each batch was ready, its tokens


def _mixture(
    doctor: Doctor, reader: Any, inputs: list[Input], weights: list[float], runs: list[HostRun]
) -> None:
    """Realised token share per source against its weight, per stage of a schedule."""
    stages = reader.stages or [None]
    rows = []
    for stage in stages:
        begin, end = (0, None) if stage is None else (stage.start_step, stage.end_step)
        realised: Counter = Counter()
        for run in runs:
            for step in run.steps[begin:end]:
                realised.update(step.source_tokens)
        total = sum(realised.values())
        if not total:
            continue  # a stage after the simulated steps
        target = np.asarray(weights if stage is None else stage.weights)
        for input, share in zip(inputs, (target / target.sum()).tolist(), strict=True):
            got = realised.get(input.name, 0) / total
            row = {"source": input.name, "target": round(share, 6), "realised": round(got, 6)}
            rows.append(row if stage is None else {"stage": stage.name} | row)
    doctor.figures["mixture"] = rows
    if len(inputs) > 1 and rows:
        worst = max(abs(r["realised"] - r["target"]) for r in rows)
        doctor.check(
            "mixture",
            "warning" if worst > SHARE_TOLERANCE else "ok",
            f"realised token shares within {worst:.1%} of the weights over the simulated steps",
        )


def _length_histogram(inputs: list[Input], runs: list[HostRun]) -> dict[str, Any]:
    """Tokens per document where the sources know them, else per piece in the rows."""
    known = [i.source.document_lengths() for i in inputs]
    if all(k is not None for k in known):
        lengths = np.concatenate([np.asarray(k, np.int64) for k in known])
        what = "tokens per document (all documents of the sources)"
    else:
        lengths = np.concatenate([run.segment_lengths for run in runs])
        what = "tokens per document piece in the simulated rows"
    lengths = lengths[lengths > 0]
    if not len(lengths):
        return {"what": what, "edges": [], "counts": [], "median": None, "p99": None}
    top = max(1, int(np.ceil(np.log2(lengths.max() + 1))))
    edges = (2 ** np.arange(top + 1)).tolist()
    counts, _ = np.histogram(lengths, bins=edges)
    return {
        "what": what,
        "edges": edges,
        "counts": counts.tolist(),
        "median": float(np.median(lengths)),
        "p99": float(np.percentile(lengths, 99)),
        "max": int(lengths.max()),
    }


def _per_step(runs: list[HostRun]) -> list[dict[str, Any]]:
    """Padding and per-source tokens of each global step, summed over the hosts."""
    steps = []
    for index in range(max(run.batches for run in runs)):
        here = [run.steps[index] for run in runs if index < run.batches]
        tokens, slots = sum(s.tokens for s in here), sum(s.slots for s in here)
        sources: Counter = Counter()
        for s in here:
            sources.update(s.source_tokens)
        steps.append(
            {
                "step": index,
                "padding_fraction": round(1 - tokens / slots, 6) if slots else None,
                "source_tokens": dict(sources),
            }
        )
    return steps
