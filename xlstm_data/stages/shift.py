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

from xlstm_data.buffers import field_planes

BATCH_FIELDS = (
    "inputs",
    "targets",
    "inputs_position",
    "inputs_segmentation",
    "targets_position",
    "targets_segmentation",
)


# Which slot of a stacked batch [rows, fields, length] holds each of BATCH_FIELDS. Unless the
# targets shift left, inputs and targets share positions and segmentation, so a batch stacks
# only four arrays. Rows come first, so consecutive rows of a window are one contiguous slice.
SHARED_LAYOUT = (0, 1, 2, 3, 2, 3)
FULL_LAYOUT = (0, 1, 2, 3, 4, 5)
# The compact layout holds only the targets (slot 0) and their segmentation (slot 1): inputs
# are the targets shifted and positions follow from the segmentation, so the devices derive
# them (`expand_compact`), and half the bytes cross from the host.
COMPACT_FIELDS = 2


def stacked_field_count(
    shift_target: Literal["inputs", "targets", "none"], compact: bool = False
) -> int:
    """Arrays in a stacked batch: 6 when the targets shift left, else 4 (2 when compact)."""
    if shift_target == "targets":
        return len(FULL_LAYOUT)
    return COMPACT_FIELDS if compact else len(set(SHARED_LAYOUT))


def expand_compact(
    targets, segments, *, shift_target: Literal["inputs", "none"], first_input_id: int, xp=np
):
    """(inputs, targets, positions, segmentation) from the compact fields, with numpy or
    `jax.numpy` (`xp`): positions count from 0 at the start of each segment."""
    if shift_target == "inputs":
        first = (segments[:, :1] > 0) * first_input_id
        inputs = xp.concatenate([first.astype(targets.dtype), targets[:, :-1]], axis=1)
    else:
        inputs = targets
    index = xp.broadcast_to(xp.arange(targets.shape[1], dtype=targets.dtype), targets.shape)
    starts = xp.concatenate(
        [xp.ones_like(segments[:, :1], dtype=bool), segments[:, 1:] != segments[:, :-1]], axis=1
    )
    last_start = _running_max(xp.where(starts, index, 0), xp)
    positions = xp.where(segments > 0, index - last_start, 0).astype(targets.dtype)
    return inputs, targets, positions, segments


def _running_max(values, xp):
    if xp is np:
        return np.maximum.accumulate(values, axis=1)
    import jax

    return jax.lax.associative_scan(xp.maximum, values, axis=1)


def layout(fields: np.ndarray) -> tuple[int, ...]:
    """Slot of `fields` (a stacked batch [rows, 4 or 6, length], or one row [4 or 6, length])
    that holds each of BATCH_FIELDS."""
    return FULL_LAYOUT if fields.shape[-2] == len(FULL_LAYOUT) else SHARED_LAYOUT


def field(fields: np.ndarray, name: str) -> np.ndarray:
    """The named `LLMBatch` field of a stacked batch ([rows, length]) or of one row."""
    return fields[..., layout(fields)[BATCH_FIELDS.index(name)], :]


def shift_rows(
    tokens: np.ndarray,
    segment_ids: np.ndarray,
    positions: np.ndarray,
    *,
    shift_target: Literal["inputs", "targets", "none"],
    first_input_id: int,
) -> np.ndarray:
    """The `LLMBatch` fields of rows [rows, row length] as one stacked int32 array
    [rows, 4 or 6, length] (see `layout`): one block to transfer to the devices or to pass
    between processes. Fully masked rows (segment ids all 0) come out all zero."""
    count, width = tokens.shape
    if shift_target == "targets":
        out = field_planes(count, len(FULL_LAYOUT), width - 1)
        (
            inputs,
            targets,
            inputs_position,
            inputs_segmentation,
            targets_position,
            targets_segmentation,
        ) = out.transpose(1, 0, 2)
        inputs[:], targets[:] = tokens[:, :-1], tokens[:, 1:]
        inputs_position[:], inputs_segmentation[:] = positions[:, :-1], segment_ids[:, :-1]
        # A target in another document than its input is masked: predicting a new document
        # from the previous one's end would leak across them.
        same = (segment_ids[:, 1:] == segment_ids[:, :-1]) & (segment_ids[:, :-1] > 0)
        np.multiply(inputs_position, same, out=targets_position)
        np.multiply(inputs_segmentation, same, out=targets_segmentation)
        return out
    out = field_planes(count, stacked_field_count(shift_target), width)
    out[:, 1], out[:, 2], out[:, 3] = tokens, positions, segment_ids
    shift_inputs(
        tokens, segment_ids, out=out[:, 0], shift_target=shift_target,
        first_input_id=first_input_id,
    )  # fmt: skip
    return out


def shift_inputs(
    targets: np.ndarray,
    segments: np.ndarray,
    *,
    out: np.ndarray,
    shift_target: Literal["inputs", "none"],
    first_input_id: int,
) -> None:
    """Writes the inputs of rows [rows, length] into `out` from their targets and segmentation.

    `targets` and `out` should not start a multiple of 4 KiB apart: a copy one token over
    between two such blocks stalls on 4K aliasing (10x slower here); `field_planes` places
    the fields of a stacked batch half a page apart.
    """
    if shift_target == "inputs":
        # Rows start with a document unless they are empty (fully masked, all zero).
        out[:, 0] = (segments[:, 0] > 0) * first_input_id
        out[:, 1:] = targets[:, :-1]
    else:
        out[:] = targets
