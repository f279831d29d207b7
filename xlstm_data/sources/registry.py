"""Which opener builds the source of each config class.

Openers are named as `module:function` strings and imported on first use, so a config never
imports its source (no import circle) and optional sources (IPFS, with `requests`) load only when
a config asks for them. `register_source` adds a kind of source from outside the package.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from xlstm_data.config import (
    DataConfig,
    GrainArrayRecordsDataConfig,
    HFHubDataConfig,
    IpfsDataConfig,
    MemmapDataConfig,
    TokenCacheDataConfig,
)
from xlstm_data.errors import ConfigError
from xlstm_data.sources.protocol import DocumentSource

_OPENERS: dict[type[DataConfig], str | Callable[[DataConfig], DocumentSource]] = {
    GrainArrayRecordsDataConfig: "xlstm_data.sources.array_record:open_array_record_source",
    HFHubDataConfig: "xlstm_data.sources.huggingface:open_huggingface_source",
    MemmapDataConfig: "xlstm_data.sources.memmap:open_memmap_source",
    TokenCacheDataConfig: "xlstm_data.sources.token_cache:open_token_cache_source",
    IpfsDataConfig: "xlstm_data.sources.ipfs.build:open_ipfs_source",
}

_EXTRAS = {"xlstm_data.sources.ipfs.build": "ipfs"}


def register_source(
    config_class: type[DataConfig], opener: Callable[[DataConfig], DocumentSource]
) -> None:
    """Makes `opener(config)` build the source of `config_class` configs."""
    _OPENERS[config_class] = opener


def open_source(config: DataConfig) -> DocumentSource:
    """The `DocumentSource` of `config`'s records; files are checked here, not in the config."""
    opener = next(
        (_OPENERS[cls] for cls in type(config).__mro__ if cls in _OPENERS),
        None,
    )
    if opener is None:
        raise ConfigError(
            f"{type(config).__name__} names no kind of data source; use one of "
            f"{sorted(c.__name__ for c in _OPENERS)} or register_source(...) an opener for it."
        )
    if isinstance(opener, str):
        module_name, function = opener.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            extra = _EXTRAS.get(module_name)
            if extra is None or error.name == module_name:
                raise
            raise ConfigError(
                f"{type(config).__name__} needs the package {error.name!r}, part of the "
                f"{extra!r} extra: pip install 'xlstm-data[{extra}]'."
            ) from error
        opener = getattr(module, function)
    return opener(config)
