"""What a saved online iterator state depends on, so a restore into another setup fails loudly.

A state is only meaningful for the pipeline that made it: the same data, order (seed, shuffle,
workers), batch shape, packing, tokenizer and host layout. The setup is a flat dict of named
values: every config field whose `Role` says `in_state`, the data's identity (from the source,
wherever it is mounted) and the tokenizer's fingerprint. Comparing two setups names every
difference.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import PurePath
from typing import Any

from xlstm_data.config import DataConfig, role


def config_setup(config: DataConfig) -> dict[str, Any]:
    """The fields of `config` that a saved state depends on."""
    values = {}
    for field in dataclasses.fields(config):
        if role(field).in_state:
            value = getattr(config, field.name)
            if isinstance(value, dict):
                value = sorted(value.items())
            values[field.name] = str(value) if isinstance(value, PurePath) else value
    return values


def pipeline_setup(
    configs: Sequence[DataConfig],
    identities: Sequence[str],
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
    for i, (config, identity, tokenizer) in enumerate(
        zip(configs, identities, tokenizer_fingerprints, strict=True)
    ):
        prefix = f"configs[{i}]."
        setup |= {prefix + name: value for name, value in config_setup(config).items()}
        setup[prefix + "data"] = identity
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
    """JSON turns tuples into lists and paths into strings; compare them alike."""
    if isinstance(value, list | tuple):
        return [_normalise(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _normalise(v) for k, v in value.items()}
    return value
