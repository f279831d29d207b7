"""Batches: `LLMBatch`, the six int32 arrays a language-model training step consumes.

The classes and their methods follow `xlstm_jax.dataset.batch`, so model code written against
it runs unchanged: keyword-only pytree dataclasses, `get_document_borders`, border-keeping
slices, `from_inputs`, `get_dtype_struct` and `get_sample`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import numpy as np

from xlstm_data.stages.shift import BATCH_FIELDS

B = TypeVar("B", bound="LLMBatch")

_ARRAY_TYPES = (np.ndarray, jax.Array)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Batch:
    """Inputs and targets, [batch, length] each."""

    inputs: jax.Array
    targets: jax.Array

    def __getitem__(self, key: Any) -> Batch:
        """The rows (or rows and columns) selected by `key` of every array field."""
        return dataclasses.replace(self, **_indexed(self, key))


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True, kw_only=True)
class LLMBatch(Batch):
    """Inputs and targets with their positions and segmentations, [batch, length] each.

    Segmentation numbers the documents of a row 1, 2, …; 0 marks padding. Positions count
    from 0 within each document. Packed example (documents [1,2,3] and [4,5], EOD token E,
    pad 0, length 8, inputs shifted right):

        targets:              [1, 2, 3, E, 4, 5, E, 0]
        inputs:               [E, 1, 2, 3, E, 4, 5, E]
        targets_segmentation: [1, 1, 1, 1, 2, 2, 2, 0]
        inputs_segmentation:  [1, 1, 1, 1, 2, 2, 2, 0]
        targets_position:     [0, 1, 2, 3, 0, 1, 2, 0]
        inputs_position:      [0, 1, 2, 3, 0, 1, 2, 0]
        document borders:     [1, 0, 0, 0, 1, 0, 0, 1]
    """

    inputs_position: jax.Array
    inputs_segmentation: jax.Array
    targets_position: jax.Array
    targets_segmentation: jax.Array
    _document_borders: jax.Array | None = None
    """Borders of the batch this one was sliced from (None: computed from the segmentation)."""

    def get_document_borders(self) -> jax.Array:
        """True where a new document (or the padding after one) starts in the inputs; the
        first column is a border, except in a slice, which keeps its original's borders."""
        if self._document_borders is not None:
            return self._document_borders
        segmentation = self.inputs_segmentation
        changes = segmentation[:, 1:] != segmentation[:, :-1]
        first = jnp.ones((segmentation.shape[0], 1), dtype=bool)
        return jnp.concatenate([first, changes], axis=1)

    def __getitem__(self, key: Any) -> B:
        """Rows, or rows and columns (`batch[:, a:b]`), of every field. A slice keeps the
        document borders of the whole batch (its first column is not a border unless a
        document starts there); 1-D fields take only the leading part of a tuple key."""
        borders = self.get_document_borders()
        return dataclasses.replace(
            self, **_indexed(self, key), _document_borders=_index(borders, key)
        )

    @staticmethod
    def from_inputs(inputs: np.ndarray, targets: np.ndarray | None = None) -> LLMBatch:
        """A batch of unpacked rows (one document each, no padding); without `targets` the
        inputs are the targets shifted right by one (0 in front)."""
        if targets is None:
            targets = inputs
            inputs = np.pad(inputs, ((0, 0), (1, 0)))[:, :-1]
        position = np.broadcast_to(np.arange(inputs.shape[1], dtype=np.int32), inputs.shape)
        segmentation = np.ones(inputs.shape, dtype=np.int32)
        return LLMBatch(
            inputs=inputs,
            targets=targets,
            inputs_position=position,
            inputs_segmentation=segmentation,
            targets_position=position,
            targets_segmentation=segmentation,
        )

    @staticmethod
    def get_dtype_struct(batch_size: int, max_length: int) -> LLMBatch:
        """Shapes and dtypes of a batch, for jit tracing and checkpoint templates."""
        spec = jax.ShapeDtypeStruct((batch_size, max_length), jnp.int32)
        return LLMBatch(**dict.fromkeys(BATCH_FIELDS, spec))

    @classmethod
    def get_sample(cls: type[B], batch_size: int, max_length: int) -> B:
        """A batch of zeros with the shapes of `get_dtype_struct`, e.g. to initialise a model."""
        return jax.tree.map(jnp.zeros_like, cls.get_dtype_struct(batch_size, max_length))


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True, kw_only=True)
class LLMIndexedBatch(LLMBatch):
    """An `LLMBatch` whose rows say which document and which of its sequences they hold
    (evaluation harnesses score documents split over several rows); document_idx 0: padding."""

    document_idx: jax.Array
    sequence_idx: jax.Array

    @staticmethod
    def from_inputs(
        inputs: np.ndarray,
        document_idx: np.ndarray,
        sequence_idx: np.ndarray,
        targets: np.ndarray | None = None,
    ) -> LLMIndexedBatch:
        batch = LLMBatch.from_inputs(inputs, targets)
        return LLMIndexedBatch(**vars(batch), document_idx=document_idx, sequence_idx=sequence_idx)

    @staticmethod
    def get_dtype_struct(batch_size: int, max_length: int) -> LLMIndexedBatch:
        spec = jax.ShapeDtypeStruct((batch_size, max_length), jnp.int32)
        rows = jax.ShapeDtypeStruct((batch_size,), jnp.int32)
        return LLMIndexedBatch(
            **dict.fromkeys(BATCH_FIELDS, spec), document_idx=rows, sequence_idx=rows
        )


def _index(array: Any, key: Any) -> Any:
    """`array[key]`, a tuple key cut to the array's dimensions (1-D fields of a 2-D slice)."""
    if not isinstance(array, _ARRAY_TYPES):
        return array
    if isinstance(key, tuple):
        key = key[: array.ndim]
    return array[key]


def _indexed(batch: Batch, key: Any) -> dict[str, Any]:
    return {
        field.name: _index(getattr(batch, field.name), key)
        for field in dataclasses.fields(batch)
        if field.name != "_document_borders"
    }
