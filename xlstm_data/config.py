"""Config dataclasses: one per source kind, all sharing the pipeline fields of `DataConfig`.

Configs are keyword-only, validated when built (a wrong value fails at start-up with the field
and the fix, not deep inside a worker process) and loadable from YAML, where
`data_config_type` selects the class.
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

import yaml

T = TypeVar("T", bound="DataConfig")

CONFIG_TYPES: dict[str, type[DataConfig]] = {}


@dataclasses.dataclass(kw_only=True)
class DataConfig:
    """Fields every source shares: batch shape, order, tokenization, packing, workers, epochs."""

    type_names: ClassVar[tuple[str, ...]] = ()

    global_batch_size: int
    """Rows per global batch, over all hosts."""
    max_target_length: int
    """Tokens per row."""
    shuffle_data: bool = False
    """Shuffle records (a new order every epoch). Usually True for training."""
    data_shuffle_seed: int = 42
    """Seed of the shuffle and of everything else random in the pipeline."""
    name: str | None = None
    """Name for logs and mixtures."""
    data_config_type: str | None = None
    """Selects the config class when loading YAML; filled in automatically."""
    data_column: str = "text"
    """Column (HF) or field holding the text / tokens."""
    split: str = "train"
    """Split to read: a sub-folder of `data_path`, or an HF split."""
    tokenize_data: bool = True
    """False when records already hold int32 token arrays."""
    tokenizer_path: str | None = None
    """sentencepiece `.model`, HF `tokenizer.json`, HF tokenizer folder, or HF hub name."""
    add_bos: bool = False
    """Prepend the tokenizer's BOS token to every document."""
    add_eos: bool = False
    """Append the tokenizer's EOS token to every document."""
    add_eod: bool = True
    """Append the end-of-document token (see `eod_token_id`) to every document."""
    eod_token_id: int | None = None
    """End-of-document id; defaults to the tokenizer's EOS id."""
    vocab_size: int | None = None
    """Checks pre-tokenized data (ids must lie below it); defaults to the tokenizer's."""
    truncate_documents: bool = False
    """Cut documents at max_target_length instead of splitting them into several rows."""
    grain_packing: bool = False
    """Pack several documents into each row (segment ids and positions mark them)."""
    grain_packing_bin_count: int | None = None
    """Rows packed together in one window; more rows, less padding. Default: the larger of
    the local batch size and 64."""
    shift_target: Literal["inputs", "targets", "none"] = "inputs"
    """"inputs": inputs are the targets shifted right (first input is EOD). "targets": rows
    hold max_target_length + 1 tokens, inputs the first and targets the last max_target_length
    of them. "none": inputs and targets are the same tokens (the model shifts)."""
    worker_count: int = 1
    """Grain worker processes per host; 0 runs the pipeline in threads of the main process."""
    worker_buffer_size: int = 1
    """Batches each worker process keeps ready."""
    device_prefetch: int = 0
    """Batches turned into global arrays ahead of time by a background thread. 0 does it in the
    calling thread when a batch is asked for, which JAX's asynchronous dispatch already overlaps
    with the running step (and is fastest when the loop never waits on the devices); raise it
    for training loops that block on every step."""
    read_block_size: int = 2048
    """Records read, parsed and tokenized together: one read call per file and block (random
    reads get much cheaper) and one tokenizer call per block (batched encoding parallelises
    better). A few blocks per read thread are held in memory: lower it for very long
    documents."""
    read_threads: int | None = None
    """Threads (per worker) reading and tokenizing blocks ahead of the packer (0: read in the
    packer's thread). Default: 2 when tokenizing (tokenizers release the GIL), else 1."""
    drop_remainder: bool = True
    """True: drop the last incomplete batch. False: pad it with fully masked rows."""
    max_steps_per_epoch: int | None = None
    """Cap an epoch at this many global batches' worth of records."""
    num_epochs: int | None = None
    """Passes over the data; None repeats forever (training)."""
    batch_rampup_factors: dict[int, float] | None = None
    """{step: factor}: from `step` on, the global batch is `factor * global_batch_size`."""
    plan: Literal["online", "global"] = "online"
    """"online": pack while reading (any source). "global": batches from a plan built once from
    the document lengths (token caches and memmap files): a pure function of (seed, step), so
    restoring needs only the step and works on another number of hosts."""
    plan_dir: str | None = None
    """Where plans are kept; default: a `plans` folder next to the data."""
    plan_tokens: int | None = None
    """Tokens per plan epoch; default: the fewest that use every document of every source at
    least once at the mixture weights."""
    plan_window_rows: int = 65_536
    """Rows' worth of documents packed together when building a plan."""
    invalid_records: Literal["raise", "skip"] = "raise"
    """What to do with a record that cannot be read (bad UTF-8, wrong kind): raise an error
    naming it, or skip it and count it in the iterator's statistics."""
    hf_access_token: str | None = None
    """Token for private HF hub repositories (tokenizers and datasets)."""
    hf_cache_dir: str | None = None
    """Cache folder for HF downloads."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for type_name in cls.__dict__.get("type_names", ()):
            CONFIG_TYPES[type_name] = cls

    def __post_init__(self) -> None:
        if self.type_names:
            if self.data_config_type is None:
                self.data_config_type = self.type_names[0]
            elif self.data_config_type not in self.type_names:
                _fail(
                    "data_config_type",
                    f"is {self.data_config_type!r} but {type(self).__name__} "
                    f"takes one of {list(self.type_names)}",
                )
        _check_types(self)
        self.validate()

    def validate(self) -> None:
        """Raises ValueError naming the field and the fix for every inconsistent value."""
        _require(self, "global_batch_size", self.global_batch_size >= 1, "must be at least 1")
        _require(
            self,
            "max_target_length",
            self.max_target_length >= 2,
            "must be at least 2 (a row needs one input and one target token)",
        )
        _require(self, "worker_count", self.worker_count >= 0, "must be 0 or more")
        _require(self, "worker_buffer_size", self.worker_buffer_size >= 1, "must be at least 1")
        _require(self, "device_prefetch", self.device_prefetch >= 0, "must be 0 or more")
        _require(self, "read_block_size", self.read_block_size >= 1, "must be at least 1")
        _require(
            self,
            "read_threads",
            self.read_threads is None or self.read_threads >= 0,
            "must be None or 0 or more",
        )
        _require(self, "plan_window_rows", self.plan_window_rows >= 1, "must be at least 1")
        optional_counts = ("grain_packing_bin_count", "max_steps_per_epoch", "num_epochs",
                           "plan_tokens")  # fmt: skip
        for field in optional_counts:
            value = getattr(self, field)
            _require(self, field, value is None or value >= 1, "must be None or at least 1")
        if self.eod_token_id is not None:
            _require(self, "eod_token_id", self.eod_token_id >= 0, "must be a token id (>= 0)")
        if self.tokenize_data and self.tokenizer_path is None and self.needs_tokenizer:
            _fail(
                "tokenizer_path",
                "is required when tokenize_data=True; set it to a "
                "sentencepiece .model, an HF tokenizer.json or an HF tokenizer folder",
            )
        if self.batch_rampup_factors:
            for step, factor in self.batch_rampup_factors.items():
                _require(
                    self,
                    "batch_rampup_factors",
                    int(step) >= 0 and factor > 0,
                    f"needs steps >= 0 and factors > 0, got {step}: {factor}",
                )
                rows = factor * self.global_batch_size
                _require(
                    self,
                    "batch_rampup_factors",
                    math.isclose(rows, round(rows)),
                    f"factor {factor} at step {step} gives {rows} rows, not a whole number",
                )

    @property
    def row_length(self) -> int:
        """Tokens per packed row: one more than the batch length when the targets shift left."""
        return self.max_target_length + (self.shift_target == "targets")

    @property
    def needs_tokenizer(self) -> bool:
        """Whether this source reads text that the pipeline must tokenize."""
        return True

    def open_source(self):
        """The Grain `RandomAccessDataSource` of this config's records."""
        raise TypeError(f"{type(self).__name__} does not name a data source; use a subclass.")

    def describe_source(self) -> str:
        """Short description for logs and fingerprints."""
        return type(self).__name__

    def default_plan_dir(self) -> Path | None:
        """Where a global plan of this source is kept unless plan_dir says otherwise."""
        return None

    @classmethod
    def create_train_eval_configs(
        cls: type[T],
        train_kwargs: dict | None = None,
        eval_kwargs: dict | None = None,
        **kwargs: Any,
    ) -> tuple[T, T]:
        """A training and an evaluation config that share `kwargs`.

        Training defaults to shuffled, dropping the remainder, split "train"; evaluation to
        unshuffled, padding the remainder, split "validation".
        """
        train = {
            "shuffle_data": True,
            "drop_remainder": True,
            "split": "train",
            **kwargs,
            **(train_kwargs or {}),
        }
        evaluation = {
            "shuffle_data": False,
            "drop_remainder": False,
            "split": "validation",
            **kwargs,
            **(eval_kwargs or {}),
        }
        return cls(**train), cls(**evaluation)


@dataclasses.dataclass(kw_only=True)
class GrainArrayRecordsDataConfig(DataConfig):
    """ArrayRecord shards in `data_path/split/*.arecord`: UTF-8 text or int32 token arrays."""

    type_names: ClassVar[tuple[str, ...]] = ("grain_arrayrecord", "arrayrecord")

    data_path: Path
    """Folder holding one sub-folder of shards per split."""
    file_extension: str = ".arecord"
    """Ending of the shard files."""

    def validate(self) -> None:
        super().validate()
        self.data_path = Path(self.data_path).expanduser()
        _require(
            self,
            "data_path",
            self.data_path.is_dir(),
            f"{str(self.data_path)!r} is not a folder; point it at the folder that holds "
            "the split sub-folders",
        )

    @property
    def split_path(self) -> Path:
        return self.data_path / self.split

    def open_source(self):
        from xlstm_data.sources.array_record import load_array_record_dataset

        return load_array_record_dataset(self.split_path, self.file_extension)

    def describe_source(self) -> str:
        return f"arrayrecord:{self.split_path.resolve()}"


ArrayRecordDataConfig = GrainArrayRecordsDataConfig


@dataclasses.dataclass(kw_only=True)
class HFHubDataConfig(DataConfig):
    """An HF dataset: a hub name, local data files, a data folder or a `save_to_disk` folder."""

    type_names: ClassVar[tuple[str, ...]] = ("huggingface", "huggingface_hub", "huggingface_local")

    hf_path: str
    """Hub name, builder name (json/csv/parquet/text with `hf_data_files`), or local path."""
    hf_data_dir: str | None = None
    """Sub-folder of the dataset repository to read."""
    hf_data_files: str | list[str] | dict[str, str | list[str]] | None = None
    """Data files (globs allowed) for the json/csv/parquet/text builders."""
    hf_name: str | None = None
    """Dataset configuration name on the hub."""
    hf_num_data_processes: int | None = None
    """Processes for preparing the Arrow cache."""
    hf_trust_remote_code: bool = False
    """Allow dataset scripts from the hub to run; never set it for data you do not trust."""

    def validate(self) -> None:
        super().validate()
        local = Path(str(self.hf_path)).expanduser()
        if str(self.hf_path).startswith((".", "/", "~")):
            _require(
                self,
                "hf_path",
                local.exists(),
                f"{str(local)!r} does not exist; give an existing local path or a hub name",
            )

    def open_source(self):
        from xlstm_data.sources.huggingface import load_huggingface_dataset

        return load_huggingface_dataset(self)

    def describe_source(self) -> str:
        return f"huggingface:{self.hf_path}:{self.hf_data_files}:{self.split}:{self.data_column}"


def _fail(field: str, message: str) -> typing.NoReturn:
    raise ValueError(f"Invalid data config: {field} {message}.")


def _require(config: DataConfig, field: str, condition: bool, message: str) -> None:
    if not condition:
        _fail(field, f"= {getattr(config, field)!r} {message}")


def _check_types(config: DataConfig) -> None:
    """Rejects values of the wrong kind (a YAML string where a number belongs, say)."""
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if not _matches(value, hints[field.name]):
            _fail(
                field.name,
                f"= {value!r} has type {type(value).__name__}, expected {hints[field.name]}",
            )


def _matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(hint))
    if origin is Literal:
        return value in typing.get_args(hint)
    if hint is type(None):
        return value is None
    if hint is Path:
        return isinstance(value, str | os.PathLike)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin in (dict, list):
        return isinstance(value, origin)
    return isinstance(value, hint) if isinstance(hint, type) else True


def config_from_dict(values: dict[str, Any], *, where: str = "config") -> DataConfig:
    """Builds the config class named by `data_config_type`, rejecting unknown keys."""
    values = dict(values)
    type_name = values.get("data_config_type")
    if type_name not in CONFIG_TYPES:
        raise ValueError(
            f"{where}: data_config_type {type_name!r} is unknown; use one of "
            f"{sorted(CONFIG_TYPES)}."
        )
    cls = CONFIG_TYPES[type_name]
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(
            f"{where}: unknown key(s) {unknown} for {cls.__name__}; remove them or "
            f"use one of {sorted(known)}."
        )
    if values.get("batch_rampup_factors"):
        values["batch_rampup_factors"] = {
            int(k): v for k, v in values["batch_rampup_factors"].items()
        }
    try:
        return cls(**values)
    except TypeError as error:  # a required field is missing
        raise ValueError(f"{where}: {error}") from error


def load_configs(path: str | os.PathLike) -> tuple[list[DataConfig], list[float] | None]:
    """Configs and mixture weights from a YAML file.

    A file is either one config (a mapping with `data_config_type`) or a mixture:
    `defaults:` (keys shared by all) and `datasets:` (a list of configs, each with a `weight`).
    """
    path = Path(path)
    document = yaml.safe_load(path.read_text())
    if not isinstance(document, dict):
        raise ValueError(f"{path}: expected a mapping at the top level.")
    if "datasets" not in document:
        return [config_from_dict(document, where=str(path))], None
    unknown = sorted(set(document) - {"defaults", "datasets"})
    if unknown:
        raise ValueError(
            f"{path}: unknown top-level key(s) {unknown}; a mixture file has "
            "'defaults' and 'datasets'."
        )
    defaults = document.get("defaults") or {}
    configs, weights = [], []
    for i, entry in enumerate(document["datasets"]):
        entry = {**defaults, **entry}
        weights.append(float(entry.pop("weight", 1.0)))
        configs.append(config_from_dict(entry, where=f"{path}: datasets[{i}]"))
    return configs, weights


@dataclasses.dataclass(kw_only=True)
class IpfsDataConfig(DataConfig):
    """Text datasets on IPFS: the sub-directories of a root CID, fetched over a node's RPC API
    or a gateway, verified against their CIDs and cached; or the same tree in a local folder."""

    type_names: ClassVar[tuple[str, ...]] = ("ipfs",)

    root_cid: str | None = None
    """CID of the root directory; its sub-directories are the datasets."""
    data_dir: Path | None = None
    """A local copy of the tree (e.g. from `ipfs get <root_cid>`), read instead of IPFS."""
    dataset_names: list[str] | None = None
    """Datasets (sub-directory names) to read, in this order; None reads all, sorted by name."""
    document_unit: Literal["file", "line"] = "file"
    """One document per file, or per non-empty line ("line" reads every file once on the first
    start, to count its lines)."""
    file_suffixes: list[str] | None = None
    """Read only files whose names end with one of these (e.g. [".txt"]); None reads all."""
    max_files_per_dataset: int | None = None
    """Take at most this many files (in path order) from each dataset."""
    max_bytes_per_dataset: int | None = None
    """Take files (in path order) from each dataset while their total stays within this."""
    api_url: str | None = "http://127.0.0.1:5001"
    """Kubo-compatible RPC API (`/api/v0/...`) of an IPFS node; tried first."""
    gateway_url: str | None = None
    """HTTP gateway (`/ipfs/<cid>`); listing and dag-pb files need a trustless one
    (answering `?format=raw`)."""
    cache_dir: Path = Path("~/.cache/xlstm_data/ipfs")
    """Where verified files and the tree's tables are kept."""
    offline: bool = False
    """Read only cache_dir; never contact an endpoint."""
    connect_timeout_s: float = 10.0
    """Seconds to wait for a connection to an endpoint."""
    read_timeout_s: float = 60.0
    """Seconds to wait for an endpoint's next bytes."""
    retries: int = 5
    """Retries of a failed request (refused, dropped, timed out, 429 or 5xx)."""
    retry_backoff_s: float = 0.5
    """Back-off factor: the first retry comes at once, the n-th after
    retry_backoff_s * 2**(n-1) seconds (at most 120)."""
    fetch_threads: int = 8
    """Files fetched (and opened) at the same time, per process."""

    def validate(self) -> None:
        super().validate()
        from xlstm_data.sources.ipfs import Cid, CidError, TreeError, check_name

        if (self.root_cid is None) == (self.data_dir is None):
            _fail(
                "root_cid",
                f"= {self.root_cid!r} and data_dir = {self.data_dir!r}: set exactly "
                "one of them (root_cid reads IPFS, data_dir a local copy of the tree)",
            )
        if self.data_dir is not None:
            self.data_dir = Path(self.data_dir).expanduser()
            _require(
                self,
                "data_dir",
                self.data_dir.is_dir(),
                "is not a folder; point it at the folder that holds the dataset folders",
            )
        else:
            try:
                root = Cid.parse(self.root_cid)
            except CidError as error:
                _fail("root_cid", f"= {self.root_cid!r} is not a usable CID: {error}")
            _require(
                self,
                "root_cid",
                root.codec_name == "dag-pb",
                "names a raw block (one file), not a directory; set it to the CID of the "
                "directory that holds the dataset folders",
            )
            _require(
                self,
                "api_url",
                self.offline or bool(self.api_url or self.gateway_url),
                "and gateway_url are both unset; set one, or offline=True",
            )
        self.cache_dir = Path(self.cache_dir).expanduser()
        for field in ("api_url", "gateway_url"):
            url = getattr(self, field)
            _require(
                self,
                field,
                url is None or url.startswith(("http://", "https://")),
                "must start with http:// or https://",
            )
        for field in ("dataset_names", "file_suffixes"):
            _require(self, field, getattr(self, field) != [], "is empty; use None for all")
        for name in self.dataset_names or ():
            try:
                check_name(name, "dataset_names")
            except TreeError as error:
                _fail("dataset_names", f"= {self.dataset_names!r}: {error}")
        for field in ("max_files_per_dataset", "max_bytes_per_dataset"):
            value = getattr(self, field)
            _require(self, field, value is None or value >= 1, "must be None or at least 1")
        for field in ("connect_timeout_s", "read_timeout_s"):
            _require(self, field, getattr(self, field) > 0, "must be positive")
        _require(self, "retries", self.retries >= 0, "must be 0 or more")
        _require(self, "retry_backoff_s", self.retry_backoff_s >= 0, "must be 0 or more")
        _require(self, "fetch_threads", self.fetch_threads >= 1, "must be at least 1")

    def open_source(self):
        from xlstm_data.sources.ipfs import open_ipfs_source

        return open_ipfs_source(self)

    def describe_source(self) -> str:
        where = f"ipfs:{self.root_cid}" if self.data_dir is None else f"ipfs-dir:{self.data_dir}"
        return (
            f"{where}:{self.dataset_names}:{self.document_unit}:{self.file_suffixes}:"
            f"{self.max_files_per_dataset}:{self.max_bytes_per_dataset}"
        )


@dataclasses.dataclass(kw_only=True)
class MemmapDataConfig(DataConfig):
    """Token files read in place (nanoGPT's `.bin`, `np.save`'s `.npy`): fixed windows or
    documents, nothing tokenized. The files are checked when the source opens."""

    type_names: ClassVar[tuple[str, ...]] = ("memmap",)

    data_files: str | list[str]
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
    shift_target: Literal["inputs", "targets", "none"] = "targets"

    def validate(self) -> None:
        super().validate()
        _require(
            self, "tokenize_data", not self.tokenize_data, "must be False: memmap files hold ids"
        )
        _require(self, "data_files", bool(self.data_files), "is empty; name .npy or .bin files")
        _require(
            self,
            "window_offset",
            self.window_offset is None or self.window_offset >= 0,
            "must be None or 0 or more",
        )

    @property
    def needs_tokenizer(self) -> bool:
        return False

    def open_source(self):
        from xlstm_data.sources.memmap import open_memmap_source

        return open_memmap_source(
            self.data_files,
            dtype=self.dtype,
            records=self.records,
            window=self.row_length,
            window_offset=self.window_offset,
            seed=self.data_shuffle_seed,
            eod_token_id=self.eod_token_id,
            pad_token_id=self.pad_token_id,
        )

    def describe_source(self) -> str:
        return f"memmap:{self.records}:{self.data_files}"

    def default_plan_dir(self) -> Path | None:
        from xlstm_data.sources.memmap import find_token_files

        return Path(find_token_files(self.data_files)[0]).parent / "plans"


@dataclasses.dataclass(kw_only=True)
class TokenCacheDataConfig(DataConfig):
    """A token cache from `xlstm-data prepare` or `merge`: documents tokenized once.

    eod_token_id and vocab_size default to the cache's; a tokenizer_path must be the tokenizer
    the cache was built with (it is needed only for add_bos / add_eos).
    """

    type_names: ClassVar[tuple[str, ...]] = ("token_cache",)

    cache_path: Path
    """The cache folder (metadata.json and shard_*.arecord)."""
    tokenize_data: bool = False

    def validate(self) -> None:
        super().validate()
        _require(self, "tokenize_data", not self.tokenize_data, "must be False: a cache holds ids")
        self.cache_path = Path(self.cache_path).expanduser()
        if self.cache_path.exists():  # else the source names the missing cache when it opens
            self._take_cache_metadata()

    def _take_cache_metadata(self) -> None:
        """Checks tokenizer_path against the cache; fills eod_token_id and vocab_size from it."""
        from xlstm_data.cache.metadata import CacheMetadata
        from xlstm_data.tokenizer import load_tokenizer

        metadata = CacheMetadata.read(self.cache_path)
        if self.tokenizer_path is not None:
            tokenizer = load_tokenizer(self.tokenizer_path, self.hf_access_token, self.hf_cache_dir)
            metadata.check_tokenizer(tokenizer, self.cache_path)
        if self.eod_token_id is None:
            self.eod_token_id = metadata.eod_token_id
        if self.vocab_size is None:
            self.vocab_size = metadata.vocab_size

    @property
    def needs_tokenizer(self) -> bool:
        return False

    def open_source(self):
        from xlstm_data.sources.token_cache import load_token_cache

        self._take_cache_metadata()  # the cache may have been built after the config
        return load_token_cache(self.cache_path)

    def describe_source(self) -> str:
        return f"token_cache:{self.cache_path.resolve()}"

    def default_plan_dir(self) -> Path | None:
        return self.cache_path / "plans"
