"""From packed rows to the six `LLMBatch` fields: shift, segmentations, positions.

With `shift_target="inputs"` (the default) a row holds the targets and the inputs are the
targets shifted right by one, starting with the end-of-document token:

    targets:              [1, 2, 3, E, 4, 5, E, 0]
    inputs:               [E, 1, 2, 3, E, 4, 5, E]
    targets_segmentation: [1, 1, 1, 1, 2, 2, 2, 0]   (inputs_segmentation is the same)
    targets_position:     [0, 1, 2, 3, 0, 1, 2, 0]   (inputs_position is the same)

With `shift_target="targets"` a row holds length + 1 tokens: inputs are its first `length`,
targets its last `length` (nanoGPT's x and y); a target in another segment than its input is
masked.
With `shift_target="none"` inputs and targets are the same tokens.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

BATCH_FIELDS = (
    "inputs",
    "targets",
    "inputs_position",
    "inputs_segmentation",
    "targets_position",
    "targets_segmentation",
)


def shift_rows(
    tokens: np.ndarray,
    segment_ids: np.ndarray,
    positions: np.ndarray,
    *,
    shift_target: Literal["inputs", "targets", "none"],
    first_input_id: int,
) -> dict[str, np.ndarray]:
    """The `LLMBatch` fields of rows [batch, row length], all int32, [batch, length] each."""
    if shift_target == "none":
        return {
            "inputs": tokens,
            "targets": tokens,
            "inputs_position": positions,
            "inputs_segmentation": segment_ids,
            "targets_position": positions,
            "targets_segmentation": segment_ids,
        }
    if shift_target == "inputs":
        inputs = np.empty_like(tokens)
        inputs[:, 0] = first_input_id
        inputs[:, 1:] = tokens[:, :-1]
        return {
            "inputs": inputs,
            "targets": tokens,
            "inputs_position": positions,
            "inputs_segmentation": segment_ids,
            "targets_position": positions,
            "targets_segmentation": segment_ids,
        }
    # "targets": rows hold length + 1 tokens; a target in another document than its input is
    # masked (predicting a new document from the previous one's end would leak across them).
    inputs, targets = tokens[:, :-1], tokens[:, 1:]
    same_segment = (segment_ids[:, 1:] == segment_ids[:, :-1]) & (segment_ids[:, :-1] > 0)
    input_segments, input_positions = segment_ids[:, :-1], positions[:, :-1]
    return {
        "inputs": inputs,
        "targets": targets,
        "inputs_position": input_positions,
        "inputs_segmentation": input_segments,
        "targets_position": np.where(same_segment, input_positions, 0).astype(np.int32),
        "targets_segmentation": np.where(same_segment, input_segments, 0).astype(np.int32),
    }
