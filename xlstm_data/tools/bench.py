"""`xlstm-data bench`: the pipeline's throughput on your own config and data, against the raw
read rate of the same files (records read in blocks of 1,000 in the pipeline's order and joined
into tokens, plus the batched tokenizer call when the config tokenizes), in one run."""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
from tqdm import tqdm

from xlstm_data.config import load_configs
from xlstm_data.config.settings import check_weights
from xlstm_data.readers.inputs import Input, open_inputs
from xlstm_data.tools.simulate import host_readers, run_host

RAW_BLOCK_RECORDS = 1000


def bench(
    path: str | os.PathLike,
    *,
    steps: int = 200,
    hosts: int = 1,
    progress: bool = True,
) -> dict[str, Any]:
    """Tokens/s of host 0 of `hosts` over `steps` batches, and of the raw read of as many
    tokens from the same sources (each source for its share of the tokens)."""
    configs, weights = load_configs(path)
    weights = check_weights(weights, len(configs))
    started = time.perf_counter()
    inputs = open_inputs(configs)
    reader = next(host_readers(configs, weights, inputs, hosts=hosts, devices_per_host=1))
    opened_s = time.perf_counter() - started
    with tqdm(total=steps, desc="pipeline", unit="batch", disable=not progress) as bar:
        run = run_host(reader, steps=steps, on_batch=lambda *_: bar.update())
    pipeline_rate = run.steady_rate()
    shares = np.asarray(weights) / sum(weights)
    raw_tokens, raw_seconds = 0, 0.0
    with tqdm(total=run.tokens, desc="raw read", unit="tok", disable=not progress) as bar:
        for input, share in zip(inputs, shares.tolist(), strict=True):
            tokens, seconds = raw_read(input, max(1, int(run.tokens * share)), bar.update)
            raw_tokens, raw_seconds = raw_tokens + tokens, raw_seconds + seconds
    raw_rate = raw_tokens / raw_seconds if raw_seconds else float("nan")
    return {
        "config": str(path),
        "hosts": hosts,
        "batches": run.batches,
        "tokens": run.tokens,
        "pipeline_tokens_per_s": round(pipeline_rate),
        "raw_read_tokens_per_s": round(raw_rate),
        "share_of_raw": round(pipeline_rate / raw_rate, 3),
        "padding_fraction": round(run.padding_fraction, 6),
        "first_batch_s": round(opened_s + run.first_batch_s, 3),
    }


def raw_read(input: Input, tokens: int, advance=lambda n: None) -> tuple[int, float]:
    """(tokens read, seconds): records of `input` in blocks, in its read order, until `tokens`
    tokens (whole passes repeat)."""
    config, source = input.config, input.source
    order = np.arange(len(source))
    if config.shuffle_data:
        order = np.random.default_rng(config.data_shuffle_seed).permutation(len(source))
    done, begin = 0, time.perf_counter()
    while done < tokens:
        for first in range(0, len(order), RAW_BLOCK_RECORDS):
            records = source.__getitems__(order[first : first + RAW_BLOCK_RECORDS].tolist())
            count = _token_count(input, records)
            done += count
            advance(count)
            if done >= tokens:
                break
    return done, time.perf_counter() - begin


def _token_count(input: Input, records: list) -> int:
    """The tokens of a block: joined token bytes or arrays, or the batched encode of texts."""
    column = input.config.data_column
    values = [r[column] if isinstance(r, dict) else r for r in records]
    if input.config.tokenize_data:
        texts = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in values]
        return len(input.tokenizer.encode_batch(texts).tokens)
    if all(type(v) is bytes for v in values):
        itemsize = np.dtype(input.config.token_dtype or "int32").itemsize
        return len(np.frombuffer(b"".join(values), dtype=np.uint8)) // itemsize
    return len(np.concatenate([np.asarray(v).reshape(-1) for v in values]))
