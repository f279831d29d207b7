"""xlstm-data: a JAX/Grain input pipeline for language-model training.

Usage::

    from xlstm_data import GrainArrayRecordsDataConfig, make_grain_iterator

    iterator = make_grain_iterator(config, global_mesh, process_indices)
    batch = next(iterator)  # LLMBatch of jax.Array, sharded over the mesh's data axes

Names are imported on first use, so Grain worker processes, which only need the transforms,
start without importing JAX or HF datasets.
"""

import importlib
from typing import Any

_EXPORTS = {
    "ArrayRecordDataConfig": "xlstm_data.config",
    "DataConfig": "xlstm_data.config",
    "GrainArrayRecordsDataConfig": "xlstm_data.config",
    "HFHubDataConfig": "xlstm_data.config",
    "IpfsDataConfig": "xlstm_data.config",
    "MemmapDataConfig": "xlstm_data.config",
    "TokenCacheDataConfig": "xlstm_data.config",
    "config_from_dict": "xlstm_data.config",
    "load_configs": "xlstm_data.config",
    "ConfigError": "xlstm_data.errors",
    "DataError": "xlstm_data.errors",
    "InvalidRecordError": "xlstm_data.errors",
    "Batch": "xlstm_data.llm_batch",
    "LLMBatch": "xlstm_data.llm_batch",
    "LLMIndexedBatch": "xlstm_data.llm_batch",
    "SyntheticDataConfig": "xlstm_data.synthetic",
    "SyntheticDataIterator": "xlstm_data.synthetic",
    "MultiHostDataLoadIterator": "xlstm_data.loader",
    "build_reader": "xlstm_data.api",
    "make_grain_iterator": "xlstm_data.api",
    "preprocess_dataset": "xlstm_data.api",
    "DocumentSource": "xlstm_data.sources.protocol",
    "open_source": "xlstm_data.sources.registry",
    "register_source": "xlstm_data.sources.registry",
    "load_array_record_dataset": "xlstm_data.sources.array_record",
    "load_huggingface_dataset": "xlstm_data.sources.huggingface",
    "PaddedDataset": "xlstm_data.sources.padded",
    "pad_dataset": "xlstm_data.sources.padded",
    "Tokenizer": "xlstm_data.tokenizer",
    "load_tokenizer": "xlstm_data.tokenizer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'xlstm_data' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return __all__
