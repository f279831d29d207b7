"""`xlstm_jax.dataset.grain_data_processing`: the pipeline's entry points and sources."""

from xlstm_data.api import make_grain_iterator, preprocess_dataset
from xlstm_data.sources.array_record import load_array_record_dataset
from xlstm_data.sources.huggingface import load_huggingface_dataset
from xlstm_data.sources.padded import PaddedDataset, pad_dataset

__all__ = [
    "PaddedDataset",
    "load_array_record_dataset",
    "load_huggingface_dataset",
    "make_grain_iterator",
    "pad_dataset",
    "preprocess_dataset",
]
