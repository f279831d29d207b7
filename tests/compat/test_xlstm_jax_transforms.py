"""xlstm-jax's `tests/dataset/test_grain_transforms.py`, rewritten from its behaviour, and the
other per-example transforms of `compat.xlstm_jax.grain_transforms`."""

import numpy as np
import pytest

from xlstm_data.compat.xlstm_jax import load_tokenizer
from xlstm_data.compat.xlstm_jax.batch import LLMBatch
from xlstm_data.compat.xlstm_jax.grain_transforms import (
    AddEODToken,
    CollateToBatch,
    HFNormalizeFeatures,
    HFTokenize,
    InferSegmentations,
    PadToMaxLength,
    ParseArrayRecords,
    ParseTokenizedArrayRecords,
    ReformatLazyPacking,
    ShiftData,
    shift_left,
    shift_right,
)

E, P = "E", "P"
ROWS = [
    [1, 2, E, 2, 5, 4, 3, E, 5, 4, 2],
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
    [E, E, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, E],
    [1, 2, 3, E, P, P, P, P, P, P, P],
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, P],
    [9, 8, 7, 6, 5, 4, 3, 2, 1, 2, 3],
    [E, 1, E, 2, 5, 3, E, 5, 3, E, P],
]
SEGMENTS = [
    [1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 3],
    [1] * 11,
    [1] + [2] * 10,
    [1] * 10 + [2],
    [1, 1, 1, 2] + [0] * 7,
    [1] * 10 + [0],
    [1] * 11,
    [1, 1, 2, 2, 2, 2, 3, 3, 3, 4, 0],
]
POSITIONS = [
    [0, 1, 0, 1, 2, 3, 4, 0, 1, 2, 3],
    list(range(11)),
    [0, 0, *range(1, 10)],
    [*range(10), 0],
    [0, 1, 2, 0] + [0] * 7,
    [*range(10), 0],
    list(range(11)),
    [0, 1, 0, 1, 2, 3, 0, 1, 2, 0, 0],
]


def example(eod_idx: int) -> dict[str, np.ndarray]:
    pad_idx = -1 if eod_idx == 0 else 0
    inputs = np.array(
        [[eod_idx if t == E else pad_idx if t == P else t for t in row] for row in ROWS],
        dtype=np.int32,
    )
    segmentation = (inputs != pad_idx).astype(np.int32)
    positions = np.tile(np.arange(11, dtype=np.int32), (8, 1))
    return {
        "inputs": inputs,
        "targets": inputs,
        "inputs_segmentation": segmentation,
        "targets_segmentation": segmentation,
        "inputs_position": positions,
        "targets_position": positions,
    }


@pytest.mark.parametrize("eod_idx", [0, 100, 50234])
def test_infer_segmentations(eod_idx):
    batch = example(eod_idx)
    inputs = batch["inputs"].copy()
    transform = InferSegmentations(eod_token_id=eod_idx)
    rows = [transform.map({k: v[i] for k, v in example(eod_idx).items()}) for i in range(8)]
    returned = transform.map(batch)
    assert returned is batch  # refined in place, as xlstm-jax's transforms are
    np.testing.assert_array_equal(batch["inputs"], inputs)
    for side in ("inputs", "targets"):
        np.testing.assert_array_equal(batch[f"{side}_segmentation"], SEGMENTS)
        np.testing.assert_array_equal(batch[f"{side}_position"], POSITIONS)
        stacked = np.stack([r[f"{side}_segmentation"] for r in rows])
        np.testing.assert_array_equal(stacked, SEGMENTS)  # row by row gives the same


def test_shifts_keep_the_shape():
    x = np.arange(12).reshape(3, 4)
    np.testing.assert_array_equal(shift_right(x, axis=-1, padding_value=7)[:, 0], [7, 7, 7])
    np.testing.assert_array_equal(shift_right(x, axis=1)[:, 1:], x[:, :-1])
    np.testing.assert_array_equal(shift_right(x, pad_by_first_element=True)[:, 0], x[:, 0])
    np.testing.assert_array_equal(shift_left(x, axis=-1)[:, :-1], x[:, 1:])
    np.testing.assert_array_equal(shift_left(np.arange(3), axis=-1), [1, 2, 0])


def test_pad_shift_and_infer_give_the_pipeline_row():
    tokens = [11, 12, 13, 2]  # a document and its EOD (id 2)
    data = HFNormalizeFeatures("input_ids").map({"input_ids": tokens})
    data = PadToMaxLength(8).map(data)
    data = ShiftData(shift_target=False, eod_token_id=2, axis=-1).map(data)
    data = InferSegmentations(eod_token_id=2).map(data)
    np.testing.assert_array_equal(data["targets"], [11, 12, 13, 2, 0, 0, 0, 0])
    np.testing.assert_array_equal(data["inputs"], [2, 11, 12, 13, 2, 0, 0, 0])
    np.testing.assert_array_equal(data["targets_segmentation"], [1, 1, 1, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(data["targets_position"], [0, 1, 2, 3, 0, 0, 0, 0])
    batch = CollateToBatch(LLMBatch).map({**data, "unused": 1})
    assert isinstance(batch, LLMBatch) and batch._document_borders is None


def test_shift_targets_masks_the_last_target():
    data = PadToMaxLength(4).map(HFNormalizeFeatures("ids").map({"ids": [5, 6, 7, 8]}))
    data = ShiftData(shift_target=True, pad_token_id=0, axis=-1).map(data)
    np.testing.assert_array_equal(data["targets"], [6, 7, 8, 0])
    np.testing.assert_array_equal(data["targets_segmentation"], [1, 1, 1, 0])


def test_records_parse_and_tokens_round_trip():
    assert ParseArrayRecords("text").map("héllo".encode()) == {"text": "héllo"}
    ids = [0, 7, 65535]
    record = ParseTokenizedArrayRecords.sequence_to_bytestring(ids)
    assert ParseTokenizedArrayRecords("ids").map(record) == {"ids": ids}
    assert ParseTokenizedArrayRecords.bytestring_to_sequence(b"") == []
    with pytest.raises(ValueError, match="uint16"):
        ParseTokenizedArrayRecords.sequence_to_bytestring([70000])


def test_eod_is_added_only_below_the_length_limit():
    add = AddEODToken(eod_token_id=9, max_length=3)
    assert add.map({"ids": [1, 2]}) == {"ids": [1, 2, 9]}
    assert add.map({"ids": [1, 2, 3]}) == {"ids": [1, 2, 3]}
    assert AddEODToken(9, add_eod=False).map({"ids": [1]}) == {"ids": [1]}


def test_reformat_lazy_packing_renames_grains_fields():
    data = {"inputs_segment_ids": 1, "targets_positions": 2, "inputs": 3}
    assert ReformatLazyPacking.map(data) == {
        "inputs": 3, "inputs_segmentation": 1, "targets_position": 2
    }  # fmt: skip


def test_hf_tokenize_cuts_to_max_length_and_appends_eod(hf_tokenizer_dir):
    tokenizer = load_tokenizer(str(hf_tokenizer_dir), add_bos=False, add_eos=False)
    text = "the quick brown fox jumps over the lazy dog " * 3
    ids = tokenizer(text)["input_ids"]
    assert tokenizer.decode(ids).strip() == text.strip()
    short = HFTokenize(lambda: tokenizer, max_length=len(ids) + 5).map({"text": text})
    assert short["input_ids"] == [*ids, tokenizer.eos_token_id]
    cut = HFTokenize(lambda: tokenizer, max_length=4).map({"text": text})
    assert cut["input_ids"] == ids[:4]
