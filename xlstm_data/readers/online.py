"""The online reader: records are read, tokenized, split and packed while the loader runs.

`document_rows` is the recipe for one source on one host; `OnlineReader` mixes the rows of
several sources by weight, groups them for the worker processes and cuts local batches by the
schedule. Its state is the Grain pipeline's, checked against the setup it was saved with.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Sequence
from typing import Any

import grain
import numpy as np

from xlstm_data.config.schedule import ResolvedStage, refuse_online_stages
from xlstm_data.config.settings import LoaderSettings
from xlstm_data.errors import ConfigError
from xlstm_data.readers.base import ReaderBase
from xlstm_data.readers.inputs import Input
from xlstm_data.schedule import BatchSchedule
from xlstm_data.sources.padded import PaddedDataset
from xlstm_data.sources.protocol import DocumentSource
from xlstm_data.stages.batch import BatchIterDataset, Finish, row_groups
from xlstm_data.stages.epochs import EpochBlocks, epoch_length
from xlstm_data.stages.mix import StagedMixIterDataset
from xlstm_data.stages.pack import PackIterDataset, Rows
from xlstm_data.stages.parse import ParseText, ParseTokens, ReadRecords
from xlstm_data.stages.split import SplitDocuments, TruncateDocuments
from xlstm_data.stages.tokenize import Tokenize
from xlstm_data.state import pipeline_setup, setup_differences
from xlstm_data.workers import in_worker_processes, read_options

LOGGER = logging.getLogger(__name__)

MIN_PACKING_WINDOW_ROWS = 128


def records_per_epoch(input: Input, *, in_mixture: bool) -> int:
    """Record slots of one epoch of `input`: whole global batches. A source of a mixture is
    padded up, never cut (`drop_remainder` applies to the mixture's last batch), and its
    padding slots are skipped rather than read as masked rows."""
    config = input.config
    return epoch_length(
        len(input.source),
        global_batch_size=config.global_batch_size,
        drop_remainder=config.drop_remainder and not in_mixture,
        max_steps_per_epoch=config.max_steps_per_epoch,
        name=input.name,
    )


def mixture_records(records: Sequence[int], weights: Sequence[float]) -> int:
    """Records of a mixture's epoch as xlstm-jax counts them: until the source that lasts
    longest at its weight has been read once."""
    total = sum(weights)
    return max(int(r * total / w) for r, w in zip(records, weights, strict=True))


# Bytes of records per read block when read_block_size is None, and the most records: fresh
# allocations above 32 MB are mapped from the kernel page by page on every block (glibc's
# largest mmap threshold), which made joining blocks of long documents several times slower.
BLOCK_BYTES = 16 << 20
MAX_BLOCK_RECORDS = 2048


def block_size_for(source: DocumentSource, samples: int = 16) -> int:
    """Records per read block: about BLOCK_BYTES' worth, from the mean size of `samples`
    records spread over the source (the same records every time, so the same blocks)."""
    keys = np.unique(np.linspace(0, len(source) - 1, samples).astype(np.int64)).tolist()
    sizes = [record_bytes(record) for record in source.__getitems__(keys)]
    mean = max(1.0, float(np.mean(sizes)))
    return int(min(MAX_BLOCK_RECORDS, max(1, BLOCK_BYTES // mean)))


def record_bytes(record: Any) -> int:
    if isinstance(record, dict):
        return sum(record_bytes(value) for value in record.values())
    if isinstance(record, np.ndarray):
        return record.nbytes
    return len(record) if isinstance(record, bytes | str) else 4 * len(record)


def document_rows(
    input: Input,
    *,
    host_index: int,
    host_count: int,
    first_position: int = 0,
    compact: bool = False,
    in_mixture: bool = False,
    group_rows: int = 1,
) -> grain.IterDataset:
    """Rows (`Rows`, `group_rows` at a time) of one source on one host.

    The recipe reads top to bottom: record keys per read block, records, texts or tokens,
    special tokens, pieces of at most a row, rows.
    """
    config, source, tokens = input.config, input.source, input.tokens
    num_records, per_epoch = len(source), records_per_epoch(input, in_mixture=in_mixture)
    padded = PaddedDataset(source, max(num_records, per_epoch), config.data_column)
    parse_args = {
        "column": config.data_column,
        "num_records": num_records,
        "invalid_records": config.invalid_records,
        "describe": source.describe,
    }
    blocks = EpochBlocks(
        num_records=num_records,
        records_per_epoch=per_epoch,
        global_batch_size=config.global_batch_size,
        host_index=host_index,
        host_count=host_count,
        block_size=config.read_block_size or block_size_for(source),
        shuffle=config.shuffle_data,
        seed=config.data_shuffle_seed,
        num_epochs=config.num_epochs,
        first_position=first_position,
        skip_padding=in_mixture,
    )
    records = blocks.map(ReadRecords(padded))
    if config.tokenize_data:
        if input.tokenizer is None:
            raise ConfigError(f"{input.name}: tokenize_data=True needs tokenizer_path.")
        texts = records.map(ParseText(**parse_args))
        tokenize = Tokenize(input.tokenizer, prefix=tokens.prefix, suffix=tokens.end_ids)
        documents = texts.map(tokenize)
    else:
        parse = ParseTokens(
            vocab_size=tokens.vocab_size,
            token_dtype=config.token_dtype,
            prefix=tokens.prefix,
            suffix=tokens.end_ids,
            **parse_args,
        )
        documents = records.map(parse)
    fit = TruncateDocuments if config.truncate_documents else SplitDocuments
    documents = documents.map(fit(config.row_length))
    local_batch_size = config.global_batch_size // host_count
    overlaps = config.tokenize_data or source.reads_release_gil
    return PackIterDataset(
        documents.to_iter_dataset(read_options(config.read_threads, overlaps=overlaps)),
        row_length=config.row_length,
        window_rows=config.grain_packing_bin_count
        or max(local_batch_size, MIN_PACKING_WINDOW_ROWS),
        algorithm=config.placement,
        shift_target=config.shift_target,
        first_input_id=tokens.first_input_id,
        eod_id=tokens.eod_id if not config.tokenize_data else None,
        empty_block_limit=blocks.blocks_per_epoch,
        name=input.name,
        first_window_rows=local_batch_size,
        compact=compact,
        group_rows=group_rows,
    )


class OnlineReader(ReaderBase):
    """Local batches of one source, or of a weighted mixture, packed while reading."""

    state_is_host_independent = False

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
        refuse_online_stages(stages)
        # Every record gives exactly one row: all hosts make as many, positions follow steps.
        self.one_row_per_record = all(
            i.config.placement == "none" and i.config.truncate_documents for i in self.inputs
        )
        self.ends_unevenly = settings.num_epochs is not None and not self.one_row_per_record
        in_mixture = len(self.inputs) > 1
        per_epoch = [records_per_epoch(i, in_mixture=in_mixture) for i in self.inputs]
        self.steps_per_epoch = None
        if self.one_row_per_record and not in_mixture and schedule.is_constant:
            self.steps_per_epoch = per_epoch[0] // settings.global_batch_size
        real = [min(p, len(i.source)) for p, i in zip(per_epoch, self.inputs, strict=True)]
        self.dataset_size = per_epoch[0] if not in_mixture else mixture_records(real, weights)
        self.report = {"records_per_epoch": dict(zip(self.names, per_epoch, strict=True))}
        if len(self.inputs) > 1 and settings.num_epochs is not None:
            LOGGER.warning(
                "A mixture with num_epochs=%d ends when its first source runs out.",
                settings.num_epochs,
            )

    @functools.cached_property
    def setup(self) -> dict[str, Any]:
        """What a saved state depends on (taken when first saved or restored: identifying the
        data reads a little of every file)."""
        return pipeline_setup(
            [i.config for i in self.inputs],
            [i.source.identity() for i in self.inputs],
            [i.tokenizer_fingerprint for i in self.inputs],
            self.weights,
            host_index=self.host_index,
            host_count=self.host_count,
        )

    def first_position(self, step: int) -> int:
        """This host's record position at `step`, where rows map 1:1 to records."""
        if step == 0:
            return 0
        if len(self.inputs) > 1 or not self.one_row_per_record:
            raise ConfigError(
                f"start_from_step={step} needs one record per row: one config with "
                "grain_packing=False and truncate_documents=True (memmap windows too: "
                "truncation cuts nothing from a window that fits its row). With packing, "
                "mixing or documents that may split, the records behind a step depend on the "
                "data. Restore a saved state with iterator.set_state(...) instead: it is exact "
                "and as fast."
            )
        return self.schedule.rows_before(step) // self.host_count

    def batches(self, first_step: int, finish: Finish | None = None) -> grain.IterDataset:
        position = self.first_position(first_step)
        mixture = len(self.inputs) > 1
        rows = [
            document_rows(
                i,
                host_index=self.host_index,
                host_count=self.host_count,
                first_position=position,
                compact=self.compact,
                in_mixture=mixture,
                group_rows=1 if mixture else self.schedule.group_rows,
            )
            for i in self.inputs
        ]
        # One source's packer hands out whole groups; mixed rows are grouped after mixing.
        groups = self._mixed_groups(rows) if mixture else rows[0]
        # Worker processes hand plain arrays to the parent, through Grain's shared memory.
        plain = self.settings.worker_count > 0
        groups = in_worker_processes(
            groups.map(Rows.as_group) if plain else groups,
            self.settings.worker_count,
            self.settings.worker_buffer_size,
        )
        groups = groups.map(Rows.of_group) if plain else groups
        batches = BatchIterDataset(
            groups,
            self.schedule,
            pad_remainder=not self.drop_remainder,
            first_step=first_step,
            skip_steps=self.skips.steps,
            finish=finish,
        )
        LOGGER.info(
            "Input pipeline on host %d of %d:\n%s", self.host_index, self.host_count, batches
        )
        return batches

    def _mixed_groups(self, rows: list[grain.IterDataset]) -> grain.IterDataset:
        if self.stages and len({s.weights for s in self.stages}) > 1:
            stages = [(s.start_step, s.weights) for s in self.stages]
            mixed = StagedMixIterDataset(rows, stages, self.schedule)
        else:
            mixed = grain.IterDataset.mix(rows, self.weights)
        return row_groups(mixed, self.schedule)

    def step_metrics(self, step: int) -> None:
        """None: an online batch's figures are only known to the host that made it."""
        return None

    def documents_at(self, step: int) -> list[dict[str, Any]]:
        raise ConfigError(
            "documents_at needs a global plan (plan='global'): an online batch depends on "
            "everything read before it, so its documents are not known without replaying."
        )

    def save(self, step: int, pipeline_state: Any) -> dict[str, Any]:
        state = {"setup": self.setup, "pipeline": pipeline_state}
        if self.skips:
            state["skips"] = self.skips.before(step)
        return state | {"checksum": state_checksum(step, state)}

    def load(self, state: dict[str, Any]) -> tuple[int, Any]:
        missing = [key for key in ("step", "setup", "pipeline", "checksum") if key not in state]
        if missing:
            raise ConfigError(
                f"Cannot restore the data iterator: the state lacks {missing}; it is not a "
                "state of an online reader (plan='online')."
            )
        saved = {key: state[key] for key in ("setup", "pipeline", "skips") if key in state}
        if state["checksum"] != state_checksum(state["step"], saved):
            raise ConfigError(
                "Cannot restore the data iterator: the state was changed after it was saved "
                "(its checksum does not match); restore the state as get_state() returned it."
            )
        differences = setup_differences(state["setup"], self.setup)
        if differences:
            raise ConfigError(
                "Cannot restore the data iterator: the state was saved with another setup ("
                + "; ".join(differences)
                + "). Restore with the setup it was saved with; resuming on another number of "
                "hosts needs plan='global'."
            )
        self.skips.check_restore(state, state["step"])
        return state["step"], state["pipeline"]


def state_checksum(step: int, state: dict[str, Any]) -> str:
    """A hash of a state as JSON, so that a state changed by hand (or damaged) is refused
    instead of silently skipping or repeating data."""
    text = json.dumps([step, state], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()
