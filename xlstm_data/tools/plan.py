"""`xlstm-data plan`: build a config's global plan (every stage's, with a schedule) once,
before the job, so that no host builds one at start-up: the hosts find it by fingerprint and
memory-map it."""

from __future__ import annotations

import os
import time
from typing import Any

from xlstm_data.api import build_reader
from xlstm_data.config import load_configs
from xlstm_data.errors import ConfigError
from xlstm_data.readers.plan.parallel import plan_workers


def build_plans(path: str | os.PathLike, workers: int | str | None = None) -> dict[str, Any]:
    """Builds (or finds) the plans of the config at `path` with `workers` (N local processes,
    "ray" or "ray:ADDRESS"); returns where they are and what they hold."""
    configs, weights = load_configs(path)
    if configs[0].plan != "global":
        raise ConfigError(f"{path} reads with plan={configs[0].plan!r}; set plan: global.")
    started = time.perf_counter()
    runner = plan_workers(workers)
    try:
        reader = build_reader(configs, weights, plan_workers=runner)
    finally:
        runner.close()
    return {
        "config": str(path),
        "seconds": round(time.perf_counter() - started, 3),
        "workers": runner.workers,
        "plans": [
            {
                "stage": part.name,
                "folder": str(part.plan_folder),
                "fingerprint": part.fingerprint,
                "rows": part.report["rows"],
                "documents": part.report["documents"],
                "padding_fraction": part.report["padding_fraction"],
                "realised_token_share": part.report["realised_token_share"],
            }
            for part in reader.parts
        ],
    }
