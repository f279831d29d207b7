"""The special ids of a source: BOS / EOS / EOD around every document, the first input of a
shifted row, and the vocabulary bound; from the config, else the source, else the tokenizer."""

from __future__ import annotations

import dataclasses
import logging

from xlstm_data.config import DataConfig
from xlstm_data.errors import ConfigError
from xlstm_data.sources.protocol import TokenInfo
from xlstm_data.tokenizer import Tokenizer

LOGGER = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class SpecialTokens:
    bos_id: int | None
    """Prepended to every non-empty document (add_bos)."""
    end_ids: tuple[int, ...]
    """Appended to every non-empty document (add_eos, add_eod; EOS and EOD once if equal)."""
    eod_id: int | None
    """The end-of-document id, whether or not it is added."""
    first_input_id: int
    """Opens every shifted input row: EOD, else BOS, else 0."""
    vocab_size: int | None
    """Every id must lie below it (None: unknown)."""

    @property
    def prefix(self) -> tuple[int, ...]:
        return () if self.bos_id is None else (self.bos_id,)


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
            raise ConfigError(
                f"{what} is requested but the tokenizer ({tokenizer}) has no such token; set "
                "it to False."
            )
        return token_id

    bos_id = require(tokenizer.bos_id if tokenizer else None, "add_bos") if add_bos else None
    end_ids: list[int] = []
    if add_eos:
        end_ids.append(require(tokenizer.eos_id if tokenizer else None, "add_eos"))
    if add_eod:
        if eod_token_id is None:
            raise ConfigError(
                "add_eod=True needs an end-of-document id: set eod_token_id or a "
                "tokenizer_path whose tokenizer has an EOS token."
            )
        if eod_token_id not in end_ids:
            end_ids.append(eod_token_id)
    return bos_id, tuple(end_ids)


def resolve_special_tokens(
    config: DataConfig, tokenizer: Tokenizer | None, info: TokenInfo
) -> SpecialTokens:
    """The special ids `config` asks for, over what the source and the tokenizer say."""
    eod = _first(config.eod_token_id, info.eod_token_id, tokenizer and tokenizer.eos_id)
    configured = config.eod_token_id
    if (
        configured is not None
        and tokenizer is not None
        and tokenizer.eos_id not in (None, configured)
    ):
        LOGGER.warning(
            "%s: eod_token_id=%d differs from the tokenizer's EOS id %d; using %d.",
            config.label,
            configured,
            tokenizer.eos_id,
            configured,
        )
    vocab_size = _first(config.vocab_size, info.vocab_size, tokenizer and tokenizer.vocab_size)
    if eod is not None and vocab_size is not None and eod >= vocab_size:
        raise ConfigError(
            f"Invalid data config: eod_token_id {eod} of {config.label} is not below the "
            f"vocabulary size {vocab_size}; set eod_token_id to an id of the vocabulary."
        )
    bos_id, end_ids = special_token_ids(
        tokenizer=tokenizer,
        add_bos=config.add_bos,
        add_eos=config.add_eos,
        add_eod=config.add_eod,
        eod_token_id=eod,
    )
    bos = tokenizer.bos_id if tokenizer is not None else None
    first_input = _first(eod, bos, 0)
    return SpecialTokens(bos_id, end_ids, eod, first_input, vocab_size)


def _first(*values: int | None) -> int | None:
    return next((v for v in values if v is not None), None)
