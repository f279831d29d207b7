"""The global-plan reader (`plan="global"`): batches as a function of the step.

Its state is only `{"fingerprint"}` (the loader adds the step): restoring rebuilds the Grain
pipeline from that step in O(1), on any number of hosts that divides the global batch.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grain
import numpy as np

from xlstm_data.config.schedule import ResolvedStage
from xlstm_data.config.settings import LoaderSettings
from xlstm_data.errors import ConfigError
from xlstm_data.readers.base import ReaderBase
from xlstm_data.readers.inputs import Input
from xlstm_data.readers.plan.batches import (
    EpochSlots,
    FinishEach,
    PlanBatches,
    RowPieces,
    one_batch_at_a_time,
    row_pieces,
    shuffle_blocks,
    steps_per_read,
    without_skipped,
)
from xlstm_data.readers.plan.build import Plan
from xlstm_data.readers.plan.lengths import DocumentLengths, check_lengths_known
from xlstm_data.readers.plan.parallel import Workers
from xlstm_data.readers.plan.store import plan_for
from xlstm_data.schedule import BatchSchedule
from xlstm_data.stages.batch import Finish
from xlstm_data.telemetry import source_key
from xlstm_data.workers import in_worker_processes, read_options


@dataclasses.dataclass
class PlanPart:
    """The plan of one stage of a schedule (or the only plan, without one): steps
    [first_step, end_step) read its rows, counted from its own step 0."""

    name: str
    first_step: int
    end_step: int | None
    schedule: BatchSchedule
    """Rows per step within the part (local steps)."""
    max_target_length: int
    row_length: int
    plan_folder: Path
    fingerprint: str
    slots: EpochSlots
    report: dict[str, Any]

    def holds(self, step: int) -> bool:
        return self.first_step <= step and (self.end_step is None or step < self.end_step)


def stage_seed(seed: int, index: int) -> int:
    """The seed of the row order of a schedule's stage (stage 0: the config's seed)."""
    if index == 0:
        return seed
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


class PlanReader(ReaderBase):
    """Local batches of a global plan over one source or a weighted mixture, or of one plan
    per stage of a schedule (each stage's sources continue where the stage before stopped)."""

    state_is_host_independent = True
    ends_unevenly = False

    def __init__(
        self,
        inputs: Sequence[Input],
        weights: Sequence[float],
        settings: LoaderSettings,
        *,
        schedule: BatchSchedule,
        host_index: int,
        host_count: int,
        compact: bool = True,
        stages: Sequence[ResolvedStage] | None = None,
        plan_workers: Workers | int | str | None = None,
    ):
        super().__init__(
            inputs,
            weights,
            settings,
            schedule=schedule,
            host_index=host_index,
            host_count=host_count,
            compact=compact,
            stages=stages,
        )
        check_lengths_known(self.inputs)
        first = self.inputs[0]
        first_inputs = {i.tokens.first_input_id for i in self.inputs}
        if len(first_inputs) > 1:
            raise ConfigError(
                f"The configs of a planned mixture open rows with different tokens "
                f"{sorted(first_inputs)} (their EOD ids differ); give them one tokenizer or "
                "one eod_token_id."
            )
        plan_dir = settings.plan_dir or first.source.plans_folder()
        if plan_dir is None:
            raise ConfigError(
                f"Invalid data config: plan_dir is not set and {first.name} has no folder to "
                "keep plans in; set plan_dir."
            )
        self._plan_settings = {
            "plan_dir": Path(plan_dir),
            "settings": {
                f"source[{n}]": {
                    "data": i.source.identity(),
                    "tokenizer": i.tokenizer_fingerprint,
                    "prefix": i.tokens.prefix,
                    "suffix": i.tokens.end_ids,
                }
                for n, i in enumerate(self.inputs)
            },
            "seed": first.config.data_shuffle_seed,  # "plan"-scope fields agree over the mixture
            "window_rows": settings.plan_window_rows,
            "plan_tokens": settings.plan_tokens,
            "algorithm": first.config.placement,
            "shuffle": first.config.shuffle_data,
            "truncate": [i.config.truncate_documents for i in self.inputs],
            "workers": plan_workers,
        }
        lengths = DocumentLengths(self.inputs, Path(plan_dir))
        self.parts = (
            [self._single_part(lengths)] if stages is None else self._stage_parts(lengths, stages)
        )
        last = self.parts[-1]
        self.fingerprint, self.plan_folder = last.fingerprint, last.plan_folder
        self.report = last.report if stages is None else _schedule_report(self.parts)
        """What the plan holds: documents, tokens, rows, padding, split documents, realised
        token share per source against its weight, epochs per source (per stage)."""
        self.dataset_size = last.report["documents"]
        self.steps_per_epoch = (
            last.slots.slots_per_epoch // settings.global_batch_size
            if schedule.is_constant and stages is None
            else None
        )
        self._read_options = read_options(first.config.read_threads, overlaps=True)
        self._plans: dict[Path, Plan] = {}  # memory-mapped, for provenance and metrics

    def _single_part(self, lengths: DocumentLengths) -> PlanPart:
        settings, config = self.settings, self.inputs[0].config
        plan, fingerprint, folder = plan_for(
            lengths, self.weights, row_length=settings.row_length, **self._plan_settings
        )
        slots = EpochSlots(
            plan.num_rows,
            block_starts=shuffle_blocks(plan.group_starts),
            global_batch_size=settings.global_batch_size,
            drop_remainder=settings.drop_remainder,
            max_steps_per_epoch=settings.max_steps_per_epoch,
            num_epochs=settings.num_epochs,
            shuffle=config.shuffle_data,
            seed=config.data_shuffle_seed,
        )
        return PlanPart("plan", 0, None, self.schedule, settings.max_target_length,
                        settings.row_length, folder, fingerprint, slots, plan.report)  # fmt: skip

    def _stage_parts(
        self, lengths: DocumentLengths, stages: Sequence[ResolvedStage]
    ) -> list[PlanPart]:
        """One plan per stage, built in order: a stage's sources start where the stage before
        stopped reading them, and its fingerprint covers the stages before it."""
        settings, config = self.settings, self.inputs[0].config
        parts, start, previous = [], [0] * len(self.inputs), None
        extra = settings.row_length - settings.max_target_length  # shift_target="targets"
        for stage in stages:
            rows = None if stage.steps is None else stage.steps * stage.global_batch_size
            plan, fingerprint, folder = plan_for(
                lengths,
                stage.weights,
                row_length=stage.max_target_length + extra,
                stage={"index": stage.index, "start": start, "rows": rows, "previous": previous},
                **self._plan_settings,
            )
            slots = EpochSlots(
                plan.num_rows,
                block_starts=shuffle_blocks(plan.group_starts),
                global_batch_size=stage.global_batch_size,
                drop_remainder=settings.drop_remainder if rows is None else True,
                max_steps_per_epoch=None,
                num_epochs=settings.num_epochs if rows is None else 1,
                shuffle=config.shuffle_data,
                seed=stage_seed(config.data_shuffle_seed, stage.index),
            )
            report = plan.report | {
                "stage": stage.name,
                "start_step": stage.start_step,
                "end_step": stage.end_step,
                "global_batch_size": stage.global_batch_size,
                "max_target_length": stage.max_target_length,
                "stream_start": list(start),
            }
            schedule = BatchSchedule(stage.global_batch_size, None, host_count=self.host_count)
            parts.append(
                PlanPart(stage.name, stage.start_step, stage.end_step, schedule,
                         stage.max_target_length, stage.max_target_length + extra, folder,
                         fingerprint, slots, report)
            )  # fmt: skip
            start, previous = plan.report["stream_end"], fingerprint
        return parts

    def part_of(self, step: int) -> PlanPart:
        return next(part for part in self.parts if part.holds(step))

    def batch_shape(self, step: int) -> tuple[int, int]:
        part = self.part_of(step)
        return part.schedule.global_rows(step - part.first_step), part.max_target_length

    def batches(self, first_step: int, finish: Finish | None = None) -> grain.IterDataset:
        parts = []
        for part in self.parts:
            if part.end_step is not None and part.end_step <= first_step:
                continue
            local = part.schedule.local_rows(0)
            parts.append(
                PlanBatches(
                    plan_folder=part.plan_folder,
                    sources=[i.source for i in self.inputs],
                    prefixes=[i.tokens.prefix for i in self.inputs],
                    suffixes=[i.tokens.end_ids for i in self.inputs],
                    slots=part.slots,
                    schedule=part.schedule,
                    host_index=self.host_index,
                    host_count=self.host_count,
                    row_length=part.row_length,
                    shift_target=self.settings.shift_target,
                    first_input_id=self.first_input_id,
                    compact=self.compact,
                    vocab_sizes=[i.tokens.vocab_size for i in self.inputs],
                    steps_per_read=steps_per_read(local, part.row_length),
                    names=self.names,
                    first_step=max(0, first_step - part.first_step),
                    skips=self.skips,
                    step_offset=part.first_step,
                )
            )
        fan_out = max(p.steps_per_read for p in parts)
        chunks = parts[0] if len(parts) == 1 else ChainedBatches(parts)
        # In this process the read threads finish the batches they make (the consuming thread
        # only hands them on); worker processes hand plain arrays over, finished after them.
        in_process = self.settings.worker_count == 0
        if in_process and finish is not None:
            chunks = chunks.map(FinishEach(finish))
        chunks = in_worker_processes(
            chunks.to_iter_dataset(self._read_options),
            self.settings.worker_count,
            self.settings.worker_buffer_size,
        )
        return one_batch_at_a_time(chunks, fan_out, finish=None if in_process else finish)

    def documents_at(self, step: int) -> list[dict[str, Any]]:
        """Every piece of the global batch at `step`, row by row: its source, record key and
        where that record lives, its tokens [start, end) within the record (special tokens
        counted, as in the rows) and its offset in the row. O(rows of that step): read from
        the stored plan, no other step is computed."""
        if step < 0:
            raise ConfigError(f"documents_at: step {step} is negative.")
        _, _, pieces = self._global_pieces(step)
        return [
            {
                "row": row,
                "offset": offset,
                "source": self.names[source],
                "record": document,
                "where": self.inputs[source].source.describe(document),
                "start": start,
                "end": start + length,
            }
            for row, offset, source, document, start, length in zip(
                pieces.row.tolist(),
                pieces.offset.tolist(),
                pieces.source.tolist(),
                pieces.document.tolist(),
                pieces.start.tolist(),
                pieces.length.tolist(),
                strict=True,
            )
        ]

    def step_metrics(self, step: int) -> dict[str, Any]:
        """The global batch at `step`, per source (tokens, document pieces), its padding, the
        stage and the stage's epoch: the same on any number of hosts, from the plan alone."""
        part, rows, pieces = self._global_pieces(step)
        sources = len(self.inputs)
        tokens = np.bincount(pieces.source, pieces.length, sources).astype(np.int64).tolist()
        documents = np.bincount(pieces.source[pieces.length > 0], minlength=sources).tolist()
        first = part.schedule.rows_before(step - part.first_step)
        metrics: dict[str, Any] = {
            "stage": part.name,
            "epoch": first // part.slots.slots_per_epoch,
            "tokens": sum(tokens),
            "padding_fraction": 1 - sum(tokens) / (len(rows) * part.row_length),
        }
        for name, n, d in zip(self.names, tokens, documents, strict=True):
            metrics[source_key("tokens", name)] = n
            metrics[source_key("documents", name)] = d
        return metrics

    def _global_pieces(self, step: int) -> tuple[PlanPart, np.ndarray, RowPieces]:
        """(part, plan rows, pieces without skipped documents) of the global batch at `step`."""
        part = self.part_of(step)
        local = step - part.first_step
        first = part.schedule.rows_before(local)
        rows = part.slots.rows(np.arange(first, first + part.schedule.global_rows(local)))
        if part.plan_folder not in self._plans:
            self._plans[part.plan_folder] = Plan.open(part.plan_folder)
        pieces = row_pieces(self._plans[part.plan_folder], rows)
        pieces, _ = without_skipped(pieces, np.full(len(rows), step), self.skips)
        return part, rows, pieces

    def save(self, step: int, pipeline_state: Any) -> dict[str, Any]:
        """The fingerprint of the plan the step reads (a stage's covers the stages before), so
        a schedule changed after this step's stage still restores."""
        state = {"fingerprint": self.part_of(step).fingerprint}
        return state | ({"skips": self.skips.before(step)} if self.skips else {})

    def load(self, state: dict[str, Any]) -> tuple[int, None]:
        """The saved step; any host count that divides the global batch works."""
        step = state.get("step")
        if not isinstance(step, int) or isinstance(step, bool) or step < 0:
            raise ConfigError(f"Cannot restore the data iterator: its step {step!r} is not a step.")
        expected = self.part_of(step).fingerprint
        if state.get("fingerprint") != expected:
            raise ConfigError(
                f"Cannot restore the data iterator: the state belongs to plan "
                f"{state.get('fingerprint')!r}, this iterator reads plan {expected!r} at step "
                f"{step} (other data, weights, seed, row length, tokenizer, or a schedule "
                "changed at or before the step's stage, or this xlstm-data lays plans out in a "
                "newer plan format). Restore with the setup and xlstm-data version the state "
                "was saved with."
            )
        self.skips.check_restore(state, step)
        return step, None


class ChainedBatches(grain.MapDataset):
    """The elements of several `PlanBatches` one after another: a schedule's stages."""

    def __init__(self, parts: list[PlanBatches]):
        super().__init__()
        self.parts = parts

    def __len__(self) -> int:
        return min(sys.maxsize, sum(len(part) for part in self.parts))

    def __getitem__(self, index):
        if isinstance(index, slice):
            return self.slice(index)
        for part in self.parts:
            if index < len(part):
                return part[index]
            index -= len(part)
        raise IndexError(index)

    def __str__(self) -> str:
        return f"ChainedBatches({len(self.parts)} stages)"


def _schedule_report(parts: list[PlanPart]) -> dict[str, Any]:
    """The plans of a schedule: each stage's report, and the totals."""
    rows = sum(p.report["rows"] for p in parts)
    tokens = sum(p.report["epoch_tokens"] for p in parts)
    slots = sum(p.report["rows"] * p.row_length for p in parts)
    return {
        "stages": [p.report for p in parts],
        "rows": rows,
        "documents": sum(p.report["documents"] for p in parts),
        "epoch_tokens": tokens,
        "padding_fraction": round(1 - tokens / slots, 6),
    }
