"""Batched tokenization and special tokens (BOS, EOS, end-of-document)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from xlstm_data.documents import Documents
from xlstm_data.tokenizer import Tokenizer
from xlstm_data.transforms.parse import TextBlock, count_empty_documents

if TYPE_CHECKING:
    from xlstm_data.config import DataConfig

LOGGER = logging.getLogger(__name__)


class Tokenize:
    """Grain map: a block of texts → token documents with BOS/EOS/EOD, in one batched call."""

    def __init__(self, tokenizer: Tokenizer, *, bos_id: int | None, end_ids: tuple[int, ...]):
        self.tokenizer = tokenizer
        self.prefix = () if bos_id is None else (bos_id,)
        self.suffix = end_ids

    def __call__(self, block: TextBlock) -> Documents:
        documents = self.tokenizer.encode_batch(block.texts, prefix=self.prefix, suffix=self.suffix)
        documents.counts = block.counts
        count_empty_documents(documents)
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


def eod_id(config: DataConfig, tokenizer: Tokenizer | None) -> int | None:
    """The configured end-of-document id, else the tokenizer's EOS id."""
    if config.eod_token_id is not None:
        if tokenizer is not None and tokenizer.eos_id not in (None, config.eod_token_id):
            LOGGER.warning(
                "eod_token_id=%d differs from the tokenizer's EOS id %d; using %d.",
                config.eod_token_id,
                tokenizer.eos_id,
                config.eod_token_id,
            )
        return config.eod_token_id
    return tokenizer.eos_id if tokenizer is not None else None


def document_special_tokens(
    config: DataConfig, tokenizer: Tokenizer | None
) -> tuple[int | None, tuple[int, ...]]:
    """(BOS id or None, ids appended to every document) that `config` asks for."""
    return special_token_ids(
        tokenizer=tokenizer,
        add_bos=config.add_bos,
        add_eos=config.add_eos,
        add_eod=config.add_eod,
        eod_token_id=eod_id(config, tokenizer),
    )


def first_input_id(config: DataConfig, tokenizer: Tokenizer | None) -> int:
    """The token that opens every shifted input row: EOD, else BOS, else 0."""
    eod = eod_id(config, tokenizer)
    if eod is not None:
        return eod
    if tokenizer is not None and tokenizer.bos_id is not None:
        return tokenizer.bos_id
    return 0
