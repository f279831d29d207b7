"""Batched tokenization and special tokens (BOS, EOS, end-of-document)."""

from __future__ import annotations

import numpy as np

from xlstm_data.documents import TOKEN_DTYPE, Documents
from xlstm_data.tokenizer import Tokenizer
from xlstm_data.transforms.parse import TextBlock


def count_empty_documents(documents: Documents) -> None:
    """Counts real documents without tokens (padding and skipped records are counted already)."""
    counts = documents.counts
    empty = int((documents.lengths == 0).sum())
    counts["empty_documents"] += empty - counts["padding_records"] - counts["invalid_records"]


def add_special_tokens(
    documents: Documents, *, bos_id: int | None, end_ids: tuple[int, ...]
) -> Documents:
    """Prepends `bos_id` (if given) and appends `end_ids` (EOS and/or EOD) to every document.

    Empty documents stay empty: a record without text does not become a lone EOD.
    """
    lengths = documents.lengths
    keep = lengths > 0
    n_start = int(bos_id is not None)
    n_end = len(end_ids)
    new_lengths = np.where(keep, lengths + n_start + n_end, 0)
    new_starts = np.cumsum(new_lengths) - new_lengths
    out = np.empty(int(new_lengths.sum()), dtype=TOKEN_DTYPE)
    shift = np.repeat(new_starts + n_start - documents.starts, lengths)
    out[np.arange(len(documents.tokens)) + shift] = documents.tokens
    if bos_id is not None:
        out[new_starts[keep]] = bos_id
    ends = (new_starts + new_lengths)[keep]
    for k, token_id in enumerate(end_ids):
        out[ends - n_end + k] = token_id
    return Documents(out, new_lengths, documents.counts)


class AddSpecialTokens:
    """Grain map: adds BOS / EOS / EOD ids to every document of a block."""

    def __init__(self, *, bos_id: int | None, end_ids: tuple[int, ...]):
        self.bos_id = bos_id
        self.end_ids = end_ids

    def __call__(self, documents: Documents) -> Documents:
        count_empty_documents(documents)
        if self.bos_id is None and not self.end_ids:
            return documents
        return add_special_tokens(documents, bos_id=self.bos_id, end_ids=self.end_ids)


class Tokenize:
    """Grain map: a block of texts → token documents, with one batched tokenizer call."""

    def __init__(self, tokenizer: Tokenizer):
        self.tokenizer = tokenizer

    def __call__(self, block: TextBlock) -> Documents:
        documents = self.tokenizer.encode_batch(block.texts)
        documents.counts = block.counts
        return documents


def special_token_ids(
    *,
    tokenizer: Tokenizer | None,
    add_bos: bool,
    add_eos: bool,
    add_eod: bool,
    eod_token_id: int | None,
) -> tuple[int | None, tuple[int, ...]]:
    """(BOS id or None, ids appended to every document), with clear errors for missing ids.

    EOS and EOD are appended once, not twice, when they are the same token.
    """

    def require(token_id: int | None, what: str) -> int:
        if token_id is None:
            raise ValueError(
                f"{what} is requested but the tokenizer "
                f"({tokenizer}) has no such token; set it to False."
            )
        return token_id

    bos_id = require(tokenizer.bos_id if tokenizer else None, "add_bos") if add_bos else None
    end_ids: list[int] = []
    if add_eos:
        end_ids.append(require(tokenizer.eos_id if tokenizer else None, "add_eos"))
    if add_eod:
        if eod_token_id is None:
            raise ValueError(
                "add_eod=True needs an end-of-document id: set eod_token_id or a "
                "tokenizer_path whose tokenizer has an EOS token."
            )
        if eod_token_id not in end_ids:
            end_ids.append(eod_token_id)
    return bos_id, tuple(end_ids)
