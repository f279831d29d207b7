"""The data path, assembled: source → records → documents → rows → batches → global arrays.

`document_rows` is the recipe for one config on one host; `make_grain_iterator` mixes the
rows of several configs, batches them, prefetches and shards the result over the mesh.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import grain
import jax
from jax.sharding import Mesh

from xlstm_data.config import DataConfig
from xlstm_data.epochs import EpochBlocks, records_per_epoch
from xlstm_data.multihost import MultiHostDataLoadIterator, data_axes
from xlstm_data.plan.pipeline import make_planned_iterator
from xlstm_data.rampup import BatchSchedule, RampupBatchIterDataset
from xlstm_data.setup_fingerprint import pipeline_setup
from xlstm_data.sources.padded import PaddedDataset
from xlstm_data.tokenizer import Tokenizer, load_tokenizer
from xlstm_data.transforms.batch import RowGroupsIterDataset
from xlstm_data.transforms.chunk import Chunk
from xlstm_data.transforms.pack import RowsIterDataset
from xlstm_data.transforms.parse import ParseText, ParseTokens, ReadRecords
from xlstm_data.transforms.shift import stacked_fields
from xlstm_data.transforms.tokenize import (
    Tokenize,
    document_special_tokens,
    eod_id,
    first_input_id,
)
from xlstm_data.workers import in_worker_processes, read_options

LOGGER = logging.getLogger(__name__)

MIN_PACKING_WINDOW_ROWS = 64

# Fields that every config of a mixture must share, since they shape the common batches.
_SHARED_FIELDS = (
    "global_batch_size",
    "max_target_length",
    "drop_remainder",
    "num_epochs",
    "batch_rampup_factors",
    "shift_target",
)


def resolve_tokenizer(config: DataConfig) -> Tokenizer | None:
    if config.tokenizer_path is None:
        return None
    return load_tokenizer(config.tokenizer_path, config.hf_access_token, config.hf_cache_dir)


def packing_window_rows(config: DataConfig, local_batch_size: int) -> int:
    return config.grain_packing_bin_count or max(local_batch_size, MIN_PACKING_WINDOW_ROWS)


def document_rows(
    config: DataConfig,
    source: Any,
    *,
    host_index: int,
    host_count: int,
    tokenizer: Tokenizer | None = None,
    first_position: int = 0,
) -> tuple[grain.IterDataset, int]:
    """Rows (`Row`) of one config on one host, and the records per epoch (all hosts).

    The recipe reads top to bottom: record keys per read block, records, texts or tokens,
    special tokens, chunks, rows.
    """
    if isinstance(source, PaddedDataset):  # the pipeline pads by itself
        source = source.dataset
    name = config.name or config.describe_source()
    num_records = len(source)
    if num_records == 0:
        raise ValueError(f"{name} has no records.")
    per_epoch = records_per_epoch(
        num_records,
        global_batch_size=config.global_batch_size,
        drop_remainder=config.drop_remainder,
        max_steps_per_epoch=config.max_steps_per_epoch,
        name=name,
    )
    padded = PaddedDataset(source, max(num_records, per_epoch), config.data_column)
    eod = eod_id(config, tokenizer)
    bos_id, end_ids = document_special_tokens(config, tokenizer)
    describe = getattr(source, "describe", None)
    parse_args = {
        "column": config.data_column,
        "num_records": num_records,
        "invalid_records": config.invalid_records,
        "describe": describe,
    }

    blocks = EpochBlocks(
        num_records=num_records,
        records_per_epoch=per_epoch,
        global_batch_size=config.global_batch_size,
        host_index=host_index,
        host_count=host_count,
        block_size=config.read_block_size,
        shuffle=config.shuffle_data,
        seed=config.data_shuffle_seed,
        num_epochs=config.num_epochs,
        first_position=first_position,
    )
    records = blocks.map(ReadRecords(padded))
    if config.tokenize_data:
        if tokenizer is None:
            raise ValueError(f"{name}: tokenize_data=True needs tokenizer_path.")
        texts = records.map(ParseText(**parse_args))
        documents = texts.map(Tokenize(tokenizer, bos_id=bos_id, end_ids=end_ids))
    else:
        vocab_size = config.vocab_size or (tokenizer.vocab_size if tokenizer else None)
        parse = ParseTokens(vocab_size=vocab_size, bos_id=bos_id, end_ids=end_ids, **parse_args)
        documents = records.map(parse)
    documents = documents.map(Chunk(config.row_length, config.truncate_documents))
    local_batch_size = config.global_batch_size // host_count
    rows = RowsIterDataset(
        documents.to_iter_dataset(read_options(config)),
        row_length=config.row_length,
        window_rows=packing_window_rows(config, local_batch_size),
        packed=config.grain_packing,
        shift_target=config.shift_target,
        first_input_id=first_input_id(config, tokenizer),
        eod_id=eod if not config.tokenize_data else None,
    )
    return rows, per_epoch


def batches(
    rows: grain.IterDataset, config: DataConfig, schedule: BatchSchedule, first_step: int = 0
) -> grain.IterDataset:
    """Local batches `(fields, counts)` from rows: group, prefetch in workers, ramp up."""
    pad_remainder = not config.drop_remainder
    groups = RowGroupsIterDataset(rows, group_rows=schedule.group_rows, pad_remainder=pad_remainder)
    return RampupBatchIterDataset(
        in_worker_processes(groups, config),
        schedule,
        pad_remainder=pad_remainder,
        first_step=first_step,
    )


def preprocess_dataset(
    dataloading_host_index: int,
    dataloading_host_count: int,
    dataset: Any,
    data_column_name: str,
    tokenize: bool,
    global_batch_size: int,
    max_target_length: int,
    shuffle: bool,
    data_shuffle_seed: int,
    tokenizer_path: str | None = None,
    hf_access_token: str | None = None,
    add_bos: bool = True,
    add_eos: bool = True,
    add_eod: bool = True,
    grain_packing: bool = False,
    grain_packing_bin_count: int | None = None,
    shift: bool = True,
    drop_remainder: bool = True,
    num_epochs: int | None = None,
    tokenizer_cache_dir: str | None = None,
    max_steps_per_epoch: int | None = None,
    eod_token_id: int | None = None,
    **config_fields: Any,
) -> tuple[grain.IterDataset, Any]:
    """One source on one host → `(IterDataset of local batches, data source)`.

    Local batches are `(fields, counts)`: the six `LLMBatch` fields as numpy arrays of this
    host's rows, and what the pipeline read, packed, padded and dropped for them. Extra keyword
    arguments are `DataConfig` fields (worker_count, batch_rampup_factors, …).
    """
    config = DataConfig(
        global_batch_size=global_batch_size,
        max_target_length=max_target_length,
        shuffle_data=shuffle,
        data_shuffle_seed=data_shuffle_seed,
        data_column=data_column_name,
        tokenize_data=tokenize,
        tokenizer_path=tokenizer_path,
        hf_access_token=hf_access_token,
        hf_cache_dir=tokenizer_cache_dir,
        add_bos=add_bos,
        add_eos=add_eos,
        add_eod=add_eod,
        grain_packing=grain_packing,
        grain_packing_bin_count=grain_packing_bin_count,
        drop_remainder=drop_remainder,
        num_epochs=num_epochs,
        max_steps_per_epoch=max_steps_per_epoch,
        eod_token_id=eod_token_id,
        **({"shift_target": "inputs" if shift else "none"} | config_fields),
    )
    tokenizer = resolve_tokenizer(config)
    schedule = BatchSchedule(
        global_batch_size, config.batch_rampup_factors, host_count=dataloading_host_count
    )
    rows, _ = document_rows(
        config,
        dataset,
        host_index=dataloading_host_index,
        host_count=dataloading_host_count,
        tokenizer=tokenizer,
    )
    return batches(rows, config, schedule), dataset


def _check_mixture(configs: Sequence[DataConfig], weights: Sequence[float] | None) -> list[float]:
    if weights is None:
        weights = [1.0] * len(configs)
    if len(weights) != len(configs):
        raise ValueError(
            f"dataset_weights has {len(weights)} entries for {len(configs)} configs; "
            "give one weight per config."
        )
    if any(not w > 0 for w in weights):
        raise ValueError(f"dataset_weights {list(weights)} must all be positive.")
    first = configs[0]
    for config in configs[1:]:
        for field in _SHARED_FIELDS:
            if getattr(config, field) != getattr(first, field):
                raise ValueError(
                    f"Invalid data config: {field} is {getattr(config, field)!r} for "
                    f"{config.name or config.describe_source()} but {getattr(first, field)!r} "
                    "for the first config; every config of a mixture must share it."
                )
    return list(weights)


def _check_batch_divisible(config: DataConfig, host_count: int, data_parallel_size: int) -> None:
    for divisor, what in (
        (host_count, "data-loading hosts (len(process_indices))"),
        (data_parallel_size, "devices along the mesh's data axes"),
    ):
        if config.global_batch_size % divisor:
            raise ValueError(
                f"Invalid data config: global_batch_size = {config.global_batch_size} is not "
                f"divisible by the {divisor} {what}; use a multiple of {divisor}."
            )


def _rows_per_host_are_fixed(configs: Sequence[DataConfig]) -> bool:
    """True when every record gives exactly one row, so all hosts make the same number."""
    return all(not c.grain_packing and c.truncate_documents for c in configs)


def _first_position(
    configs: Sequence[DataConfig], schedule: BatchSchedule, start_from_step: int
) -> int:
    """This host's record position at `start_from_step`, where rows map 1:1 to records."""
    if start_from_step == 0:
        return 0
    if len(configs) > 1 or not _rows_per_host_are_fixed(configs):
        raise ValueError(
            f"start_from_step={start_from_step} needs one record per row (one config, "
            "grain_packing=False, truncate_documents=True); with packing, splitting or mixing "
            "the records behind a step depend on the data. Restore a saved state with "
            "iterator.set_state(...) instead: it is exact and as fast."
        )
    return schedule.rows_before(start_from_step) // schedule.host_count


def make_grain_iterator(
    configs: DataConfig | Sequence[DataConfig],
    global_mesh: Mesh,
    process_indices: Sequence[int],
    dataset_weights: Sequence[float] | None = None,
    *,
    data_axis_names: Sequence[str] | None = None,
    reset_after_epoch: bool = False,
    start_from_step: int = 0,
) -> MultiHostDataLoadIterator:
    """Global batches of one config, or of a weighted mixture of several, on `global_mesh`.

    `process_indices` lists the processes that load data; this host loads share
    `process_indices.index(jax.process_index())`. The batch is sharded over the mesh axes in
    `data_axis_names` (default: the axes named data/dp/fsdp/replica/batch).
    `reset_after_epoch` restarts a finite iterator after it ends (evaluation);
    `start_from_step` begins at a later step in O(1) where records map 1:1 to rows.
    """
    configs = [configs] if isinstance(configs, DataConfig) else list(configs)
    weights = _check_mixture(configs, dataset_weights)
    first = configs[0]
    if jax.process_index() not in process_indices:
        raise ValueError(
            f"Process {jax.process_index()} is not in process_indices "
            f"{list(process_indices)}; list every process that loads data."
        )
    host_index, host_count = process_indices.index(jax.process_index()), len(process_indices)
    axes = data_axes(global_mesh, data_axis_names)
    data_parallel_size = math.prod(global_mesh.shape[a] for a in axes)
    for config in configs:
        _check_batch_divisible(config, host_count, data_parallel_size)
    schedule = BatchSchedule(
        first.global_batch_size,
        first.batch_rampup_factors,
        host_count=host_count,
        data_parallel_size=data_parallel_size,
    )
    tokenizers = [resolve_tokenizer(c) for c in configs]
    if any(c.plan == "global" for c in configs):
        first_inputs = {first_input_id(c, t) for c, t in zip(configs, tokenizers, strict=True)}
        if len(first_inputs) > 1:
            raise ValueError(
                f"The configs of a planned mixture open rows with different tokens "
                f"{sorted(first_inputs)} (their EOD ids differ); give them one tokenizer or "
                "one eod_token_id."
            )
        return make_planned_iterator(
            configs,
            weights,
            tokenizers,
            global_mesh,
            schedule=schedule,
            host_index=host_index,
            host_count=host_count,
            data_axis_names=axes,
            first_input_id=first_inputs.pop(),
            start_from_step=start_from_step,
            reset_after_epoch=reset_after_epoch,
        )
    first_position = _first_position(configs, schedule, start_from_step)
    sources = [c.open_source() for c in configs]
    built = [
        document_rows(
            c,
            source,
            host_index=host_index,
            host_count=host_count,
            tokenizer=t,
            first_position=first_position,
        )
        for c, source, t in zip(configs, sources, tokenizers, strict=True)
    ]
    rows = [r for r, _ in built]
    if len(rows) > 1:
        if first.num_epochs is not None:
            LOGGER.warning(
                "A mixture with num_epochs=%d ends when its first source runs out.",
                first.num_epochs,
            )
        mixed = grain.IterDataset.mix(rows, weights)
    else:
        mixed = rows[0]
    local_batches = batches(mixed, first, schedule, first_step=start_from_step)
    fixed = _rows_per_host_are_fixed(configs)
    steps_per_epoch = None
    if fixed and len(configs) == 1 and schedule.is_constant:
        steps_per_epoch = built[0][1] // first.global_batch_size
    setup = pipeline_setup(
        configs,
        sources,
        [t.fingerprint if t else None for t in tokenizers],
        weights,
        host_index=host_index,
        host_count=host_count,
    )
    LOGGER.info("Input pipeline on host %d of %d:\n%s", host_index, host_count, local_batches)
    return MultiHostDataLoadIterator(
        local_batches,
        global_mesh,
        schedule=schedule,
        max_target_length=first.max_target_length,
        data_axis_names=axes,
        host_index=host_index,
        host_count=host_count,
        sync_end=first.num_epochs is not None and not fixed,
        drop_remainder=first.drop_remainder,
        steps_per_epoch=steps_per_epoch,
        setup=setup,
        stacked_fields=stacked_fields(first.shift_target),
        device_prefetch=first.device_prefetch,
        reset_after_epoch=reset_after_epoch,
        first_step=start_from_step,
    )
