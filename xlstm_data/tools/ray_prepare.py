"""`xlstm-data prepare --ray ADDRESS`: the same token cache as the local `prepare`, built by
tasks on a Ray cluster (`pip install "xlstm-data[ray]"`).

The driver never reads a document. Ray tasks count each input file's documents (with seek
points for line-based files); then shard k, documents [k * n, (k + 1) * n) of the input in
order (the local rule), is one task that reads exactly those documents from its files,
tokenizes them and writes the shard into the cache folder (a file system all nodes share)
under a temporary name before renaming it. So the cache is byte for byte the local one, a
task that dies is run again by Ray (a shard is there whole or not at all), and an
interrupted run resumes from `metadata.json` like the local one.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from xlstm_data.cluster import TASK_RETRIES, connect
from xlstm_data.sources.token_cache_files import CacheMetadata, ShardInfo
from xlstm_data.tools.prepare import (
    encode_shard,
    finish,
    is_finished,
    planned_metadata,
    remove_partial_files,
    require_positive,
    start_or_resume,
)
from xlstm_data.tools.text_inputs import FileIndex, TextInput

LOGGER = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class DistributedPrepare:
    metadata: CacheMetadata
    nodes: frozenset[str]
    """The Ray nodes that tokenized shards."""
    seconds: float


def _index_unit(source: TextInput, unit: int) -> FileIndex:
    return source.index_file(unit)


def _tokenize_range(
    source: TextInput,
    ranges: list[tuple[int, int, int]],
    indexes: dict[int, FileIndex],
    folder: str,
    shard: int,
    tokenizer_path: str,
    dtype: str,
    batch_size: int,
) -> tuple[ShardInfo, str]:
    """Reads the documents of `ranges` ((unit, start, count) in order), writes shard `shard`,
    and says which node did it."""
    import ray

    texts = [
        text
        for unit, start, count in ranges
        for text in source.read_range(unit, start, count, indexes[unit])
    ]
    info = encode_shard(Path(folder), shard, texts, tokenizer_path, dtype, batch_size)
    return info, ray.get_runtime_context().get_node_id()


def shard_ranges(counts: list[int], shard: int, per_shard: int) -> list[tuple[int, int, int]]:
    """(unit, first document, count) pieces of documents [shard * n, (shard + 1) * n)."""
    ends = np.cumsum(counts)
    begin, end = shard * per_shard, min((shard + 1) * per_shard, int(ends[-1]))
    ranges = []
    for unit, (unit_end, count) in enumerate(zip(ends.tolist(), counts, strict=True)):
        unit_begin = unit_end - count
        low, high = max(begin, unit_begin), min(end, unit_end)
        if low < high:
            ranges.append((unit, low - unit_begin, high - low))
    return ranges


def prepare_cache_on_ray(
    source: TextInput,
    output: str | os.PathLike,
    tokenizer_path: str,
    *,
    address: str = "auto",
    documents_per_shard: int = 20_000,
    batch_size: int = 256,
    eod_token_id: int | None = None,
    progress: bool = True,
) -> DistributedPrepare:
    """Tokenizes every document of `source` into the cache folder `output` with Ray tasks on
    the cluster at `address` ("auto": the one this machine belongs to; "local": start one
    here); the result is the cache `prepare_cache` writes."""
    require_positive(documents_per_shard=documents_per_shard, batch_size=batch_size)
    ray = connect(address, "prepare")
    started = time.perf_counter()
    output = Path(output).expanduser().resolve()
    metadata = start_or_resume(
        output, planned_metadata(source, tokenizer_path, documents_per_shard, eod_token_id)
    )
    nodes: set[str] = set()
    if metadata.complete:
        return DistributedPrepare(metadata, frozenset(), time.perf_counter() - started)
    index_task = ray.remote(num_cpus=1)(_index_unit)
    # SPREAD: shards go to every node (reads and writes spread over the cluster).
    shard_task = ray.remote(num_cpus=1, max_retries=TASK_RETRIES, scheduling_strategy="SPREAD")(
        _tokenize_range
    )
    indexes = ray.get([index_task.remote(source, unit) for unit in range(source.units)])
    counts = [index.documents for index in indexes]
    shards = -(-sum(counts) // documents_per_shard)
    finished = {s.file: s.documents for s in metadata.shards}
    in_flight = max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
    pending: list = []
    bar = tqdm(total=sum(counts), desc=f"tokenizing into {output} on Ray", unit=" documents",
               disable=not progress)  # fmt: skip

    def record(done: list) -> None:
        for info, node in ray.get(done):
            metadata.add_shard(info)
            metadata.write(output)
            nodes.add(node)
            bar.update(info.documents)
            rate = metadata.tokens / max(time.perf_counter() - started, 1e-9)
            bar.set_postfix(tokens=f"{metadata.tokens:,}", tokens_per_s=f"{rate:,.0f}")

    try:
        for shard in range(shards):
            ranges = shard_ranges(counts, shard, documents_per_shard)
            if is_finished(finished, shard, sum(r[2] for r in ranges), output):
                bar.update(sum(r[2] for r in ranges))
                continue
            if len(pending) >= in_flight:
                done, pending = ray.wait(pending, num_returns=1)
                record(done)
            needed = {unit: indexes[unit] for unit, _, _ in ranges}
            pending.append(
                shard_task.remote(source, ranges, needed, str(output), shard,
                                  metadata.tokenizer_path, metadata.dtype, batch_size)
            )  # fmt: skip
        record(pending)
    finally:
        bar.close()
    remove_partial_files(output)  # of tasks whose worker was killed and which ran again
    metadata = finish(metadata, output, source)
    return DistributedPrepare(metadata, frozenset(nodes), time.perf_counter() - started)
