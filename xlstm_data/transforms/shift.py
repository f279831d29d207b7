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
    tokens: list[np.ndarray],
    segment_ids: list[np.ndarray],
    positions: list[np.ndarray],
    *,
    rows: int,
    shift_target: Literal["inputs", "targets", "none"],
    first_input_id: int,
) -> np.ndarray:
    """The six `LLMBatch` fields of up to `rows` rows, as one int32 array [6, rows, length].

    Fields are stacked in `BATCH_FIELDS` order so that a batch is one array (one transfer to
    the devices, one shared-memory block between processes); rows past the given ones are
    fully masked (all zeros). Each row is copied straight into place.
    """
    count, width = len(tokens), len(tokens[0])
    length = width - (shift_target == "targets")
    out = np.empty((len(BATCH_FIELDS), rows, length), dtype=np.int32)
    out[:, count:] = 0
    (
        inputs,
        targets,
        inputs_position,
        inputs_segmentation,
        targets_position,
        targets_segmentation,
    ) = out
    if shift_target == "targets":
        rows_tokens = np.stack(tokens)
        rows_segments = np.stack(segment_ids)
        inputs[:count], targets[:count] = rows_tokens[:, :-1], rows_tokens[:, 1:]
        np.stack([p[:-1] for p in positions], out=inputs_position[:count])
        inputs_segmentation[:count] = rows_segments[:, :-1]
        # A target in another document than its input is masked: predicting a new document
        # from the previous one's end would leak across them.
        same = (rows_segments[:, 1:] == rows_segments[:, :-1]) & (rows_segments[:, :-1] > 0)
        np.multiply(inputs_position[:count], same, out=targets_position[:count])
        np.multiply(inputs_segmentation[:count], same, out=targets_segmentation[:count])
        return out
    np.stack(tokens, out=targets[:count])
    np.stack(segment_ids, out=targets_segmentation[:count])
    np.stack(positions, out=targets_position[:count])
    if shift_target == "inputs":
        # Rows start with a document unless they are empty (fully masked, all zero).
        inputs[:count, 0] = (targets_segmentation[:count, 0] > 0) * first_input_id
        inputs[:count, 1:] = targets[:count, :-1]
    else:
        inputs[:count] = targets[:count]
    inputs_position[:count] = targets_position[:count]
    inputs_segmentation[:count] = targets_segmentation[:count]
    return out
