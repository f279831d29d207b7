"""HF datasets as sources: hub names, local data files, data folders, `save_to_disk` folders.

The result is a memory-mapped Arrow `datasets.Dataset`, so random access stays lazy however
large the corpus. `datasets` is imported only to load one (it takes over a second), so a
pipeline without HF sources starts without it.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xlstm_data.errors import ConfigError, DataError
from xlstm_data.sources.protocol import DocumentSource

if TYPE_CHECKING:
    import datasets

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


def is_saved_dataset(folder: Path) -> bool:
    """Whether `folder` was written by `save_to_disk`."""
    return (folder / "dataset_dict.json").is_file() or (folder / "state.json").is_file()


def is_hf_dataset(dataset: Any) -> bool:
    """Whether `dataset` is a `datasets.Dataset` (checked without importing `datasets`)."""
    return type(dataset).__module__.startswith("datasets.") and hasattr(dataset, "column_names")


class HuggingFaceSource(DocumentSource):
    """The values of one column of a `datasets.Dataset`; a batch is one Arrow take."""

    def __init__(self, dataset: datasets.Dataset, column: str, name: str = "HF dataset"):
        self.dataset = dataset
        self.column = column
        self.name = name

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: int) -> Any:
        return self.dataset[int(key)][self.column]

    def __getitems__(self, keys: Sequence[int]) -> list[Any]:
        return list(self.dataset[[int(k) for k in keys]][self.column])

    def describe(self, key: int) -> str:
        return f"row {key} of {self.name}"

    def identity(self) -> str:
        """Row count and the dataset's fingerprint (a hash of how its Arrow data was made)."""
        return f"{len(self)} rows, fingerprint {self.dataset._fingerprint}"

    def __repr__(self) -> str:
        return f"HuggingFaceSource({self.name}, {len(self)} rows, column {self.column!r})"


def _refuse_set(config: HFHubDataConfig, fields: list[str], why: str) -> None:
    """Fields that cannot apply to the dataset `hf_path` names are refused, not ignored."""
    given = [f for f in fields if getattr(config, f) not in (None, False)]
    if given:
        raise ConfigError(
            f"Invalid data config: {', '.join(given)} of {config.label} cannot apply to "
            f"hf_path = {str(config.hf_path)!r} ({why}); remove {' and '.join(given)}."
        )


def load_huggingface_dataset(config: HFHubDataConfig) -> datasets.Dataset:
    """The `split` of the dataset named by `config.hf_path`, reduced to `config.data_column`."""
    import datasets

    path = Path(str(config.hf_path)).expanduser()
    if str(config.hf_path).startswith((".", "/", "~")) and not path.exists():
        raise ConfigError(
            f"Invalid data config: hf_path = {str(path)!r} does not exist; give an existing "
            "local path or a hub name."
        )
    if path.is_dir() and is_saved_dataset(path):
        _refuse_set(
            config,
            ["hf_name", "hf_data_dir", "hf_data_files", "hf_num_data_processes",
             "hf_trust_remote_code"],
            "a save_to_disk folder is loaded as it was saved",
        )  # fmt: skip
        LOGGER.info("Loading dataset saved with save_to_disk from %s.", path)
        try:
            loaded = datasets.load_from_disk(str(path))
        except (IndexError, ValueError, OSError) as error:  # datasets' own, for empty/bad
            raise DataError(
                f"HF dataset {str(path)!r} cannot be loaded ({type(error).__name__}: {error}); a "
                "save_to_disk folder with 0 rows, or a damaged one, fails like this: save the "
                "dataset again with its rows."
            ) from error
    else:
        kwargs = {}
        if config.hf_trust_remote_code:
            if "trust_remote_code" not in inspect.signature(datasets.load_dataset).parameters:
                raise ConfigError(
                    f"hf_trust_remote_code=True, but datasets {datasets.__version__} no longer "
                    "runs dataset scripts; convert the dataset to data files instead."
                )
            kwargs["trust_remote_code"] = True
        name, data_files = str(config.hf_path), config.hf_data_files
        if path.is_file():  # a single local data file: pick its builder by suffix
            _refuse_set(config, ["hf_data_files"], "hf_path names the one data file")
            if path.suffix not in _BUILDER_BY_SUFFIX:
                raise ConfigError(
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
    dataset = select_split(loaded, config.split, config.hf_path)
    if config.data_column not in dataset.column_names:
        raise DataError(
            f"HF dataset {config.hf_path!r} (split {config.split!r}) has no column "
            f"{config.data_column!r}; set data_column to one of {dataset.column_names}."
        )
    return dataset.select_columns([config.data_column])


def select_split(loaded: Any, split: str, hf_path: str) -> datasets.Dataset:
    """`loaded` itself when it is one split, else its `split`."""
    if not hasattr(loaded, "keys"):  # a Dataset, not a DatasetDict
        return loaded
    if split not in loaded:
        raise ConfigError(
            f"HF dataset {hf_path!r} has no split {split!r}; set split to one of {list(loaded)}."
        )
    return loaded[split]


def open_huggingface_source(config: HFHubDataConfig) -> HuggingFaceSource:
    dataset = load_huggingface_dataset(config)
    where = f"HF dataset {config.hf_path!r} (split {config.split!r})"
    return HuggingFaceSource(dataset, config.data_column, where)
