"""What a reader takes per config: the opened source, its tokenizer and its special ids."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence

from xlstm_data.config import DataConfig
from xlstm_data.errors import DataError
from xlstm_data.sources.protocol import DocumentSource
from xlstm_data.sources.registry import open_source
from xlstm_data.special_tokens import SpecialTokens, resolve_special_tokens
from xlstm_data.tokenizer import Tokenizer, load_tokenizer


@dataclasses.dataclass(frozen=True)
class Input:
    config: DataConfig
    source: DocumentSource
    tokenizer: Tokenizer | None
    tokens: SpecialTokens
    label: str | None = None
    """The name in logs and per-source counts when the config's own is not unique."""

    @property
    def name(self) -> str:
        return self.label or self.config.label

    @property
    def tokenizer_fingerprint(self) -> str | None:
        """The tokenizer's, else the one the source says made its ids."""
        if self.tokenizer is not None:
            return self.tokenizer.fingerprint
        return self.source.token_info.tokenizer_fingerprint


def load_config_tokenizer(config: DataConfig) -> Tokenizer | None:
    if config.tokenizer_path is None:
        return None
    return load_tokenizer(config.tokenizer_path, config.hf_access_token, config.hf_cache_dir)


def open_input(config: DataConfig, source: DocumentSource | None = None) -> Input:
    """`config`'s source (opened here unless given), tokenizer and special ids."""
    source = open_source(config) if source is None else source
    if len(source) == 0:
        raise DataError(f"{config.label} has no records.")
    tokenizer = load_config_tokenizer(config)
    return Input(
        config, source, tokenizer, resolve_special_tokens(config, tokenizer, source.token_info)
    )


def open_inputs(configs: Sequence[DataConfig]) -> list[Input]:
    """The inputs of a mixture; sources with the same label are told apart as "label #i"."""
    inputs = [open_input(config) for config in configs]
    repeated = Counter(i.name for i in inputs)
    return [
        dataclasses.replace(i, label=f"{i.name} #{n}") if repeated[i.name] > 1 else i
        for n, i in enumerate(inputs)
    ]
