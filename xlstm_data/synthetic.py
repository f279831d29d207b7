"""Synthetic batches made on the devices: a data loader that costs nothing, for measuring and
debugging training steps apart from the input pipeline (xlstm-jax's synthetic data)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar, TypeVar

import jax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from xlstm_data.config.base import require, train_eval_configs
from xlstm_data.llm_batch import LLMBatch
from xlstm_data.sharding import data_axes

T = TypeVar("T", bound="SyntheticDataConfig")


@dataclasses.dataclass(kw_only=True)
class SyntheticDataConfig:
    """`num_batches` identical batches per epoch: tokens and positions 0, one document per row."""

    type_names: ClassVar[tuple[str, ...]] = ("synthetic",)

    global_batch_size: int
    max_target_length: int
    num_batches: int = 100
    """Batches per epoch (per `for` loop)."""
    shuffle_data: bool = False
    """Accepted for symmetry with the other configs; synthetic batches have no order."""
    data_shuffle_seed: int = 42
    name: str | None = None
    data_config_type: str | None = "synthetic"

    def __post_init__(self) -> None:
        for field in ("global_batch_size", "max_target_length", "num_batches"):
            require(self, field, getattr(self, field) >= 1, "must be at least 1")

    @classmethod
    def create_train_eval_configs(
        cls: type[T],
        train_kwargs: dict | None = None,
        eval_kwargs: dict | None = None,
        **kwargs: Any,
    ) -> tuple[T, T]:
        """A training and an evaluation config that share `kwargs` (see DataConfig's)."""
        return train_eval_configs(cls, train_kwargs, eval_kwargs, kwargs)


def synthetic_batch(config: SyntheticDataConfig) -> LLMBatch:
    shape = (config.global_batch_size, config.max_target_length)
    zeros, ones = jnp.zeros(shape, jnp.int32), jnp.ones(shape, jnp.int32)
    return LLMBatch(
        inputs=zeros,
        targets=zeros,
        inputs_position=zeros,
        inputs_segmentation=ones,
        targets_position=zeros,
        targets_segmentation=ones,
    )


class SyntheticDataIterator:
    """`config.num_batches` batches per `for` loop, made by one compiled function directly
    sharded over `data_axis_names` (default: the mesh's data axes)."""

    def __init__(
        self,
        config: SyntheticDataConfig,
        mesh: Mesh,
        data_axis_names: Sequence[str] | None = None,
    ):
        self.config = config
        self.mesh = mesh
        self.num_batches = config.num_batches
        sharding = NamedSharding(mesh, PartitionSpec(data_axes(mesh, data_axis_names)))
        self._generate = jax.jit(lambda: synthetic_batch(config), out_shardings=sharding)
        self._step = 0

    @property
    def dataset_size(self) -> int:
        """Rows per epoch."""
        return self.num_batches * self.config.global_batch_size

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> SyntheticDataIterator:
        self._step = 0
        return self

    def __next__(self) -> LLMBatch:
        if self._step >= self.num_batches:
            raise StopIteration
        self._step += 1
        return self._generate()
