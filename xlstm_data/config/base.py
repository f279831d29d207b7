"""`DataConfig`: the fields every source shares, each with a `Role` that says where it counts.

Configs are keyword-only dataclasses validated when built, without touching files or loading
tokenizers: a wrong value fails at once, on any machine, naming the field and the fix. Files are
checked when the source opens. A field's `Role` drives everything that depends on the field's
kind, so no list of field names is kept by hand: mixture agreement and the readers' refusals
(`config/settings.py`) and a saved state's setup (`state.py`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from xlstm_data.config.schedule import stage_as_dict
from xlstm_data.errors import ConfigError

T = TypeVar("T", bound="DataConfig")

CONFIG_TYPES: dict[str, type[DataConfig]] = {}

READERS = ("online", "global")
"""The two readers: "online" packs while reading; "global" reads batches from a global plan."""

PACKING_ALGORITHMS = ("best_fit", "first_fit", "none")

SOURCE_ONLY_LENGTH = -1
"""`max_target_length` of a config that names a source but builds no batches."""


@dataclasses.dataclass(frozen=True)
class Role:
    """What kind of setting a field is."""

    scope: Literal["source", "loader", "plan"] = "source"
    """"source": each config of a mixture has its own value. "loader": one value for the whole
    loader, so the configs of a mixture must agree. "plan": shapes the one global plan of a
    mixture, so they must agree with plan="global"."""
    readers: tuple[str, ...] = READERS
    """The readers that honour it; a non-default value with another reader is refused. Empty:
    the field has no effect for this kind of source."""
    in_state: bool = True
    """Whether a saved iterator state depends on it (False for knobs of how the data is read,
    and for paths: the data itself is identified by the source)."""
    instead: str = ""
    """What to do instead where the field is refused."""


def setting(default: Any = dataclasses.MISSING, **role: Any) -> Any:
    """A dataclass field with its `Role`."""
    return dataclasses.field(default=default, metadata={"role": Role(**role)})


def role(field: dataclasses.Field) -> Role:
    return field.metadata.get("role", Role())


@dataclasses.dataclass(kw_only=True)
class DataConfig:
    """Fields every source shares: batch shape, order, tokenization, packing, workers, epochs."""

    type_names: ClassVar[tuple[str, ...]] = ()

    global_batch_size: int = setting(scope="loader")
    """Rows per global batch, over all hosts."""
    max_target_length: int = setting(scope="loader")
    """Tokens per row."""
    shuffle_data: bool = setting(False, scope="plan")
    """Shuffle records (a new order every epoch). Usually True for training."""
    data_shuffle_seed: int = setting(42, scope="plan")
    """Seed of the shuffle and of everything else random in the pipeline."""
    name: str | None = setting(None, in_state=False)
    """Name for logs and mixtures."""
    data_config_type: str | None = None
    """Selects the config class when loading YAML; filled in automatically."""
    data_column: str = "text"
    """Column (HF) or field holding the text / tokens."""
    split: str = "train"
    """Split to read: a sub-folder of `data_path`, or an HF split."""
    tokenize_data: bool = True
    """False when records already hold token ids (raw bytes of `token_dtype`, or arrays)."""
    token_dtype: Literal["int32", "uint16", "uint32", "int64"] | None = None
    """Type of the ids in raw byte records (tokenize_data=False). None: int32, and records that
    look like int64 ids read as int32 are refused; set it to say what the data holds."""
    tokenizer_path: str | None = setting(None, in_state=False)
    """sentencepiece `.model`, HF `tokenizer.json`, HF tokenizer folder, or HF hub name (a saved
    state checks the tokenizer by the content of its files, not by this path)."""
    add_bos: bool = False
    """Prepend the tokenizer's BOS token to every document."""
    add_eos: bool = False
    """Append the tokenizer's EOS token to every document."""
    add_eod: bool = True
    """Append the end-of-document token (see `eod_token_id`) to every document."""
    eod_token_id: int | None = None
    """End-of-document id; defaults to the source's (a token cache's), else the tokenizer's EOS."""
    vocab_size: int | None = None
    """Checks pre-tokenized data (ids must lie below it); defaults to the source's or the
    tokenizer's."""
    truncate_documents: bool = False
    """Cut documents at max_target_length instead of splitting them into several rows."""
    grain_packing: bool = setting(False, scope="plan")
    """Pack several documents into each row (segment ids and positions mark them); the switch
    for `packing="best_fit"`."""
    packing: Literal["best_fit", "first_fit", "none"] | None = setting(None, scope="plan")
    """How documents are placed into rows: "best_fit" (decreasing: least padding), "first_fit"
    (in arrival order, each document into the first row with room) or "none" (one per row).
    None: "best_fit" when grain_packing=True, else "none"."""
    grain_packing_bin_count: int | None = setting(
        None, readers=("online",), instead="set plan_window_rows, the global plan's window"
    )
    """Rows packed together in one window; more rows, less padding. Default: the larger of
    the local batch size and 128."""
    shift_target: Literal["inputs", "targets", "none"] = setting("inputs", scope="loader")
    """"inputs": inputs are the targets shifted right (first input is EOD). "targets": rows
    hold max_target_length + 1 tokens, inputs the first and targets the last max_target_length
    of them. "none": inputs and targets are the same tokens (the model shifts)."""
    worker_count: int = setting(1, scope="loader")
    """Grain worker processes per host; 0 runs the pipeline in threads of the main process."""
    worker_buffer_size: int = setting(1, scope="loader", in_state=False)
    """Batches each worker process keeps ready."""
    device_prefetch: int = setting(0, scope="loader", in_state=False)
    """Batches made and turned into global arrays ahead of time by a background thread. 0 makes
    them in the calling thread when a batch is asked for (a global plan read in this process
    makes and transfers them in its read threads), which JAX's asynchronous dispatch already
    overlaps with the running step (and is fastest when the loop never waits on the devices);
    raise it for training loops that block on every step."""
    read_block_size: int | None = setting(
        None,
        readers=("online",),
        instead="a global plan reads the documents of about 10^6 tokens of rows at once",
    )
    """Records read, parsed and tokenized together: one read call per file and block (random
    reads get much cheaper) and one tokenizer call per block (batched encoding parallelises
    better). None: as many records as make about 16 MB (at most 2048), judged from a sample
    of the source, so that blocks of long documents stay small in memory and cheap to join."""
    read_threads: int | None = setting(None, scope="plan", in_state=False)
    """Threads (per worker) reading and tokenizing blocks ahead of the packer (0: read in the
    packer's thread). Default: 2 when tokenizing (tokenizers release the GIL), for ArrayRecord
    records of 8 KiB or more (decompressed one by one without the GIL) and with a global plan
    (one thread lays out rows while the other's reads decompress), else 1."""
    drop_remainder: bool = setting(True, scope="loader")
    """True: drop the last incomplete batch. False: pad it with fully masked rows."""
    max_steps_per_epoch: int | None = setting(None, scope="loader")
    """Cap an epoch at this many global batches' worth of records."""
    num_epochs: int | None = setting(None, scope="loader")
    """Passes over the data; None repeats forever (training)."""
    batch_rampup_factors: dict[int, float] | None = setting(None, scope="loader")
    """{step: factor}: from `step` on, the global batch is `factor * global_batch_size`."""
    schedule: list[dict[str, Any]] | None = setting(None, scope="loader")
    """Training stages from given steps, each with its own mixture weights (in tokens),
    max_target_length and global_batch_size (`xlstm_data.config.schedule`, docs/schedules.md).
    A changing row length needs plan="global"; weights and batch sizes work on both readers."""
    skip_steps: list[int] | None = setting(None, scope="loader", in_state=False)
    """Data steps whose batches are never delivered (after a loss spike, say); the loader's
    step jumps over them. A state restores if the skips before its step agree."""
    skip_documents: list[dict[str, Any]] | None = setting(
        None,
        scope="loader",
        readers=("global",),
        in_state=False,
        instead="online rows do not keep their records; read with plan='global'",
    )
    """Documents left out of every row: `{source: NAME, record: INDEX, from_step: STEP}`
    (from_step defaults to 0); their place becomes padding, nothing else moves."""
    plan: Literal["online", "global"] = setting("online", scope="loader")
    """"online": pack while reading (any source). "global": batches from a plan built once from
    the document lengths (token caches and memmap files): a pure function of (seed, step), so
    restoring needs only the step and works on another number of hosts."""
    plan_dir: str | None = setting(None, scope="loader", readers=("global",), in_state=False)
    """Where plans are kept; default: a `plans` folder next to the data."""
    plan_tokens: int | None = setting(None, scope="loader", readers=("global",))
    """Tokens per plan epoch; default: the fewest that use every document of every source at
    least once at the mixture weights."""
    plan_window_rows: int = setting(65_536, scope="loader", readers=("global",))
    """Rows' worth of documents packed together when building a plan."""
    invalid_records: Literal["raise", "skip"] = setting(
        "raise",
        readers=("online",),
        instead="a plan fixes every row before a token is read, so a record cannot be "
        "skipped later; fix the data, or read it with plan='online'",
    )
    """What to do with a record that cannot be read (bad UTF-8, wrong kind): raise an error
    naming it, or skip it and count it in the iterator's statistics."""
    hf_access_token: str | None = setting(None, in_state=False)
    """Token for private HF hub repositories (tokenizers and datasets)."""
    hf_cache_dir: str | None = setting(None, in_state=False)
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
                fail(
                    "data_config_type",
                    f"is {self.data_config_type!r} but {type(self).__name__} "
                    f"takes one of {list(self.type_names)}",
                )
        if isinstance(self.schedule, list | tuple):
            self.schedule = [stage_as_dict(stage) for stage in self.schedule]
        _paths_as_strings(self)
        _check_types(self)
        _check_unused_fields(self)
        self.validate()

    def validate(self) -> None:
        """Raises ConfigError naming the field and the fix for every inconsistent value."""
        require(self, "global_batch_size", self.global_batch_size >= 1, "must be at least 1")
        require(
            self,
            "max_target_length",
            self.max_target_length >= 2 or self.max_target_length == SOURCE_ONLY_LENGTH,
            "must be at least 2 (a row needs one input and one target token), or -1 for a "
            "config that only names a source (as xlstm-jax's conversion scripts use it)",
        )
        require(self, "worker_count", self.worker_count >= 0, "must be 0 or more")
        require(self, "worker_buffer_size", self.worker_buffer_size >= 1, "must be at least 1")
        require(self, "device_prefetch", self.device_prefetch >= 0, "must be 0 or more")
        require(
            self,
            "read_block_size",
            self.read_block_size is None or self.read_block_size >= 1,
            "must be None or at least 1",
        )
        require(
            self,
            "read_threads",
            self.read_threads is None or self.read_threads >= 0,
            "must be None or 0 or more",
        )
        require(self, "plan_window_rows", self.plan_window_rows >= 1, "must be at least 1")
        optional_counts = ("grain_packing_bin_count", "max_steps_per_epoch", "num_epochs",
                           "plan_tokens")  # fmt: skip
        for field in optional_counts:
            value = getattr(self, field)
            require(self, field, value is None or value >= 1, "must be None or at least 1")
        if self.eod_token_id is not None:
            require(self, "eod_token_id", self.eod_token_id >= 0, "must be a token id (>= 0)")
        if self.tokenize_data and self.tokenizer_path is None:
            fail(
                "tokenizer_path",
                "is required when tokenize_data=True; set it to a "
                "sentencepiece .model, an HF tokenizer.json or an HF tokenizer folder",
            )
        require(
            self,
            "token_dtype",
            self.token_dtype is None or not self.tokenize_data,
            "describes raw token records; with tokenize_data=True the records are text",
        )
        require(
            self,
            "vocab_size",
            self.vocab_size is None or not self.tokenize_data,
            "checks pre-tokenized ids; with tokenize_data=True the tokenizer's vocabulary "
            "applies, so remove it",
        )
        if self.vocab_size is not None:
            require(self, "vocab_size", self.vocab_size >= 1, "must be at least 1")
        require(
            self,
            "packing",
            not (self.grain_packing and self.packing == "none"),
            "contradicts grain_packing=True; set one of them",
        )
        if self.schedule is not None:
            for field in ("batch_rampup_factors", "max_steps_per_epoch"):
                require(
                    self,
                    field,
                    getattr(self, field) is None,
                    "cannot be combined with a schedule; give the batch sizes as stages "
                    "(global_batch_size) and the length of the run as stage steps",
                )
        if self.batch_rampup_factors:
            for step, factor in self.batch_rampup_factors.items():
                number = isinstance(factor, int | float) and not isinstance(factor, bool)
                require(
                    self,
                    "batch_rampup_factors",
                    isinstance(step, int) and step >= 0 and number and 0 < factor < math.inf,
                    f"needs integer steps >= 0 and finite factors > 0, got {step!r}: {factor!r}",
                )
                rows = factor * self.global_batch_size
                require(
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
    def placement(self) -> Literal["best_fit", "first_fit", "none"]:
        """The packing algorithm in effect (`packing`, else from `grain_packing`)."""
        if self.packing is not None:
            return self.packing
        return "best_fit" if self.grain_packing else "none"

    @property
    def label(self) -> str:
        """How logs and errors name this config's source."""
        return self.name or self.describe_source()

    def describe_source(self) -> str:
        """Short description of where the data is, for logs."""
        return type(self).__name__

    @classmethod
    def create_train_eval_configs(
        cls: type[T],
        train_kwargs: dict | None = None,
        eval_kwargs: dict | None = None,
        **kwargs: Any,
    ) -> tuple[T, T]:
        """A training and an evaluation config that share `kwargs`.

        Training defaults to shuffled, dropping the remainder, split "train", repeating
        forever; evaluation to unshuffled, padding the remainder, split "validation", one pass
        (`num_epochs=1`: every `for batch in eval_iterator` is one whole pass). The specific
        kwargs win over the shared ones.
        """
        return train_eval_configs(cls, train_kwargs, eval_kwargs, kwargs)


TRAIN_DEFAULTS = {"shuffle_data": True, "drop_remainder": True, "split": "train"}
EVAL_DEFAULTS = {"shuffle_data": False, "drop_remainder": False, "split": "validation",
                 "num_epochs": 1}  # fmt: skip


def train_eval_configs(
    cls: type, train_kwargs: dict | None, eval_kwargs: dict | None, shared: dict[str, Any]
) -> tuple[Any, Any]:
    """`cls(**train)`, `cls(**eval)`: the defaults (for the fields `cls` has), then `shared`,
    then the specific kwargs; the callers' dicts are left as they were."""
    names = {field.name for field in dataclasses.fields(cls)}

    def build(defaults: dict[str, Any], specific: dict | None) -> Any:
        chosen = {k: v for k, v in defaults.items() if k in names}
        return cls(**(chosen | shared | (specific or {})))

    return build(TRAIN_DEFAULTS, train_kwargs), build(EVAL_DEFAULTS, eval_kwargs)


def non_default_fields(config: DataConfig) -> dict[str, Any]:
    """The fields whose value differs from the field's default in `config`'s class."""
    changed = {}
    for field in dataclasses.fields(config):
        if field.default is dataclasses.MISSING:
            continue
        value = getattr(config, field.name)
        if value != field.default:
            changed[field.name] = value
    return changed


def fail(field: str, message: str) -> typing.NoReturn:
    raise ConfigError(f"Invalid data config: {field} {message}.")


def require(config: DataConfig, field: str, condition: bool, message: str) -> None:
    if not condition:
        fail(field, f"= {getattr(config, field)!r} {message}")


def _check_unused_fields(config: DataConfig) -> None:
    """Refuses values for fields that this kind of source has no use for."""
    fields = {f.name: f for f in dataclasses.fields(config)}
    for name in non_default_fields(config):
        if not role(fields[name]).readers:
            require(
                config,
                name,
                False,
                f"has no effect on {type(config).__name__} sources; {role(fields[name]).instead}",
            )


def _paths_as_strings(config: DataConfig) -> None:
    """`pathlib.Path`s (also in lists and dicts) where a field takes strings become strings:
    xlstm-jax code passes either for any path."""
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        converted = _as_strings(value)
        if converted != value and _matches(converted, hints[field.name]):
            setattr(config, field.name, converted)


def _as_strings(value: Any) -> Any:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, list):
        return [_as_strings(item) for item in value]
    if isinstance(value, dict):
        return {key: _as_strings(item) for key, item in value.items()}
    return value


def _check_types(config: DataConfig) -> None:
    """Rejects values of the wrong kind (a YAML string where a number belongs, say)."""
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if not _matches(value, hints[field.name]):
            fail(
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
