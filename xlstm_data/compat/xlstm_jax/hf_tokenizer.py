"""`load_tokenizer` in xlstm-jax's form, returning a tokenizer with the HF methods xlstm-jax
code calls (`tokenizer(texts)`, `encode`, `decode`, `eos_token_id`, …)."""

from __future__ import annotations

from typing import Any

import numpy as np

from xlstm_data.tokenizer import Tokenizer
from xlstm_data.tokenizer import load_tokenizer as load_native_tokenizer


class HFStyleTokenizer:
    """An xlstm-data `Tokenizer` with the surface of a `transformers` tokenizer.

    `add_bos` / `add_eos` wrap every text encoded with special tokens (xlstm-jax passes the
    flags to `AutoTokenizer`, which for most tokenizers ignores them). `.tokenizer` is the
    xlstm-data tokenizer (batched numpy encoding).
    """

    def __init__(self, tokenizer: Tokenizer, add_bos: bool = False, add_eos: bool = False):
        self.tokenizer = tokenizer
        self.add_bos, self.add_eos = add_bos, add_eos

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    def __len__(self) -> int:
        return self.tokenizer.vocab_size

    @property
    def bos_token_id(self) -> int | None:
        return self.tokenizer.bos_id

    @property
    def eos_token_id(self) -> int | None:
        return self.tokenizer.eos_id

    @property
    def pad_token_id(self) -> int | None:
        return self.tokenizer.pad_id

    def _special(self, add_special_tokens: bool) -> dict[str, tuple[int, ...]]:
        if not add_special_tokens:
            return {}
        bos = (self.bos_token_id,) if self.add_bos and self.bos_token_id is not None else ()
        eos = (self.eos_token_id,) if self.add_eos and self.eos_token_id is not None else ()
        return {"prefix": bos, "suffix": eos}

    def encode_batch(self, texts: list[str], add_special_tokens: bool = True) -> list[list[int]]:
        documents = self.tokenizer.encode_batch(list(texts), **self._special(add_special_tokens))
        ends = np.cumsum(documents.lengths)
        return [part.tolist() for part in np.split(documents.tokens, ends[:-1])]

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return self.encode_batch([text], add_special_tokens)[0]

    def __call__(
        self, text: str | list[str], add_special_tokens: bool = True, **_: Any
    ) -> dict[str, Any]:
        """`{"input_ids": ids}` of one text, or a list of id lists for a list of texts."""
        if isinstance(text, str):
            return {"input_ids": self.encode(text, add_special_tokens)}
        return {"input_ids": self.encode_batch(text, add_special_tokens)}

    def decode(self, ids: Any, skip_special_tokens: bool = False) -> str:
        ids = [int(i) for i in np.asarray(ids).ravel()]
        if skip_special_tokens:
            special = {self.bos_token_id, self.eos_token_id, self.pad_token_id} - {None}
            ids = [i for i in ids if i not in special]
        return self.tokenizer.decode(ids)

    def batch_decode(self, sequences: Any, skip_special_tokens: bool = False) -> list[str]:
        return [self.decode(ids, skip_special_tokens) for ids in sequences]

    def __repr__(self) -> str:
        flags = f"add_bos={self.add_bos}, add_eos={self.add_eos}"
        return f"HFStyleTokenizer({self.tokenizer!r}, {flags})"


def load_tokenizer(
    tokenizer_path: str,
    add_bos: bool,
    add_eos: bool,
    hf_access_token: str | None = None,
    cache_dir: str | None = None,
) -> HFStyleTokenizer:
    """A sentencepiece `.model`, HF `tokenizer.json`, HF folder or hub name (xlstm-jax's
    argument order)."""
    native = load_native_tokenizer(tokenizer_path, hf_access_token, cache_dir)
    return HFStyleTokenizer(native, add_bos=add_bos, add_eos=add_eos)
