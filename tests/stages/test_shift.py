"""Shifting rows into the six LLMBatch fields."""

import numpy as np

from xlstm_data.stages.shift import BATCH_FIELDS, field, shift_rows


def shift(tokens, segments, positions, shift_target):
    fields = shift_rows(
        np.array(tokens, np.int32),
        np.array(segments, np.int32),
        np.array(positions, np.int32),
        shift_target=shift_target,
        first_input_id=9,
    )
    return {name: field(fields, name).tolist() for name in BATCH_FIELDS}


def test_shift_matches_the_documented_example():
    E = 9
    batch = shift(
        [[1, 2, 3, E, 4, 5, E, 0], [0] * 8],
        [[1, 1, 1, 1, 2, 2, 2, 0], [0] * 8],
        [[0, 1, 2, 3, 0, 1, 2, 0], [0] * 8],
        "inputs",
    )
    assert batch["targets"] == [[1, 2, 3, E, 4, 5, E, 0], [0] * 8]
    assert batch["inputs"] == [[E, 1, 2, 3, E, 4, 5, E], [0] * 8]
    assert batch["targets_segmentation"] == [[1, 1, 1, 1, 2, 2, 2, 0], [0] * 8]
    assert batch["inputs_segmentation"] == [[1, 1, 1, 1, 2, 2, 2, 0], [0] * 8]
    assert batch["targets_position"] == [[0, 1, 2, 3, 0, 1, 2, 0], [0] * 8]
    assert batch["inputs_position"] == [[0, 1, 2, 3, 0, 1, 2, 0], [0] * 8]


def test_left_shift_uses_one_more_token_and_masks_cross_document_targets():
    E = 9
    batch = shift(
        [[1, 2, E, 4, 5, E, 0, 0, 0]], [[1, 1, 1, 2, 2, 2, 0, 0, 0]],
        [[0, 1, 2, 0, 1, 2, 0, 0, 0]], "targets",
    )  # fmt: skip
    assert batch["inputs"] == [[1, 2, E, 4, 5, E, 0, 0]]
    assert batch["targets"] == [[2, E, 4, 5, E, 0, 0, 0]]
    assert batch["targets_segmentation"] == [[1, 1, 0, 2, 2, 0, 0, 0]]
    assert batch["inputs_segmentation"] == [[1, 1, 1, 2, 2, 2, 0, 0]]
    assert batch["targets_position"] == [[0, 1, 0, 0, 1, 0, 0, 0]]
    assert shift([[3, 4]], [[1, 1]], [[0, 1]], "none")["inputs"] == [[3, 4]]
