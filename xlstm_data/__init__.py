"""xlstm-data: a JAX/Grain input pipeline for language-model training.

from xlstm_data import GrainArrayRecordsDataConfig, make_grain_iterator
iterator = make_grain_iterator(config, global_mesh, process_indices)
batch = next(iterator)  # LLMBatch of jax.Array, sharded over the mesh's data axes
"""

from xlstm_data.batch import LLMBatch
from xlstm_data.config import (
    ArrayRecordDataConfig,
    DataConfig,
    GrainArrayRecordsDataConfig,
    HFHubDataConfig,
    config_from_dict,
    load_configs,
)
from xlstm_data.multihost import MultiHostDataLoadIterator
from xlstm_data.pipeline import make_grain_iterator, preprocess_dataset
from xlstm_data.sources.array_record import load_array_record_dataset
from xlstm_data.sources.huggingface import load_huggingface_dataset
from xlstm_data.sources.padded import PaddedDataset, pad_dataset
from xlstm_data.tokenizer import Tokenizer, load_tokenizer

__all__ = [
    "ArrayRecordDataConfig",
    "DataConfig",
    "GrainArrayRecordsDataConfig",
    "HFHubDataConfig",
    "LLMBatch",
    "MultiHostDataLoadIterator",
    "PaddedDataset",
    "Tokenizer",
    "config_from_dict",
    "load_array_record_dataset",
    "load_configs",
    "load_huggingface_dataset",
    "load_tokenizer",
    "make_grain_iterator",
    "pad_dataset",
    "preprocess_dataset",
]
