"""xlstm-jax's per-example Grain transformations, for pipelines built by hand from them.

Examples are dicts of numpy arrays (one row, or a batch: time is the last axis). As in
xlstm-jax, the transforms that refine fields (padding, shifting, segmentations) update the
example they are given and return it. xlstm-data's own pipeline does not use them: it parses,
packs and shifts whole blocks at once (`xlstm_data/stages/`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import grain
import numpy as np

TOKEN_DTYPE = np.int32
_UINT16_MAX = np.iinfo(np.uint16).max


class ParseArrayRecords(grain.transforms.Map):
    """UTF-8 bytes → `{column_name: text}`."""

    def __init__(self, column_name: str):
        self.column_name = column_name

    def map(self, data: bytes) -> dict[str, str]:
        return {self.column_name: data.decode()}


class ParseTokenizedArrayRecords(grain.transforms.Map):
    """uint16 token bytes (xlstm-jax's converter format) → `{column_name: [ids]}`."""

    def __init__(self, column_name: str):
        self.column_name = column_name

    def map(self, data: bytes) -> dict[str, list[int]]:
        return {self.column_name: self.bytestring_to_sequence(data)}

    @staticmethod
    def sequence_to_bytestring(sequence: list[int] | np.ndarray) -> bytes:
        array = np.asarray(sequence)
        if array.ndim != 1:
            raise ValueError(f"A token sequence must be 1-D, got shape {array.shape}.")
        if array.size and (array.max() > _UINT16_MAX or array.min() < 0):
            raise ValueError(
                f"Token ids must lie in [0, {_UINT16_MAX}] to be stored as uint16; got "
                f"[{array.min()}, {array.max()}]."
            )
        return array.astype(np.uint16).tobytes()

    @staticmethod
    def bytestring_to_sequence(bytestring: bytes) -> list[int]:
        return np.frombuffer(bytestring, dtype=np.uint16).tolist()


class HFNormalizeFeatures(grain.transforms.Map):
    """`{column_name: ids}` → `{"inputs": ids, "targets": ids}` as int32 arrays."""

    def __init__(self, column_name: str):
        self.column_name = column_name

    def map(self, features: dict[str, Any]) -> dict[str, np.ndarray]:
        values = features[self.column_name]
        return {
            "inputs": np.asarray(values, dtype=TOKEN_DTYPE),
            "targets": np.asarray(values, dtype=TOKEN_DTYPE),
        }


def _append_eod(values: list[int], eod_token_id: int, max_length: int | None) -> list[int]:
    """`values` + EOD, unless the document already fills `max_length` (it was cut there)."""
    if max_length is None or len(values) < max_length:
        return [*values, eod_token_id]
    return list(values)


@dataclasses.dataclass
class AddEODToken(grain.transforms.Map):
    """Appends `eod_token_id` to every id list shorter than `max_length`."""

    eod_token_id: int
    add_eod: bool = True
    max_length: int | None = None

    def map(self, data: dict[str, Any]) -> dict[str, Any]:
        if not self.add_eod:
            return data
        eod, length = self.eod_token_id, self.max_length
        return {key: _append_eod(list(ids), eod, length) for key, ids in data.items()}


class HFTokenize(grain.transforms.Map):
    """`{column_name: text}` → `{"input_ids": ids}`, cut to `max_length`, with EOD appended to
    documents shorter than that. The tokenizer is made on first use, so the transform pickles
    cheaply into worker processes."""

    def __init__(
        self,
        create_tokenizer_fn: Callable[[], Any],
        column_name: str = "text",
        max_length: int | None = None,
        add_eod: bool = True,
        eod_token_id: int | None = None,
    ):
        self.create_tokenizer_fn = create_tokenizer_fn
        self.column_name = column_name
        self.max_length = max_length
        self.add_eod = add_eod
        self.eod_token_id = eod_token_id
        self._tokenizer = None

    def _lazy_init(self) -> Any:
        if self._tokenizer is None:
            self._tokenizer = self.create_tokenizer_fn()
            if self.add_eod and self.eod_token_id is None:
                self.eod_token_id = self._tokenizer.eos_token_id
        return self._tokenizer

    def map(self, data: dict[str, Any]) -> dict[str, list[int]]:
        ids = self._lazy_init().encode(data[self.column_name], add_special_tokens=False)
        ids = ids[: self.max_length] if self.max_length is not None else ids
        if self.add_eod:
            ids = _append_eod(ids, self.eod_token_id, self.max_length)
        return {"input_ids": ids}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_tokenizer": None}


class PadToMaxLength(grain.transforms.Map):
    """Marks every token valid (segmentation 1, positions 0…n-1) and pads every field with
    zeros at the end to `max_length` (longer fields are left as they are)."""

    def __init__(self, max_length: int):
        self.max_length = max_length

    def map(self, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        for side in ("inputs", "targets"):
            length = len(data[side])
            data[f"{side}_segmentation"] = np.ones(length, dtype=TOKEN_DTYPE)
            data[f"{side}_position"] = np.arange(length, dtype=TOKEN_DTYPE)
        for key, value in data.items():
            missing = max(0, self.max_length - len(value))
            data[key] = np.pad(value, (0, missing))
        return data


def shift_right(
    x: np.ndarray, axis: int = 1, padding_value: int = 0, pad_by_first_element: bool = False
) -> np.ndarray:
    """`x` moved one step along `axis`: the first element is `padding_value` (or a copy of
    the first element), the last falls off."""
    axis = axis % x.ndim
    first = np.take(x, [0], axis=axis)
    pad = first if pad_by_first_element else np.full_like(first, padding_value)
    return np.concatenate([pad, np.take(x, np.arange(x.shape[axis] - 1), axis=axis)], axis=axis)


def shift_left(x: np.ndarray, axis: int = 1, padding_value: int = 0) -> np.ndarray:
    """`x` moved one step back along `axis`: the first element falls off, `padding_value`
    fills the end."""
    axis = axis % x.ndim
    rest = np.take(x, np.arange(1, x.shape[axis]), axis=axis)
    pad = np.full_like(np.take(x, [0], axis=axis), padding_value)
    return np.concatenate([rest, pad], axis=axis)


def shift_and_refine(
    x: dict[str, np.ndarray], shift_target: bool = True, axis: int = 1, padding_value: int = 0
) -> dict[str, np.ndarray]:
    """`shift_target`: targets (and their segmentation, padded with 0) move one step left;
    otherwise the inputs move one step right with `padding_value` first. Positions and the
    inputs' segmentation stay."""
    if shift_target:
        x["targets"] = shift_left(x["targets"], axis=axis, padding_value=padding_value)
        x["targets_segmentation"] = shift_left(x["targets_segmentation"], axis=axis)
    else:
        x["inputs"] = shift_right(x["inputs"], axis=axis, padding_value=padding_value)
    return x


@dataclasses.dataclass
class ShiftData(grain.transforms.Map):
    """`shift_and_refine` with the pad token for shifted targets, EOD for shifted inputs."""

    shift_target: bool = True
    eod_token_id: int = 0
    pad_token_id: int = 0
    axis: int = 1

    def map(self, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        padding = self.pad_token_id if self.shift_target else self.eod_token_id
        return shift_and_refine(
            data, shift_target=self.shift_target, axis=self.axis, padding_value=padding
        )


@dataclasses.dataclass
class InferSegmentations(grain.transforms.Map):
    """Segmentations and positions of rows holding several documents, from the EOD tokens in
    the inputs: every EOD starts a new document (position 0) and the first document is 1
    whether or not the row opens with EOD. Each side stays masked where it was padding."""

    eod_token_id: int

    def map(self, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        inputs = np.asarray(data["inputs"])
        eod = inputs == self.eod_token_id
        documents = np.cumsum(eod, axis=-1) + (~eod[..., :1])
        positions = self._get_positions(eod)
        for side in ("inputs", "targets"):
            valid = np.asarray(data[f"{side}_segmentation"]) != 0
            data[f"{side}_segmentation"] = (documents * valid).astype(TOKEN_DTYPE)
            data[f"{side}_position"] = (positions * valid).astype(TOKEN_DTYPE)
        return data

    @staticmethod
    def _get_positions(eod_mask: np.ndarray) -> np.ndarray:
        """Index since the last EOD (the EOD itself is 0), along the last axis."""
        index = np.broadcast_to(np.arange(eod_mask.shape[-1]), eod_mask.shape)
        last_eod = np.maximum.accumulate(np.where(eod_mask, index, 0), axis=-1)
        return index - last_eod


class ReformatLazyPacking(grain.transforms.Map):
    """Renames the fields of Grain's packers (`*_segment_ids`, `*_positions`) to LLMBatch's."""

    RENAMES = {
        "inputs_segment_ids": "inputs_segmentation",
        "targets_segment_ids": "targets_segmentation",
        "inputs_positions": "inputs_position",
        "targets_positions": "targets_position",
    }

    @staticmethod
    def map(data: dict[str, Any]) -> dict[str, Any]:
        for old, new in ReformatLazyPacking.RENAMES.items():
            if old in data:
                data[new] = data.pop(old)
        return data


@dataclasses.dataclass
class CollateToBatch(grain.transforms.Map):
    """A dict of fields → `batch_class(**fields)`, keys renamed by `key_map`; keys the class
    lacks are left out, fields the dict lacks take the class's defaults."""

    batch_class: type
    key_map: dict[str, str] | None = None

    def map(self, data: dict[str, Any]) -> Any:
        key_map = self.key_map or {}
        renamed = {key_map.get(k, k): v for k, v in data.items()}
        fields = {f.name for f in dataclasses.fields(self.batch_class)}
        return self.batch_class(**{k: v for k, v in renamed.items() if k in fields})
