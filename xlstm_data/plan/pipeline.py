"""`make_grain_iterator` for configs with `plan="global"`: batches as a function of the step.

The iterator's state is only `{"step", "fingerprint"}`: restoring rebuilds the Grain pipeline
from that step (O(1)), on any number of hosts that divides the global batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import grain
import numpy as np

from xlstm_data.config import DataConfig
from xlstm_data.multihost import MultiHostDataLoadIterator
from xlstm_data.plan.batches import (
    EpochSlots,
    PlanBatches,
    one_batch_at_a_time,
    steps_per_read,
)
from xlstm_data.plan.store import plan_for
from xlstm_data.rampup import BatchSchedule
from xlstm_data.setup_fingerprint import STATE_FORMAT_VERSION, source_fingerprint
from xlstm_data.tokenizer import Tokenizer
from xlstm_data.transforms.shift import stacked_fields
from xlstm_data.transforms.tokenize import document_special_tokens
from xlstm_data.workers import in_worker_processes, read_options

# Fields that must agree across the configs of a planned mixture (they shape the plan).
_PLAN_FIELDS = ("data_shuffle_seed", "plan_dir", "plan_tokens", "plan_window_rows")


class PlanDataLoadIterator(MultiHostDataLoadIterator):
    """A `MultiHostDataLoadIterator` whose state is the step and the plan's fingerprint."""

    state_is_host_independent = True

    def __init__(
        self,
        make_dataset: Callable[[int], grain.IterDataset],
        *,
        fingerprint: str,
        report: dict,
        first_step: int,
        **kwargs: Any,
    ):
        self._make_dataset = make_dataset
        self.fingerprint = fingerprint
        self.plan_report = report
        """What the plan holds: documents, tokens, rows, padding, split documents, realised
        token share per source against its weight, epochs per source."""
        super().__init__(make_dataset(first_step), first_step=first_step, **kwargs)

    def get_state(self) -> dict[str, Any]:
        return {"version": STATE_FORMAT_VERSION, "step": self.step, "fingerprint": self.fingerprint}

    def set_state(self, state: dict[str, Any]) -> None:
        """Continues at the saved step; any host count that divides the global batch works."""
        if state.get("fingerprint") != self.fingerprint:
            raise ValueError(
                f"Cannot restore the data iterator: the state belongs to plan "
                f"{state.get('fingerprint')!r}, this iterator reads plan {self.fingerprint!r} "
                "(other data, weights, seed, row length or tokenizer). Restore with the setup "
                "the state was saved with."
            )
        self.close()
        self.dataset = self._make_dataset(state["step"])
        self.first_step = self.step = state["step"]
        self._open()


def _check_plan_configs(configs: Sequence[DataConfig]) -> None:
    for config in configs:
        if config.plan != "global":
            raise ValueError(
                f"Invalid data config: plan is {config.plan!r} for "
                f"{config.name or config.describe_source()} but 'global' for another config "
                "of the mixture; use one kind of plan for all of them."
            )
    for field in _PLAN_FIELDS:
        values = {repr(getattr(c, field)) for c in configs}
        if len(values) > 1:
            raise ValueError(
                f"Invalid data config: {field} differs between the configs of a "
                f"planned mixture ({sorted(values)}); give them one value."
            )


def _document_lengths(source: Any, config: DataConfig) -> np.ndarray:
    if not hasattr(source, "document_lengths"):
        raise ValueError(
            f"Invalid data config: plan='global' needs document lengths, which "
            f"{config.name or config.describe_source()} does not know without reading every "
            "record; use a token cache (`xlstm-data prepare`) or memmap files, or plan='online'."
        )
    return np.asarray(source.document_lengths(), dtype=np.int64)


def make_planned_iterator(
    configs: Sequence[DataConfig],
    weights: Sequence[float],
    tokenizers: Sequence[Tokenizer | None],
    mesh: Any,
    *,
    schedule: BatchSchedule,
    host_index: int,
    host_count: int,
    data_axis_names: Sequence[str],
    first_input_id: int,
    start_from_step: int,
    reset_after_epoch: bool,
) -> PlanDataLoadIterator:
    """Loads (or builds once) the plan of `configs` and iterates its batches."""
    _check_plan_configs(configs)
    first = configs[0]
    sources = [c.open_source() for c in configs]
    prefixes, suffixes, lengths, settings = [], [], [], {}
    for i, (config, source, tokenizer) in enumerate(zip(configs, sources, tokenizers, strict=True)):
        bos_id, end_ids = document_special_tokens(config, tokenizer)
        prefix = () if bos_id is None else (bos_id,)
        raw = _document_lengths(source, config)
        lengths.append(np.where(raw > 0, raw + len(prefix) + len(end_ids), 0))
        prefixes.append(prefix)
        suffixes.append(end_ids)
        tokenizer_fingerprint = (
            tokenizer.fingerprint if tokenizer else getattr(source, "tokenizer_fingerprint", None)
        )
        settings[f"source[{i}]"] = {
            "data": source_fingerprint(source),
            "tokenizer": tokenizer_fingerprint,
            "prefix": prefix,
            "suffix": end_ids,
        }
    plan_dir = Path(first.plan_dir) if first.plan_dir else first.default_plan_dir()
    if plan_dir is None:
        raise ValueError(
            "Invalid data config: plan_dir is not set and this source has no "
            "folder to keep plans in; set plan_dir."
        )
    plan, fingerprint = plan_for(
        lengths,
        weights,
        plan_dir=plan_dir,
        settings=settings,
        row_length=first.row_length,
        seed=first.data_shuffle_seed,
        window_rows=first.plan_window_rows,
        plan_tokens=first.plan_tokens,
    )
    slots = EpochSlots(
        plan.num_rows,
        global_batch_size=first.global_batch_size,
        drop_remainder=first.drop_remainder,
        num_epochs=first.num_epochs,
        seed=first.data_shuffle_seed,
    )
    plan_folder = plan_dir / fingerprint[:24]

    reads = steps_per_read(schedule.local_rows(0), first.row_length)

    def make_dataset(step: int) -> grain.IterDataset:
        batches = PlanBatches(
            plan_folder=plan_folder,
            sources=sources,
            prefixes=prefixes,
            suffixes=suffixes,
            slots=slots,
            schedule=schedule,
            host_index=host_index,
            host_count=host_count,
            row_length=first.row_length,
            shift_target=first.shift_target,
            first_input_id=first_input_id,
            vocab_sizes=[c.vocab_size for c in configs],
            steps_per_read=reads,
            first_step=step,
        )
        chunks = batches.to_iter_dataset(read_options(first))
        return one_batch_at_a_time(in_worker_processes(chunks, first), reads)

    steps_per_epoch = slots.slots_per_epoch // first.global_batch_size
    return PlanDataLoadIterator(
        make_dataset,
        fingerprint=fingerprint,
        report=plan.report,
        first_step=start_from_step,
        global_mesh=mesh,
        schedule=schedule,
        max_target_length=first.max_target_length,
        data_axis_names=data_axis_names,
        host_index=host_index,
        host_count=host_count,
        sync_end=False,
        drop_remainder=first.drop_remainder,
        steps_per_epoch=steps_per_epoch if schedule.is_constant else None,
        setup={},
        stacked_fields=stacked_fields(first.shift_target),
        device_prefetch=first.device_prefetch,
        reset_after_epoch=reset_after_epoch,
    )
