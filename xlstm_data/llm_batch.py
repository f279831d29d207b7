"""`LLMBatch`: the six int32 arrays a language-model training step consumes."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class LLMBatch:
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
    """

    inputs: jax.Array
    targets: jax.Array
    inputs_position: jax.Array
    inputs_segmentation: jax.Array
    targets_position: jax.Array
    targets_segmentation: jax.Array

    def get_document_borders(self) -> jax.Array:
        """True where a new document starts in the inputs (first column included)."""
        segmentation = self.inputs_segmentation
        changes = segmentation[:, 1:] != segmentation[:, :-1]
        first = jnp.ones((segmentation.shape[0], 1), dtype=bool)
        return jnp.concatenate([first, changes], axis=1)

    def __getitem__(self, key) -> LLMBatch:
        """The rows selected by `key` (an index, slice or mask) of every field."""
        return LLMBatch(**{f.name: getattr(self, f.name)[key] for f in dataclasses.fields(self)})

    @staticmethod
    def from_inputs(inputs: np.ndarray, targets: np.ndarray | None = None) -> LLMBatch:
        """A batch of unpacked rows (one document each, no padding), shifting if needed."""
        if targets is None:
            targets = inputs
            inputs = np.pad(inputs, ((0, 0), (1, 0)))[:, :-1]
        position = np.broadcast_to(np.arange(inputs.shape[1], dtype=np.int32), inputs.shape)
        segmentation = np.ones(inputs.shape, dtype=np.int32)
        return LLMBatch(inputs, targets, position, segmentation, position, segmentation)

    @staticmethod
    def get_dtype_struct(batch_size: int, max_length: int) -> LLMBatch:
        """Shapes and dtypes of a batch, for jit tracing and checkpoint templates."""
        spec = jax.ShapeDtypeStruct((batch_size, max_length), jnp.int32)
        return LLMBatch(spec, spec, spec, spec, spec, spec)
