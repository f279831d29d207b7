"""Plans on disk: one folder per fingerprint of the inputs, built once, memory-mapped after.

The fingerprint covers everything a plan depends on (each source's files, record counts,
tokenizer and a hash of its document lengths; weights; row length; seed; epoch size; window),
so a plan is rebuilt exactly when one of them changes. A missing plan is built by the first
host that needs it while the others wait (`lock.py`); it is written to a temporary folder and
renamed into place, so a crash never leaves a half-written plan behind. `xlstm-data plan
CONFIG.yaml` builds it before a job.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xlstm_data.readers.plan.build import REPORT_FILE, Plan, build_plan
from xlstm_data.readers.plan.lengths import DocumentLengths
from xlstm_data.readers.plan.lock import DEFAULT_WAIT_SECONDS, build_once
from xlstm_data.readers.plan.parallel import Workers

LOGGER = logging.getLogger(__name__)

PLAN_FORMAT_VERSION = 6


def plan_fingerprint(length_digests: Sequence[str], settings: dict[str, Any]) -> str:
    """sha256 over the settings (JSON) and the digest of every source's document lengths."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for source_digest in length_digests:
        digest.update(source_digest.encode())
    return digest.hexdigest()


def plan_for(
    lengths: DocumentLengths,
    weights: Sequence[float],
    *,
    plan_dir: Path,
    settings: dict[str, Any],
    row_length: int,
    seed: int,
    window_rows: int,
    plan_tokens: int | None,
    algorithm: str,
    shuffle: bool,
    truncate: Sequence[bool],
    stage: dict[str, Any] | None = None,
    wait_seconds: float = DEFAULT_WAIT_SECONDS,
    workers: Workers | int | str | None = None,
) -> tuple[Plan, str, Path]:
    """The plan of these inputs, its fingerprint and its folder: loaded when saved before, else
    built, saved and reported. `stage` (a schedule's stage: its `start` stream positions,
    exact `rows`, and the fingerprint of the stage before) makes it the plan of that stage.
    A missing plan is built by one process (its tasks run by `workers`); the others wait for
    it (`lock.build_once`)."""
    all_settings = (
        settings
        | ({"stage": stage} if stage is not None else {})
        | {
            "format": PLAN_FORMAT_VERSION,
            "weights": list(weights),
            "row_length": row_length,
            "seed": seed,
            "window_rows": window_rows,
            "plan_tokens": plan_tokens,
            "packing": algorithm,
            "shuffle": shuffle,
            "truncate": list(truncate),
        }
    )
    fingerprint = plan_fingerprint(lengths.digests, all_settings)
    folder = Path(plan_dir) / fingerprint[:24]

    def build() -> None:
        plan = build_plan(
            lengths,
            weights,
            folder,
            row_length=row_length,
            seed=seed,
            window_rows=window_rows,
            plan_tokens=plan_tokens,
            algorithm=algorithm,
            shuffle=shuffle,
            truncate=truncate,
            start=None if stage is None else stage["start"],
            rows=None if stage is None else stage["rows"],
            workers=workers,
            report={"fingerprint": fingerprint},
        )
        LOGGER.info("Built a global plan in %s: %s", folder, _summary(plan.report))

    if not build_once(folder, (folder / REPORT_FILE).is_file, build, wait_seconds=wait_seconds):
        LOGGER.info("Using the plan in %s.", folder)
    return Plan.open(folder), fingerprint, folder


def _summary(report: dict) -> str:
    return (
        f"{report['documents']:,} documents, {report['epoch_tokens']:,} tokens, "
        f"{report['rows']:,} rows, padding {report['padding_fraction']:.3%}, "
        f"{report['split_documents']:,} split documents; token share per source "
        f"{report['realised_token_share']} for weights {report['weights']} (largest "
        f"deviation {report['largest_share_deviation']:.4%}); epochs per source "
        f"{report['epochs_per_source']}"
    )
