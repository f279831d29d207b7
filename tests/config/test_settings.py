"""Every DataConfig field, on every reader (online, global plan), alone and in a mixture: it
takes effect, or it is refused with a ConfigError. Nothing is silently ignored.

A field "takes effect" when setting it changes what the loader does: the batches, the counts,
the saved pipeline state, where the plan is kept, or the arguments that reach the component it
configures (worker processes, read threads, tokenizer loading). In a mixture the field is set
on the second config only, so a loader-wide field must be refused (the configs disagree) and a
per-source field must change that source.
"""

import dataclasses
import hashlib
import itertools
import json

import jax
import numpy as np
import pytest
from conftest import write_jsonl

from xlstm_data import ConfigError, DataConfig, TokenCacheDataConfig, make_grain_iterator
from xlstm_data.config import role
from xlstm_data.readers import inputs, online
from xlstm_data.readers.plan import reader as plan_reader
from xlstm_data.sources.token_cache import load_token_cache
from xlstm_data.tools.prepare import prepare_cache
from xlstm_data.tools.text_inputs import TextInput

MESH = jax.make_mesh((8,), ("data",))
STEPS = 40

# field -> (value to set, fields set alike on the config it is compared with)
CASES = {
    "global_batch_size": (16, {}),
    "max_target_length": (32, {}),
    "shuffle_data": (False, {}),
    "data_shuffle_seed": (7, {}),
    "name": ("renamed", {}),
    "data_config_type": ("memmap", {}),
    "data_column": ("body", {}),
    "split": ("validation", {}),
    "tokenize_data": (True, {}),
    "token_dtype": ("int64", {}),
    "tokenizer_path": (None, {}),
    "add_bos": (True, {}),
    "add_eos": (True, {"add_eod": False}),
    "add_eod": (False, {}),
    "eod_token_id": (5, {}),
    "vocab_size": ("bound", {}),
    "truncate_documents": (True, {}),
    "grain_packing": (False, {}),
    "packing": ("first_fit", {}),
    "grain_packing_bin_count": (2, {}),
    "shift_target": ("targets", {}),
    "worker_count": (1, {}),
    "worker_buffer_size": (2, {}),
    "device_prefetch": (2, {}),
    "read_block_size": (8, {}),
    "read_threads": (2, {}),
    "drop_remainder": (False, {}),
    "max_steps_per_epoch": (2, {}),
    "num_epochs": (1, {}),
    "batch_rampup_factors": ({2: 2.0}, {}),
    "schedule": ([{"start_step": 0}, {"start_step": 2, "global_batch_size": 16}], {}),
    "skip_steps": ([3], {}),
    "skip_documents": ([{"source": "b", "record": 0}], {}),
    "plan": (None, {}),  # set per reader below: the other one
    "plan_dir": (None, {}),  # a folder, set per test
    "plan_tokens": (3000, {}),
    "plan_window_rows": (2, {}),
    "invalid_records": ("skip", {"vocab_size": "bound"}),
    "hf_access_token": ("hf_secret", {}),
    "hf_cache_dir": ("/tmp/hf-cache-of-the-test", {}),
}

# What the readers must do with a field; the rest must take effect on both.
REFUSED = {
    "online": {"plan_dir", "plan_tokens", "plan_window_rows", "skip_documents"},
    "global": {"grain_packing_bin_count", "read_block_size", "invalid_records"},
}
# A token cache has no use for these (refused when the config is built).
REFUSED_ON_EVERY_READER = {
    "data_config_type",
    "data_column",
    "split",
    "tokenize_data",
    "token_dtype",
}


def loader_wide(reader: str) -> set[str]:
    """Fields the configs of a mixture must agree on, by their Role."""
    scopes = ("loader", "plan") if reader == "global" else ("loader",)
    return {f.name for f in dataclasses.fields(DataConfig) if role(f).scope in scopes}


@pytest.fixture(scope="module")
def small_cache(tmp_path_factory, documents, sp_model):
    """A token cache of 100 documents, and a vocabulary bound that about half of them break."""
    folder = tmp_path_factory.mktemp("settings")
    source = TextInput((str(write_jsonl(folder / "docs.jsonl", documents[:100])),))
    prepare_cache(source, folder / "cache", str(sp_model), documents_per_shard=50, progress=False)
    cache = load_token_cache(folder / "cache")
    highest = [int(d.max()) for d in cache.__getitems__(list(range(len(cache))))]
    return folder / "cache", int(np.median(highest)) + 1


class Spies:
    """Records the arguments that reach worker processes, read threads and tokenizer loading."""

    def __init__(self, monkeypatch):
        self.calls = []
        for module in (online, plan_reader):
            for name in ("in_worker_processes", "read_options"):
                monkeypatch.setattr(module, name, self.spy(name, getattr(module, name)))
        monkeypatch.setattr(inputs, "load_tokenizer", self.spy("tokenizer", inputs.load_tokenizer))

    def spy(self, name, function):
        def recorded(*args, **kwargs):
            values = [a for a in args if not hasattr(a, "parents")] + sorted(kwargs.items())
            self.calls.append((name, values))
            return function(*args, **kwargs)

        return recorded


def digest(arrays) -> str:
    return hashlib.sha256(b"".join(np.asarray(a).tobytes() for a in arrays)).hexdigest()[:16]


def stream(iterator):
    """The loader's stream of batches (a `for` loop would stop after one epoch window)."""
    while True:
        try:
            yield next(iterator)
        except StopIteration:
            return


def observe(configs, spies) -> dict:
    """What the loader does with `configs`, or the ConfigError it refuses them with."""
    spies.calls.clear()
    try:
        iterator = make_grain_iterator(configs, MESH, [0], dataset_weights=[1.0] * len(configs))
    except ConfigError as error:
        return {"refused": str(error)}
    seen = {"batches": [], "error": None}
    with iterator:
        try:
            for batch in itertools.islice(stream(iterator), STEPS):
                arrays = [v for v in vars(batch).values() if v is not None]
                seen["batches"].append(digest(arrays) + str(batch.inputs.shape))
        except ValueError as error:  # a DataError while reading is an effect too
            seen["error"] = f"{type(error).__name__}: {error}"
        state = iterator.get_state()
        reader = iterator.reader
        seen |= {
            "counts": dict(iterator.counts),
            "pipeline": json.dumps(state.get("pipeline"), sort_keys=True, default=str),
            "plan": str(getattr(reader, "plan_folder", "")),
            "names": [i.name for i in reader.inputs],
            "device_prefetch": iterator.device_prefetch,
            "calls": repr(spies.calls),
        }
    return seen


def base_values(cache, sp_model, tmp_path, reader: str) -> dict:
    values = {
        "cache_path": cache,
        "global_batch_size": 8,
        "max_target_length": 64,
        "shuffle_data": True,
        "grain_packing": True,
        "worker_count": 0,
        "tokenizer_path": str(sp_model),
        "plan": reader,
    }
    if reader == "global":
        values["plan_dir"] = str(tmp_path / "plans")
    return values


def change(field: str, reader: str, tmp_path, bound: int) -> dict:
    """The fields to set on the changed config (a switch of reader brings its plan_dir)."""
    if field == "plan":
        if reader == "global":
            return {"plan": "online", "plan_dir": None}
        return {"plan": "global", "plan_dir": str(tmp_path / "plans")}
    if field == "plan_dir":
        return {"plan_dir": str(tmp_path / "other_plans")}
    value = CASES[field][0]
    return {field: bound if value == "bound" else value}


def outcome(field, reader, mixture, cache, sp_model, tmp_path, spies) -> str:
    cache, bound = cache
    context = {k: bound if v == "bound" else v for k, v in CASES[field][1].items()}
    base = base_values(cache, sp_model, tmp_path, reader)
    compared = base | context | {"name": "b"}
    try:
        changed = TokenCacheDataConfig(**compared | change(field, reader, tmp_path, bound))
    except ConfigError:
        return "refused"
    configs = [TokenCacheDataConfig(**compared)]
    if mixture:
        configs.insert(0, TokenCacheDataConfig(**base | {"name": "a"}))
    before = observe(configs, spies)
    after = observe(configs[:-1] + [changed], spies)
    assert "refused" not in before, before
    if "refused" in after:
        return "refused"
    return "honoured" if after != before else "ignored"


def test_every_field_has_a_case():
    assert set(CASES) == {f.name for f in dataclasses.fields(DataConfig)}


@pytest.mark.parametrize("mixture", [False, True], ids=["single", "mixture"])
@pytest.mark.parametrize("reader", ["online", "global"])
def test_every_field_is_honoured_or_refused(
    small_cache, sp_model, tmp_path, monkeypatch, reader, mixture
):
    spies = Spies(monkeypatch)
    results = {
        field: outcome(field, reader, mixture, small_cache, sp_model, tmp_path, spies)
        for field in CASES
    }
    ignored = sorted(field for field, result in results.items() if result == "ignored")
    assert not ignored, f"silently ignored with plan={reader!r}: {ignored}"
    refused = {field for field, result in results.items() if result == "refused"}
    expected = REFUSED[reader] | REFUSED_ON_EVERY_READER
    if mixture:
        expected |= loader_wide(reader) - {"name"}
    if reader == "global" and mixture:
        expected.add("eod_token_id")  # rows of a planned mixture open with one token
    assert refused == expected
