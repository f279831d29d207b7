"""The public entry points, each a short recipe: configs → settings → reader → loader.

`make_grain_iterator` gives global, mesh-sharded batches of one config or a weighted mixture;
`preprocess_dataset` gives one host's local batches of one dataset (xlstm-jax's signature).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grain
import jax
from jax.sharding import Mesh

from xlstm_data.config import DataConfig
from xlstm_data.config.schedule import resolve_stages
from xlstm_data.config.settings import check_weights, loader_settings
from xlstm_data.errors import ConfigError
from xlstm_data.loader import MultiHostDataLoadIterator
from xlstm_data.readers.inputs import Input, open_input, open_inputs
from xlstm_data.readers.online import OnlineReader
from xlstm_data.readers.plan.parallel import Workers
from xlstm_data.readers.plan.reader import PlanReader
from xlstm_data.schedule import BatchSchedule
from xlstm_data.sharding import data_axes, data_parallel_size
from xlstm_data.sources.adapter import as_document_source

READERS = {"online": OnlineReader, "global": PlanReader}


def _check_batch_divisible(global_batch_size: int, host_count: int, devices: int) -> None:
    for divisor, what in (
        (host_count, "data-loading hosts (len(process_indices))"),
        (devices, "devices along the mesh's data axes"),
    ):
        if global_batch_size % divisor:
            raise ConfigError(
                f"Invalid data config: global_batch_size = {global_batch_size} is not "
                f"divisible by the {divisor} {what}; use a multiple of {divisor}."
            )


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
    `start_from_step` begins at a later step in O(1) (a global plan, or records that map 1:1
    to rows).
    """
    if jax.process_index() not in process_indices:
        raise ConfigError(
            f"Process {jax.process_index()} is not in process_indices "
            f"{list(process_indices)}; list every process that loads data."
        )
    axes = data_axes(global_mesh, data_axis_names)
    reader = build_reader(
        configs,
        dataset_weights,
        host_index=list(process_indices).index(jax.process_index()),
        host_count=len(process_indices),
        data_parallel_size=data_parallel_size(global_mesh, axes),
        # Accelerators derive inputs and positions from half the bytes; XLA's scans on the CPU
        # are slower than numpy's, so CPU devices get every field from the host.
        compact=any(device.platform != "cpu" for device in global_mesh.devices.flat),
    )
    return MultiHostDataLoadIterator(
        reader,
        global_mesh,
        data_axis_names=axes,
        device_prefetch=reader.settings.device_prefetch,
        reset_after_epoch=reset_after_epoch,
        first_step=start_from_step,
    )


def build_reader(
    configs: DataConfig | Sequence[DataConfig],
    dataset_weights: Sequence[float] | None = None,
    *,
    host_index: int = 0,
    host_count: int = 1,
    data_parallel_size: int = 1,
    compact: bool = False,
    inputs: Sequence[Input] | None = None,
    plan_workers: Workers | int | str | None = None,
) -> OnlineReader | PlanReader:
    """The reader of host `host_index` of `host_count`, without JAX devices: what
    `make_grain_iterator` runs on each host, and what `xlstm-data doctor` and `inspect` run for
    any number of simulated hosts in one process (`reader.batches(step)`: local batches).
    `inputs` are the configs' opened sources (`open_inputs`), to open them once for many hosts;
    `plan_workers` build a missing global plan (`xlstm_data.readers.plan.parallel`)."""
    configs = [configs] if isinstance(configs, DataConfig) else list(configs)
    weights = check_weights(dataset_weights, len(configs))
    settings = loader_settings(configs)
    _check_batch_divisible(settings.global_batch_size, host_count, data_parallel_size)
    inputs = open_inputs(configs) if inputs is None else inputs
    stages = None
    factors = settings.batch_rampup_factors
    if settings.schedule is not None:
        stages = resolve_stages(
            settings.schedule,
            names=[i.name for i in inputs],
            weights=weights,
            max_target_length=settings.max_target_length,
            global_batch_size=settings.global_batch_size,
        )
        # The stages' batch sizes are the schedule's ramp-up: one rule for rows per step.
        factors = {s.start_step: s.global_batch_size / settings.global_batch_size for s in stages}
    schedule = BatchSchedule(
        settings.global_batch_size,
        factors,
        host_count=host_count,
        data_parallel_size=data_parallel_size,
    )
    planned = {"plan_workers": plan_workers} if settings.reader == "global" else {}
    return READERS[settings.reader](
        inputs,
        weights,
        settings,
        schedule=schedule,
        host_index=host_index,
        host_count=host_count,
        compact=compact,
        stages=stages,
        **planned,
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

    Local batches are `(fields, counts)`: this host's rows with their `LLMBatch` fields stacked
    as one int32 array [rows, 4 or 6, length] (`stages/shift.py` names the slots), and what the
    pipeline read, packed, padded and dropped for them. Extra keyword arguments are
    `DataConfig` fields (worker_count, batch_rampup_factors, …).
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
    if config.plan != "online":
        raise ConfigError("preprocess_dataset reads with plan='online'; use make_grain_iterator.")
    settings = loader_settings([config])
    schedule = BatchSchedule(
        global_batch_size, config.batch_rampup_factors, host_count=dataloading_host_count
    )
    source = as_document_source(dataset, data_column_name)
    reader = OnlineReader(
        [open_input(config, source)],
        [1.0],
        settings,
        schedule=schedule,
        host_index=dataloading_host_index,
        host_count=dataloading_host_count,
        compact=False,
    )
    return reader.batches(0), dataset
