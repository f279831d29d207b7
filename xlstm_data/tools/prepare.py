"""`xlstm-data prepare`: tokenize text once into a token cache, in parallel and resumably.

The main process streams the input's documents in shard-sized chunks (shard k holds documents
[k * n, (k + 1) * n)) and hands every unfinished chunk to a worker process, which encodes it a
batch at a time and writes the shard under a temporary name before renaming it. The main
process records each finished shard in `metadata.json`, so running an interrupted command
again skips the recorded shards (re-reading, not re-tokenizing, their documents) and rewrites
the rest.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import multiprocessing
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import TypeVar

import numpy as np
from tqdm import tqdm

from xlstm_data.documents import Documents
from xlstm_data.errors import ConfigError, DataError
from xlstm_data.sources.array_record import count_records
from xlstm_data.sources.token_cache_files import (
    METADATA_FILE,
    CacheMetadata,
    ShardInfo,
    cache_dtype,
    lengths_file,
    record_dtype,
    shard_file,
    write_shard,
)
from xlstm_data.tokenizer import load_tokenizer
from xlstm_data.tools.text_inputs import TextInput
from xlstm_data.workers import exit_with_parent

LOGGER = logging.getLogger(__name__)

T = TypeVar("T")


@dataclasses.dataclass
class ShardTask:
    """One worker job: the texts of shard `index` and how to encode and store them."""

    folder: Path
    index: int
    texts: list[str]
    tokenizer_path: str
    dtype: str
    batch_size: int


def tokenize_shard(task: ShardTask) -> ShardInfo:
    """Encodes the texts `batch_size` at a time (bounded memory) and writes the shard."""
    return encode_shard(
        task.folder, task.index, task.texts, task.tokenizer_path, task.dtype, task.batch_size
    )


def encode_shard(
    folder: Path, index: int, texts: list[str], tokenizer_path: str, dtype: str, batch_size: int
) -> ShardInfo:
    """Shard `index` of the cache in `folder`: `texts` encoded `batch_size` at a time."""
    tokenizer = load_tokenizer(tokenizer_path)
    documents = Documents.concatenate(
        [
            tokenizer.encode_batch(texts[i : i + batch_size])
            for i in range(0, len(texts), batch_size)
        ]
    )
    tokens = documents.tokens.astype(record_dtype(dtype))
    return write_shard(folder, index, np.split(tokens, np.cumsum(documents.lengths)[:-1]))


def _worker_pool(workers: int) -> ProcessPoolExecutor:
    # forkserver: safe from a process that already runs threads (JAX, Grain), and the server
    # imports this module once, so the workers start without importing anything.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=exit_with_parent,
        initargs=(os.getpid(),),
    )


def start_or_resume(output: Path, planned: CacheMetadata) -> CacheMetadata:
    """The cache to continue in `output`: a new one, or the unfinished one already there."""
    if (output / METADATA_FILE).is_file():
        existing = CacheMetadata.read(output, require_complete=False)
        differences = existing.differences(planned)
        if differences:
            raise ConfigError(
                f"{output} holds a cache built with other settings ({'; '.join(differences)}, "
                f"the cache's first); pick another output folder, or delete {output} to rebuild."
            )
        kept = [s for s in existing.shards if _shard_is_whole(output, s)]
        existing.complete = existing.complete and len(kept) == len(existing.shards)
        existing.shards = kept
        remove_partial_files(output)
        if not existing.complete:
            LOGGER.info("Resuming the cache in %s: %d shards are done.", output, len(kept))
        return existing
    if output.is_dir() and any(output.iterdir()):
        raise ConfigError(
            f"{output} is a folder that holds other files, not a token cache; pick a new or "
            "empty output folder."
        )
    output.mkdir(parents=True, exist_ok=True)
    planned.write(output)
    return planned


def remove_partial_files(output: Path) -> None:
    """Deletes the temporary files of shards whose writer was interrupted (or killed)."""
    for leftover in output.glob(".*.tmp"):
        leftover.unlink(missing_ok=True)


def _shard_is_whole(folder: Path, shard: ShardInfo) -> bool:
    """Whether a recorded shard is there, readable, and holds the documents it should (a shard
    damaged or cut short since it was written is written again)."""
    lengths = folder / lengths_file(shard.file)
    try:
        whole = count_records(str(folder / shard.file)) == shard.documents
        whole = whole and len(np.load(lengths, mmap_mode="r")) == shard.documents
    except (DataError, OSError, ValueError) as error:
        LOGGER.warning(
            "Shard %s of %s is damaged (%s); writing it again.", shard.file, folder, error
        )
        return False
    if not whole:
        LOGGER.warning("Shard %s of %s is incomplete; writing it again.", shard.file, folder)
    return whole


def prepare_cache(
    source: TextInput,
    output: str | os.PathLike,
    tokenizer_path: str,
    *,
    documents_per_shard: int = 20_000,
    workers: int = 2,
    batch_size: int = 256,
    eod_token_id: int | None = None,
    progress: bool = True,
) -> CacheMetadata:
    """Tokenizes every document of `source` into the cache folder `output`.

    Documents are stored without special tokens; the pipeline adds BOS/EOS/EOD as configured.
    `eod_token_id` (default: the tokenizer's EOS) is recorded for the pipeline to use. The
    workers start from a fresh process that imports the calling script again, so a script
    that calls this needs the usual `if __name__ == "__main__":` guard.
    """
    require_positive(
        documents_per_shard=documents_per_shard, workers=workers, batch_size=batch_size
    )
    output = Path(output).expanduser()
    metadata = start_or_resume(
        output, planned_metadata(source, tokenizer_path, documents_per_shard, eod_token_id)
    )
    if metadata.complete:
        LOGGER.info("The cache in %s is complete already.", output)
        return metadata
    finished = {s.file: s.documents for s in metadata.shards}
    pending: set[Future] = set()
    pool = _worker_pool(workers)
    with tqdm(desc=f"tokenizing into {output}", unit=" documents", disable=not progress) as bar:

        def record(done: set[Future]) -> None:
            for future in done:
                shard = future.result()
                metadata.add_shard(shard)
                metadata.write(output)
                bar.update(shard.documents)

        try:
            for index, texts in enumerate(chunked(source.documents(), documents_per_shard)):
                if is_finished(finished, index, len(texts), output):
                    bar.update(len(texts))
                    continue
                if len(pending) >= 2 * workers:  # bounds the texts held in memory
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    record(done)
                task = ShardTask(
                    output, index, texts, metadata.tokenizer_path, metadata.dtype, batch_size
                )
                pending.add(pool.submit(tokenize_shard, task))
            record(wait(pending).done)
        finally:
            pool.shutdown(cancel_futures=True)
    return finish(metadata, output, source)


def require_positive(**values: int) -> None:
    for name, value in values.items():
        if value < 1:
            raise ConfigError(f"{name} = {value} must be at least 1.")


def planned_metadata(
    source: TextInput, tokenizer_path: str, documents_per_shard: int, eod_token_id: int | None
) -> CacheMetadata:
    """The settings a cache of `source` with this tokenizer records (and a resumed run must
    share)."""
    tokenizer = load_tokenizer(tokenizer_path)
    return CacheMetadata(
        tokenizer_path=tokenizer.path,
        tokenizer_fingerprint=tokenizer.fingerprint,
        vocab_size=tokenizer.vocab_size,
        dtype=cache_dtype(tokenizer.vocab_size),
        eod_token_id=tokenizer.eos_id if eod_token_id is None else eod_token_id,
        source=source.describe(),
        documents_per_shard=documents_per_shard,
    )


def is_finished(finished: dict[str, int], index: int, documents: int, output: Path) -> bool:
    """Whether shard `index` was written by an earlier run (with as many documents)."""
    name = shard_file(index)
    if name not in finished:
        return False
    if finished[name] != documents:
        raise DataError(
            f"The input changed since {output} was started: shard {name} holds "
            f"{finished[name]} documents, the input now gives {documents}; "
            f"delete {output} to rebuild."
        )
    return True


def finish(metadata: CacheMetadata, output: Path, source: TextInput) -> CacheMetadata:
    """Marks the cache complete once every shard is recorded."""
    if not metadata.shards:
        raise DataError(f"The input {source.paths} holds no documents.")
    metadata.complete = True
    metadata.write(output)
    LOGGER.info(
        "Token cache %s: %d documents, %d tokens in %d shards.",
        output,
        metadata.documents,
        metadata.tokens,
        len(metadata.shards),
    )
    return metadata


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of `size` items (the last may be shorter)."""
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk
