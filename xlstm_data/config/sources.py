"""One config class per kind of source; `data_config_type` picks the class in YAML files."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar, Literal

from xlstm_data.config.base import DataConfig, require, setting

_NO_TEXT = "the files hold token ids, not records with text fields"


@dataclasses.dataclass(kw_only=True)
class GrainArrayRecordsDataConfig(DataConfig):
    """ArrayRecord shards in `data_path/split/*.arecord`: UTF-8 text or int32 token arrays."""

    type_names: ClassVar[tuple[str, ...]] = ("grain_arrayrecord", "arrayrecord")

    data_path: Path = setting(in_state=False)
    """Folder holding one sub-folder of shards per split."""
    file_extension: str = ".arecord"
    """Ending of the shard files."""
    data_column: str = setting(
        "text", readers=(), instead="records are raw UTF-8 text or int32 token arrays"
    )

    def validate(self) -> None:
        super().validate()
        self.data_path = Path(self.data_path).expanduser()

    @property
    def split_path(self) -> Path:
        return self.data_path / self.split

    def describe_source(self) -> str:
        return f"arrayrecord:{self.split_path}"


ArrayRecordDataConfig = GrainArrayRecordsDataConfig


@dataclasses.dataclass(kw_only=True)
class HFHubDataConfig(DataConfig):
    """An HF dataset: a hub name, local data files, a data folder or a `save_to_disk` folder."""

    type_names: ClassVar[tuple[str, ...]] = ("huggingface", "huggingface_hub", "huggingface_local")

    hf_path: str = setting(in_state=False)
    """Hub name, builder name (json/csv/parquet/text with `hf_data_files`), or local path."""
    hf_data_dir: str | None = setting(None, in_state=False)
    """Sub-folder of the dataset repository to read."""
    hf_data_files: str | list[str] | dict[str, str | list[str]] | None = setting(
        None, in_state=False
    )
    """Data files (globs allowed) for the json/csv/parquet/text builders."""
    hf_name: str | None = None
    """Dataset configuration name on the hub."""
    hf_num_data_processes: int | None = setting(None, in_state=False)
    """Processes for preparing the Arrow cache."""
    hf_trust_remote_code: bool = setting(False, in_state=False)
    """Allow dataset scripts from the hub to run; never set it for data you do not trust."""
    token_dtype: Literal["int32", "uint16", "uint32", "int64"] | None = setting(
        None, readers=(), instead="HF columns hold lists or arrays of ids, not raw bytes"
    )

    def describe_source(self) -> str:
        return f"huggingface:{self.hf_path}:{self.hf_data_files}:{self.split}:{self.data_column}"


@dataclasses.dataclass(kw_only=True)
class MemmapDataConfig(DataConfig):
    """Token files read in place (nanoGPT's `.bin`, `np.save`'s `.npy`): fixed windows or
    documents, nothing tokenized. The files are checked when the source opens."""

    type_names: ClassVar[tuple[str, ...]] = ("memmap",)

    data_files: str | list[str] = setting(in_state=False)
    """`.npy` arrays (a 1-D stream or 2-D rows) and raw `.bin` files, or globs, read in order."""
    dtype: Literal["uint16", "uint32", "int32"] = "uint16"
    """Token type of `.bin` files (nanoGPT writes uint16); `.npy` files carry their own."""
    records: Literal["windows", "documents"] = "windows"
    """"windows": record i is `row_length` consecutive tokens (max_target_length + 1 with
    shift_target="targets": inputs and targets one token apart, nanoGPT's x and y).
    "documents": the rows of a 2-D array, or a 1-D stream split after each EOD token."""
    window_offset: int | None = None
    """Start of the first window in each file; None draws it from data_shuffle_seed among the
    starts that keep the most windows (0 … tokens mod window)."""
    pad_token_id: int | None = None
    """Documents mode: trailing ids stripped from the rows of 2-D arrays."""
    tokenize_data: bool = False
    add_eod: bool = False
    """Windows and the documents of a stream hold the file's own EOD tokens."""
    shift_target: Literal["inputs", "targets", "none"] = setting("targets", scope="loader")
    data_column: str = setting("text", readers=(), instead=_NO_TEXT)
    split: str = setting("train", readers=(), instead="name the files in data_files")
    token_dtype: Literal["int32", "uint16", "uint32", "int64"] | None = setting(
        None, readers=(), instead="set dtype (for .bin files; .npy files carry theirs)"
    )

    def validate(self) -> None:
        require(
            self, "tokenize_data", not self.tokenize_data, "must be False: memmap files hold ids"
        )
        super().validate()
        require(self, "data_files", bool(self.data_files), "is empty; name .npy or .bin files")
        require(
            self,
            "window_offset",
            self.window_offset is None or self.window_offset >= 0,
            "must be None or 0 or more",
        )
        require(
            self,
            "window_offset",
            self.window_offset is None or self.records == "windows",
            "places windows; with records='documents' remove it",
        )
        require(
            self,
            "pad_token_id",
            self.pad_token_id is None or self.records == "documents",
            "strips the padding of documents (records='documents'); windows keep every token",
        )

    def describe_source(self) -> str:
        return f"memmap:{self.records}:{self.data_files}"


@dataclasses.dataclass(kw_only=True)
class TokenCacheDataConfig(DataConfig):
    """A token cache from `xlstm-data prepare` or `merge`: documents tokenized once.

    eod_token_id and vocab_size default to the cache's; a tokenizer_path must be the tokenizer
    the cache was built with (it is needed only for add_bos / add_eos).
    """

    type_names: ClassVar[tuple[str, ...]] = ("token_cache",)

    cache_path: Path = setting(in_state=False)
    """The cache folder (metadata.json and shard_*.arecord)."""
    tokenize_data: bool = False
    data_column: str = setting("text", readers=(), instead=_NO_TEXT)
    split: str = setting("train", readers=(), instead="a cache holds one split: set cache_path")
    token_dtype: Literal["int32", "uint16", "uint32", "int64"] | None = setting(
        None, readers=(), instead="a cache records the dtype of its ids"
    )

    def validate(self) -> None:
        require(self, "tokenize_data", not self.tokenize_data, "must be False: a cache holds ids")
        super().validate()
        self.cache_path = Path(self.cache_path).expanduser()

    def describe_source(self) -> str:
        return f"token_cache:{self.cache_path}"
