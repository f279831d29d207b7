"""From configs to what the loader runs with: one value per loader-wide field, the mixture
weights, and a refusal for every field the chosen reader would not honour.

Which fields must agree and which a reader honours comes from each field's `Role`
(config/base.py), so a new field cannot silently take effect on one path and not another.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from xlstm_data.config.base import SOURCE_ONLY_LENGTH, DataConfig, non_default_fields, role
from xlstm_data.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class LoaderSettings:
    """The loader-wide fields ("loader" scope) every config of a mixture agrees on, and the
    reader they choose."""

    values: dict[str, Any]

    @property
    def reader(self) -> str:
        return self.values["plan"]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["values"][name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def row_length(self) -> int:
        return self.max_target_length + (self.shift_target == "targets")


def loader_settings(configs: Sequence[DataConfig]) -> LoaderSettings:
    """The shared loader-wide values, after checking that the configs agree on them (and, for a
    global plan, on the "plan"-scope fields) and that the reader honours every field set."""
    first = configs[0]
    if first.max_target_length == SOURCE_ONLY_LENGTH:
        raise ConfigError(
            f"Invalid data config: max_target_length = {SOURCE_ONLY_LENGTH} names a source "
            "only; set the row length (tokens per row) to build an iterator."
        )
    scopes = ("loader", "plan") if first.plan == "global" else ("loader",)
    values = {}
    for field in dataclasses.fields(first):
        if role(field).scope in scopes:
            _require_agreement(configs, field.name)
            if role(field).scope == "loader":
                values[field.name] = getattr(first, field.name)
    for config in configs:
        refuse_unsupported_fields(config, first.plan)
    return LoaderSettings(values)


def _require_agreement(configs: Sequence[DataConfig], name: str) -> None:
    first = getattr(configs[0], name)
    for config in configs[1:]:
        value = getattr(config, name, first)
        if value != first:
            why = "one global plan" if role_of(config, name).scope == "plan" else "one loader"
            raise ConfigError(
                f"Invalid data config: {name} is {value!r} for {config.label} but {first!r} for "
                f"{configs[0].label}; every config of a mixture feeds {why}, so give them one "
                f"value of {name}."
            )


def role_of(config: DataConfig, name: str):
    return role(next(f for f in dataclasses.fields(config) if f.name == name))


def refuse_unsupported_fields(config: DataConfig, reader: str) -> None:
    """Raises ConfigError for a field set (to a non-default value) that `reader` ignores."""
    for name, value in non_default_fields(config).items():
        field_role = role_of(config, name)
        if field_role.readers and reader not in field_role.readers:
            other = ", ".join(repr(r) for r in field_role.readers)
            raise ConfigError(
                f"Invalid data config: {name} = {value!r} for {config.label} has no effect with "
                f"plan={reader!r} (only with plan={other}); remove it"
                + (f", or {field_role.instead}." if field_role.instead else ".")
            )


def check_weights(weights: Sequence[Any] | None, count: int) -> list[float]:
    """One finite, positive weight per config (all 1 when none are given)."""
    if weights is None:
        return [1.0] * count
    weights = list(weights)
    if len(weights) != count:
        raise ConfigError(
            f"dataset_weights has {len(weights)} entries for {count} configs; give one weight "
            "per config."
        )
    for weight in weights:
        number = isinstance(weight, int | float) and not isinstance(weight, bool)
        if not number or not math.isfinite(weight) or weight <= 0:
            raise ConfigError(
                f"dataset_weights {weights}: {weight!r} is not a finite positive number; give "
                "each config a weight such as 0.7 or 3."
            )
    return [float(w) for w in weights]
