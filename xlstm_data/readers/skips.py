"""Skipped steps and documents (`skip_steps`, `skip_documents`): after a loss spike, restart
from a checkpoint without the batches or documents behind it, the same way on every host.

Steps are data steps: the loader's `step` jumps over a skipped one, so step numbers keep
naming the same batches (`documents_at`, `batch_shape`, saved states). A skipped document is
left out of every row from its `from_step` on (its place in the row becomes padding), so rows
and all other documents stay where they were. A state restores when the skip lists agree on
every step before it: skips added for later steps (the usual restart) are welcome, a change to
what was already delivered is refused with the difference named.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from xlstm_data.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Skips:
    steps: tuple[int, ...] = ()
    """Sorted data steps whose batches are not delivered."""
    documents: tuple[tuple[int, int, int], ...] = ()
    """(source index, record, from_step) of documents left out from that step on."""
    names: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Any, names: Sequence[str]) -> Skips:
        steps = settings.skip_steps or []
        if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in steps):
            raise ConfigError(
                f"Invalid data config: skip_steps {steps} must be steps (integers >= 0)."
            )
        documents = []
        for entry in settings.skip_documents or []:
            documents.append(_document(entry, names))
        return cls(tuple(sorted(set(steps))), tuple(sorted(documents)), tuple(names))

    def __bool__(self) -> bool:
        return bool(self.steps or self.documents)

    def next_step(self, step: int) -> int:
        """The first step from `step` on that is not skipped."""
        index = bisect.bisect_left(self.steps, step)
        while index < len(self.steps) and self.steps[index] == step:
            step, index = step + 1, index + 1
        return step

    def nth_step(self, first: int, n: int) -> int:
        """The `n`-th (from 0) step from `first` on that is not skipped."""
        step = first + n
        for skipped in self.steps[bisect.bisect_left(self.steps, first) :]:
            if skipped > step:
                break
            step += 1
        return step

    def kept_between(self, begin: int, end: int) -> int:
        """Steps in [begin, end) that are not skipped."""
        skipped = bisect.bisect_left(self.steps, end) - bisect.bisect_left(self.steps, begin)
        return max(0, end - begin - skipped)

    def dropped_pieces(self, source: np.ndarray, document: np.ndarray, step: np.ndarray):
        """Which pieces (their source, document and data step) belong to skipped documents."""
        drop = np.zeros(len(source), dtype=bool)
        for index, record, from_step in self.documents:
            drop |= (source == index) & (document == record) & (step >= from_step)
        return drop

    def before(self, step: int) -> dict[str, list]:
        """What a state saved at `step` depends on: the skips of earlier steps."""
        return {
            "skip_steps": [s for s in self.steps if s < step],
            "skip_documents": [
                [self.names[i], record, start]
                for i, record, start in self.documents
                if start < step
            ],
        }

    def check_restore(self, state: dict[str, Any], step: int) -> None:
        """Refuses a state whose skips of steps before `step` differ from these."""
        saved = state.get("skips", {"skip_steps": [], "skip_documents": []})
        now = self.before(step)
        for key in ("skip_steps", "skip_documents"):
            if saved.get(key, []) != now[key]:
                raise ConfigError(
                    f"Cannot restore the data iterator: {key} before step {step} were "
                    f"{saved.get(key, [])} when it was saved and are {now[key]} now; the batches "
                    "already delivered would change. Skip only steps and documents from the "
                    f"restored step on (documents: from_step >= {step})."
                )


def _document(entry: Any, names: Sequence[str]) -> tuple[int, int, int]:
    if not isinstance(entry, dict) or not {"source", "record"} <= set(entry):
        raise ConfigError(
            f"Invalid data config: skip_documents entry {entry!r} must be a mapping with "
            "'source' (a source name), 'record' (its index) and optionally 'from_step'."
        )
    if entry["source"] not in names:
        raise ConfigError(
            f"Invalid data config: skip_documents names source {entry['source']!r}, not one of "
            f"{list(names)}."
        )
    record, start = entry["record"], entry.get("from_step", 0)
    for key, value in (("record", record), ("from_step", start)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ConfigError(
                f"Invalid data config: skip_documents entry {entry}: {key} must be an int >= 0."
            )
    return list(names).index(entry["source"]), record, start
