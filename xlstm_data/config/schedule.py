"""Training schedules: stages that change the mixture weights (in tokens), the row length and the
global batch size at given steps.

A config's `schedule` is a list of stages, each a mapping (YAML) or a `Stage`:

    schedule:
      - {start_step: 0, max_target_length: 512}                  # short rows first
      - {start_step: 1000, max_target_length: 2048}
      - {start_step: 9000, weights: {web: 0.3, books: 0.2, curated: 0.5}}   # annealing

A stage keeps what it does not set from the stage before it (the first from the config and
its mixture weights). A stage that changes `max_target_length` without a `global_batch_size`
keeps the tokens per step: the batch becomes `batch * old_length / new_length` rows.
`resolve_stages` turns the list into `ResolvedStage`s with every value filled in.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from typing import Any

from xlstm_data.errors import ConfigError, did_you_mean

STAGE_KEYS = ("start_step", "weights", "max_target_length", "global_batch_size", "name")


@dataclasses.dataclass(frozen=True)
class Stage:
    """One stage of a schedule, from `start_step` on (see the module docstring)."""

    start_step: int
    weights: dict[str, float] | list[float] | None = None
    """Mixture weights by source name (missing sources: 0), or one per config; in tokens."""
    max_target_length: int | None = None
    global_batch_size: int | None = None
    name: str | None = None


@dataclasses.dataclass(frozen=True)
class ResolvedStage:
    index: int
    name: str
    start_step: int
    end_step: int | None
    """The first step of the next stage (None: the last stage, which runs on)."""
    weights: tuple[float, ...]
    max_target_length: int
    global_batch_size: int

    @property
    def steps(self) -> int | None:
        return None if self.end_step is None else self.end_step - self.start_step


def stage_as_dict(stage: Stage | dict[str, Any]) -> dict[str, Any]:
    """A stage as the mapping a config keeps (JSON-serialisable, for saved states)."""
    if isinstance(stage, Stage):
        return {k: v for k, v in dataclasses.asdict(stage).items() if v is not None}
    if not isinstance(stage, dict):
        raise ConfigError(
            f"Invalid data config: schedule entry {stage!r} is not a mapping; give each stage "
            f"as a mapping with keys among {list(STAGE_KEYS)}."
        )
    unknown = sorted(set(stage) - set(STAGE_KEYS))
    if unknown:
        raise ConfigError(
            f"Invalid data config: schedule stage {stage} has unknown key(s) {unknown}"
            f"{did_you_mean(unknown, list(STAGE_KEYS))}; use {list(STAGE_KEYS)}."
        )
    return dict(stage)


def resolve_stages(
    schedule: Sequence[dict[str, Any]],
    *,
    names: Sequence[str],
    weights: Sequence[float],
    max_target_length: int,
    global_batch_size: int,
) -> list[ResolvedStage]:
    """Every stage with its weights (normalised, one per source), row length and batch size."""
    if not schedule:
        raise ConfigError("Invalid data config: schedule is empty; give at least one stage.")
    starts = [stage.get("start_step") for stage in schedule]
    if not all(isinstance(s, int) and not isinstance(s, bool) for s in starts) or starts[0] != 0:
        raise ConfigError(
            f"Invalid data config: schedule start steps {starts} must be integers, the first 0."
        )
    if any(b <= a for a, b in itertools.pairwise(starts)):
        raise ConfigError(
            f"Invalid data config: schedule start steps {starts} must increase strictly."
        )
    resolved: list[ResolvedStage] = []
    current = (tuple(_normalised(weights, "the mixture")), max_target_length, global_batch_size)
    for index, stage in enumerate(schedule):
        where = f"schedule stage {index} (start_step {stage['start_step']})"
        stage_weights, length, batch = current
        if stage.get("weights") is not None:
            stage_weights = tuple(_stage_weights(stage["weights"], names, where))
        if stage.get("max_target_length") is not None:
            new_length = _positive_int(stage["max_target_length"], where, "max_target_length")
            if stage.get("global_batch_size") is None:
                batch = _same_tokens(batch, length, new_length, where)
            length = new_length
        if stage.get("global_batch_size") is not None:
            batch = _positive_int(stage["global_batch_size"], where, "global_batch_size")
        end = starts[index + 1] if index + 1 < len(starts) else None
        label = stage.get("name") or f"stage {index}"
        resolved.append(
            ResolvedStage(index, label, stage["start_step"], end, stage_weights, length, batch)
        )
        current = (stage_weights, length, batch)
    return resolved


def _same_tokens(batch: int, length: int, new_length: int, where: str) -> int:
    rows = batch * length / new_length
    if rows != int(rows):
        raise ConfigError(
            f"Invalid data config: {where} changes max_target_length {length} -> {new_length}, "
            f"and keeping the {batch * length} tokens per step needs {rows} rows, not a whole "
            "number; set the stage's global_batch_size."
        )
    return int(rows)


def _positive_int(value: Any, where: str, key: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"Invalid data config: {where}: {key} = {value!r} must be an int >= 1.")
    return value


def _stage_weights(value: Any, names: Sequence[str], where: str) -> list[float]:
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise ConfigError(
                f"Invalid data config: {where} weighs {unknown}{did_you_mean(unknown, list(names))}"
                f", which are not sources of the mixture {list(names)}; name the configs "
                "(`name:`) and use those names."
            )
        value = [value.get(name, 0.0) for name in names]
    if not isinstance(value, list | tuple) or len(value) != len(names):
        raise ConfigError(
            f"Invalid data config: {where}: weights {value!r} must map source names to weights "
            f"or list one weight per source ({len(names)})."
        )
    return _normalised(value, where)


def _normalised(weights: Sequence[Any], where: str) -> list[float]:
    for weight in weights:
        number = isinstance(weight, int | float) and not isinstance(weight, bool)
        if not number or not math.isfinite(weight) or weight < 0:
            raise ConfigError(
                f"Invalid data config: {where}: weight {weight!r} is not a finite number >= 0."
            )
    total = float(sum(weights))
    if total <= 0:
        raise ConfigError(f"Invalid data config: {where}: the weights {list(weights)} are all 0.")
    return [float(w) / total for w in weights]


def refuse_online_stages(stages: Sequence[ResolvedStage] | None) -> None:
    """The online reader follows a schedule's batch sizes and weights (by rows); a row length
    that changes needs the plan, which fixes every row of a stage before it is read."""
    for stage in stages or []:
        if stage.max_target_length != stages[0].max_target_length:
            raise ConfigError(
                f"Invalid data config: schedule {stage.name} (start_step {stage.start_step}) "
                "changes max_target_length, which needs plan='global' (a plan of each stage); "
                "the online reader follows a schedule's weights and global_batch_size only."
            )
