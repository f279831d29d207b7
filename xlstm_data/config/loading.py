"""Configs from dicts and YAML files: `data_config_type` selects the class, unknown keys fail."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import yaml

from xlstm_data.config.base import CONFIG_TYPES, DataConfig
from xlstm_data.config.settings import check_weights
from xlstm_data.errors import ConfigError, did_you_mean


def config_from_dict(
    values: dict[str, Any], *, where: str = "config", also_known: tuple[str, ...] = ()
) -> DataConfig:
    """Builds the config class named by `data_config_type`, rejecting unknown keys
    (`also_known`: keys the caller takes, which a misspelt key may have meant)."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a mapping of config fields, got {values!r}.")
    values = dict(values)
    type_name = values.get("data_config_type")
    if type_name not in CONFIG_TYPES:
        raise ConfigError(
            f"{where}: data_config_type {type_name!r} is unknown; use one of "
            f"{sorted(CONFIG_TYPES)}."
        )
    cls = CONFIG_TYPES[type_name]
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {unknown} for {cls.__name__}"
            f"{did_you_mean(unknown, [*known, *also_known])}; remove them or use one of "
            f"{sorted(known)}."
        )
    factors = values.get("batch_rampup_factors")
    if isinstance(factors, dict):
        try:
            values["batch_rampup_factors"] = {int(k): v for k, v in factors.items()}
        except ValueError as error:
            raise ConfigError(
                f"{where}: batch_rampup_factors needs integer steps as keys ({error})."
            ) from error
    try:
        return cls(**values)
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from error
    except TypeError as error:  # a required field is missing
        raise ConfigError(f"{where}: {error}") from error


def load_configs(path: str | os.PathLike) -> tuple[list[DataConfig], list[float] | None]:
    """Configs and mixture weights from a YAML file.

    A file is either one config (a mapping with `data_config_type`) or a mixture:
    `defaults:` (keys shared by all) and `datasets:` (a list of configs, each with a `weight`),
    and optionally a top-level `schedule:` (the mixture's stages, shared by all).
    """
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from error
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level.")
    if "datasets" not in document:
        return [config_from_dict(document, where=str(path))], None
    unknown = sorted(set(document) - {"defaults", "datasets", "schedule"})
    if unknown:
        raise ConfigError(
            f"{path}: unknown top-level key(s) {unknown}"
            f"{did_you_mean(unknown, ['defaults', 'datasets', 'schedule'])}; a mixture file has "
            "'defaults', 'datasets' and optionally 'schedule'."
        )
    defaults = document.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise ConfigError(f"{path}: 'defaults' must be a mapping of config fields.")
    if "schedule" in document:
        defaults = defaults | {"schedule": document["schedule"]}
    if not isinstance(document["datasets"], list) or not document["datasets"]:
        raise ConfigError(f"{path}: 'datasets' must be a non-empty list of configs.")
    configs, weights = [], []
    for i, entry in enumerate(document["datasets"]):
        where = f"{path}: datasets[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: expected a mapping of config fields, got {entry!r}.")
        entry = {**defaults, **entry}
        weights.append(entry.pop("weight", 1.0))
        configs.append(config_from_dict(entry, where=where, also_known=("weight",)))
    try:
        return configs, check_weights(weights, len(configs))
    except ConfigError as error:
        raise ConfigError(f"{path}: the datasets' weights: {error}") from error
