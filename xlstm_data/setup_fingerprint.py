"""What a saved iterator state depends on, so a restore into another setup fails loudly.

A state is only meaningful for the pipeline that made it: the same data (files and record
counts), order (seed, shuffle, workers), batch shape, packing, tokenizer and host layout.
The setup is a flat dict of named values; comparing two of them names every difference.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xlstm_data.config import DataConfig

STATE_FORMAT_VERSION = 1

# Fields that change which tokens land in which batch (or how they are read and ordered).
_CONFIG_FIELDS = (
    "data_config_type", "global_batch_size", "max_target_length", "shuffle_data",
    "data_shuffle_seed", "data_column", "split", "tokenize_data", "add_bos", "add_eos", "add_eod",
    "eod_token_id", "truncate_documents", "grain_packing", "grain_packing_bin_count",
    "shift_target", "worker_count", "read_block_size", "drop_remainder", "max_steps_per_epoch",
    "num_epochs", "invalid_records",
)  # fmt: skip


def source_fingerprint(source: Any) -> str:
    """Record count and file names (not folders: data may be mounted elsewhere on restore)."""
    files = getattr(source, "files", None)
    names = sorted(Path(f).name for f in files) if files is not None else []
    digest = hashlib.sha256(repr(names).encode()).hexdigest()[:16]
    return f"{len(source)} records in {len(names)} files ({digest})"


def pipeline_setup(
    configs: Sequence[DataConfig],
    sources: Sequence[Any],
    tokenizer_fingerprints: Sequence[str | None],
    weights: Sequence[float],
    *,
    host_index: int,
    host_count: int,
) -> dict[str, Any]:
    """The named values a state depends on."""
    setup: dict[str, Any] = {
        "host_index": host_index,
        "host_count": host_count,
        "dataset_weights": list(weights),
    }
    for i, (config, source, tokenizer) in enumerate(
        zip(configs, sources, tokenizer_fingerprints, strict=True)
    ):
        prefix = f"configs[{i}]."
        for field in _CONFIG_FIELDS:
            setup[prefix + field] = getattr(config, field)
        setup[prefix + "batch_rampup_factors"] = sorted((config.batch_rampup_factors or {}).items())
        setup[prefix + "data"] = source_fingerprint(source)
        setup[prefix + "tokenizer"] = tokenizer
    return setup


def setup_differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """'name: saved X, now Y' for every value that differs."""
    differences = []
    for key in sorted(set(saved) | set(current)):
        before, now = saved.get(key, "<absent>"), current.get(key, "<absent>")
        if _normalise(before) != _normalise(now):
            differences.append(f"{key}: saved {before!r}, now {now!r}")
    return differences


def _normalise(value: Any) -> Any:
    """JSON turns tuples into lists; compare the two alike."""
    if isinstance(value, list | tuple):
        return [_normalise(v) for v in value]
    return value
