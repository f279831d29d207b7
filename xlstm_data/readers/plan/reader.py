"""The global-plan reader (`plan="global"`): batches as a function of the step.

Its state is only `{"fingerprint"}` (the loader adds the step): restoring rebuilds the Grain
pipeline from that step in O(1), on any number of hosts that divides the global batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grain
import numpy as np

from xlstm_data.config.settings import LoaderSettings
from xlstm_data.errors import ConfigError
from xlstm_data.readers.base import ReaderBase
from xlstm_data.readers.inputs import Input
from xlstm_data.readers.plan.batches import (
    EpochSlots,
    PlanBatches,
    one_batch_at_a_time,
    row_pieces,
    steps_per_read,
)
from xlstm_data.readers.plan.store import load_plan, plan_for
from xlstm_data.schedule import BatchSchedule
from xlstm_data.workers import in_worker_processes, read_options


def _document_lengths(input: Input) -> np.ndarray:
    """Tokens per document with the special tokens the pipeline adds (empty ones stay 0)."""
    raw = input.source.document_lengths()
    if raw is None:
        raise ConfigError(
            f"Invalid data config: plan='global' needs document lengths, which {input.name} "
            "does not know without reading every record; use a token cache (`xlstm-data "
            "prepare`) or memmap files, or plan='online'."
        )
    raw = np.asarray(raw, dtype=np.int64)
    extra = len(input.tokens.prefix) + len(input.tokens.end_ids)
    return np.where(raw > 0, raw + extra, 0)


class PlanReader(ReaderBase):
    """Local batches of a global plan over one source or a weighted mixture."""

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
    ):
        super().__init__(
            inputs,
            weights,
            settings,
            schedule=schedule,
            host_index=host_index,
            host_count=host_count,
            compact=compact,
        )
        first = self.inputs[0]
        first_inputs = {i.tokens.first_input_id for i in self.inputs}
        if len(first_inputs) > 1:
            raise ConfigError(
                f"The configs of a planned mixture open rows with different tokens "
                f"{sorted(first_inputs)} (their EOD ids differ); give them one tokenizer or "
                "one eod_token_id."
            )
        fingerprint_inputs = {
            f"source[{n}]": {
                "data": i.source.identity(),
                "tokenizer": i.tokenizer_fingerprint,
                "prefix": i.tokens.prefix,
                "suffix": i.tokens.end_ids,
            }
            for n, i in enumerate(self.inputs)
        }
        plan_dir = settings.plan_dir or first.source.plans_folder()
        if plan_dir is None:
            raise ConfigError(
                f"Invalid data config: plan_dir is not set and {first.name} has no folder to "
                "keep plans in; set plan_dir."
            )
        config = first.config  # the "plan"-scope fields agree over the mixture
        plan, self.fingerprint, self.plan_folder = plan_for(
            [_document_lengths(i) for i in self.inputs],
            weights,
            plan_dir=Path(plan_dir),
            settings=fingerprint_inputs,
            row_length=settings.row_length,
            seed=config.data_shuffle_seed,
            window_rows=settings.plan_window_rows,
            plan_tokens=settings.plan_tokens,
            algorithm=config.placement,
            shuffle=config.shuffle_data,
            truncate=[i.config.truncate_documents for i in self.inputs],
        )
        self.report = plan.report
        self.dataset_size = plan.report["documents"]
        """What the plan holds: documents, tokens, rows, padding, split documents, realised
        token share per source against its weight, epochs per source."""
        self.slots = EpochSlots(
            plan.num_rows,
            global_batch_size=settings.global_batch_size,
            drop_remainder=settings.drop_remainder,
            max_steps_per_epoch=settings.max_steps_per_epoch,
            num_epochs=settings.num_epochs,
            shuffle=config.shuffle_data,
            seed=config.data_shuffle_seed,
        )
        self.steps_per_epoch = (
            self.slots.slots_per_epoch // settings.global_batch_size
            if schedule.is_constant
            else None
        )
        self._read_options = read_options(config.read_threads, tokenize=False)
        self._steps_per_read = steps_per_read(schedule.local_rows(0), settings.row_length)

    def batches(self, first_step: int) -> grain.IterDataset:
        batches = PlanBatches(
            plan_folder=self.plan_folder,
            sources=[i.source for i in self.inputs],
            prefixes=[i.tokens.prefix for i in self.inputs],
            suffixes=[i.tokens.end_ids for i in self.inputs],
            slots=self.slots,
            schedule=self.schedule,
            host_index=self.host_index,
            host_count=self.host_count,
            row_length=self.settings.row_length,
            shift_target=self.settings.shift_target,
            first_input_id=self.first_input_id,
            compact=self.compact,
            vocab_sizes=[i.tokens.vocab_size for i in self.inputs],
            steps_per_read=self._steps_per_read,
            names=self.names,
            first_step=first_step,
        )
        chunks = in_worker_processes(
            batches.to_iter_dataset(self._read_options),
            self.settings.worker_count,
            self.settings.worker_buffer_size,
        )
        return one_batch_at_a_time(chunks, self._steps_per_read)

    def documents_at(self, step: int) -> list[dict[str, Any]]:
        """Every piece of the global batch at `step`, row by row: its source, record key and
        where that record lives, its tokens [start, end) within the record (special tokens
        counted, as in the rows) and its offset in the row. O(rows of that step): read from
        the stored plan, no other step is computed."""
        if step < 0:
            raise ConfigError(f"documents_at: step {step} is negative.")
        first = self.schedule.rows_before(step)
        rows = self.slots.rows(np.arange(first, first + self.schedule.global_rows(step)))
        pieces = row_pieces(load_plan(self.plan_folder), rows)
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

    def save(self, step: int, pipeline_state: Any) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint}

    def load(self, state: dict[str, Any]) -> tuple[int, None]:
        """The saved step; any host count that divides the global batch works."""
        if state.get("fingerprint") != self.fingerprint:
            raise ConfigError(
                f"Cannot restore the data iterator: the state belongs to plan "
                f"{state.get('fingerprint')!r}, this iterator reads plan {self.fingerprint!r} "
                "(other data, weights, seed, row length or tokenizer). Restore with the setup "
                "the state was saved with."
            )
        step = state.get("step")
        if not isinstance(step, int) or isinstance(step, bool) or step < 0:
            raise ConfigError(f"Cannot restore the data iterator: its step {step!r} is not a step.")
        return step, None
