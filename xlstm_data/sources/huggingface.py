"""HF datasets as Grain sources: hub names, local data files, data folders, `save_to_disk` folders.

The result is a memory-mapped Arrow `datasets.Dataset`, so random access stays lazy however
large the corpus.
"""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import datasets

if TYPE_CHECKING:
    from xlstm_data.config import HFHubDataConfig

LOGGER = logging.getLogger(__name__)

_BUILDER_BY_SUFFIX = {
    ".json": "json",
    ".jsonl": "json",
    ".csv": "csv",
    ".parquet": "parquet",
    ".txt": "text",
    ".arrow": "arrow",
}


def _is_saved_dataset(folder: Path) -> bool:
    return (folder / "dataset_dict.json").is_file() or (folder / "state.json").is_file()


def load_huggingface_dataset(config: HFHubDataConfig) -> datasets.Dataset:
    """The `split` of the dataset named by `config.hf_path`, reduced to `config.data_column`."""
    path = Path(str(config.hf_path)).expanduser()
    if path.is_dir() and _is_saved_dataset(path):
        LOGGER.info("Loading dataset saved with save_to_disk from %s.", path)
        loaded = datasets.load_from_disk(str(path))
    else:
        kwargs = {}
        if config.hf_trust_remote_code:
            if "trust_remote_code" not in inspect.signature(datasets.load_dataset).parameters:
                raise ValueError(
                    f"hf_trust_remote_code=True, but datasets {datasets.__version__} no longer "
                    "runs dataset scripts; convert the dataset to data files instead."
                )
            kwargs["trust_remote_code"] = True
        name, data_files = str(config.hf_path), config.hf_data_files
        if path.is_file():  # a single local data file: pick its builder by suffix
            if path.suffix not in _BUILDER_BY_SUFFIX:
                raise ValueError(
                    f"hf_path {str(path)!r} has an unknown suffix; use one of "
                    f"{sorted(_BUILDER_BY_SUFFIX)} or name the builder with hf_data_files."
                )
            name, data_files = _BUILDER_BY_SUFFIX[path.suffix], str(path)
        loaded = datasets.load_dataset(
            name,
            name=config.hf_name,
            data_dir=config.hf_data_dir,
            data_files=data_files,
            cache_dir=config.hf_cache_dir,
            token=config.hf_access_token,
            num_proc=config.hf_num_data_processes,
            **kwargs,
        )
    dataset = _select_split(loaded, config.split, config.hf_path)
    if config.data_column not in dataset.column_names:
        raise ValueError(
            f"HF dataset {config.hf_path!r} (split {config.split!r}) has no column "
            f"{config.data_column!r}; set data_column to one of {dataset.column_names}."
        )
    return dataset.select_columns([config.data_column])


def _select_split(loaded, split: str, hf_path: str) -> datasets.Dataset:
    if isinstance(loaded, datasets.Dataset):
        return loaded
    if split not in loaded:
        raise ValueError(
            f"HF dataset {hf_path!r} has no split {split!r}; set split to one of {list(loaded)}."
        )
    return loaded[split]
