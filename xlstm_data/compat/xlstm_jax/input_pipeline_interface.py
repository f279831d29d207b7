"""`xlstm_jax.dataset.input_pipeline_interface`: one call from a config and a mesh to an
iterator, batches sharded over all mesh axes as xlstm-jax shards them."""

from __future__ import annotations

from collections.abc import Sequence

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from xlstm_data.api import make_grain_iterator
from xlstm_data.config import DataConfig
from xlstm_data.errors import ConfigError
from xlstm_data.loader import MultiHostDataLoadIterator
from xlstm_data.synthetic import SyntheticDataConfig, SyntheticDataIterator

DataIterator = MultiHostDataLoadIterator | SyntheticDataIterator


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """xlstm-jax's batch sharding: the batch axis split over every mesh axis together."""
    return NamedSharding(mesh, PartitionSpec(mesh.axis_names))


def get_process_loading_data(config: DataConfig | SyntheticDataConfig, mesh: Mesh) -> list[int]:
    """The processes whose devices hold rows of the global batch, in process order."""
    indices = batch_sharding(mesh).devices_indices_map((config.global_batch_size, 1))
    loading = {
        device.process_index
        for device, index in indices.items()
        if index[0].stop is None or index[0].stop <= config.global_batch_size
    }
    return sorted(loading)


def _process_indices(config: DataConfig, mesh: Mesh) -> list[int]:
    indices = get_process_loading_data(config, mesh)
    if jax.process_index() not in indices:
        raise ConfigError(
            f"Process {jax.process_index()} holds no rows of the global batch on this mesh, and "
            "every process must load the rows of its devices; shard the batch over axes that "
            "span every process (the default, P(mesh.axis_names), does)."
        )
    return indices


def create_data_iterator(config: DataConfig | SyntheticDataConfig, mesh: Mesh) -> DataIterator:
    """The iterator of one config: synthetic batches, or the data of an ArrayRecord / HF /
    other source, sharded over `P(mesh.axis_names)`."""
    if isinstance(config, SyntheticDataConfig):
        return SyntheticDataIterator(config, mesh, data_axis_names=mesh.axis_names)
    if not isinstance(config, DataConfig):
        raise ConfigError(
            f"create_data_iterator got a {type(config).__name__}; pass a SyntheticDataConfig "
            "or a DataConfig of a source (GrainArrayRecordsDataConfig, HFHubDataConfig, ...)."
        )
    return make_grain_iterator(
        config, mesh, _process_indices(config, mesh), data_axis_names=mesh.axis_names
    )


def create_mixed_data_iterator(
    configs: Sequence[DataConfig],
    mesh: Mesh,
    dataset_weights: Sequence[float] | None = None,
) -> DataIterator:
    """A weighted mixture of several configs (uniform weights by default)."""
    return make_grain_iterator(
        list(configs),
        mesh,
        _process_indices(configs[0], mesh),
        dataset_weights,
        data_axis_names=mesh.axis_names,
    )
