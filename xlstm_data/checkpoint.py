"""Saving the data iterator with Orbax, next to the model state.

    import orbax.checkpoint as ocp
    from xlstm_data.checkpoint import DataIteratorRestore, DataIteratorSave

    manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(train_state), data=DataIteratorSave(iterator)))
    manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state), data=DataIteratorRestore(iterator)))

Each process writes its own small JSON file (`process_{i}-of-{n}.json`); a global plan's
state, the same on every host, restores on any number of processes. Orbax writes a
checkpoint into a temporary folder and renames it when every item of every process is
written, so a crash while saving leaves no checkpoint that restores wrongly.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp

from xlstm_data.errors import ConfigError, DataError
from xlstm_data.loader import MultiHostDataLoadIterator


def _state_file(directory: Any) -> Path:
    return Path(directory) / f"process_{jax.process_index()}-of-{jax.process_count()}.json"


class DataIteratorHandler(ocp.CheckpointHandler):
    """Orbax handler for `MultiHostDataLoadIterator` states (one JSON file per process)."""

    def save(self, directory: Any, args: DataIteratorSave) -> None:
        _state_file(directory).write_text(json.dumps(args.item.get_state()))

    def restore(self, directory: Any, args: DataIteratorRestore) -> MultiHostDataLoadIterator:
        file = _state_file(directory)
        saved = sorted(Path(directory).glob("process_*-of-*.json"))
        if not file.is_file() and args.item.state_is_host_independent and saved:
            file = saved[0]  # a global plan's state is the same on every host
        if not file.is_file():
            raise ConfigError(
                f"No data iterator state {file.name} in {directory}: the checkpoint was saved "
                "by another number of processes, or without the data iterator."
            )
        try:
            state = json.loads(file.read_text())
        except json.JSONDecodeError as error:
            raise DataError(
                f"Data iterator state {file} is not valid JSON ({error}); the checkpoint is "
                "damaged: restore an earlier one."
            ) from error
        args.item.set_state(state)
        return args.item

    def metadata(self, directory: Any) -> None:
        return None

    def finalize(self, directory: Any) -> None:
        return None

    def close(self) -> None:
        return None


@ocp.args.register_with_handler(DataIteratorHandler, for_save=True)
@dataclasses.dataclass
class DataIteratorSave(ocp.args.CheckpointArgs):
    """Saves `item`'s state."""

    item: MultiHostDataLoadIterator


@ocp.args.register_with_handler(DataIteratorHandler, for_restore=True)
@dataclasses.dataclass
class DataIteratorRestore(ocp.args.CheckpointArgs):
    """Restores the saved state into `item` (an iterator built with the same setup)."""

    item: MultiHostDataLoadIterator
