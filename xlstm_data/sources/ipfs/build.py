"""From an `IpfsDataConfig` to an `IpfsSource`: tables, the datasets asked for, caps, lines."""

from __future__ import annotations

import concurrent.futures
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from xlstm_data.errors import ConfigError, DataError
from xlstm_data.sources.ipfs.cid import Cid
from xlstm_data.sources.ipfs.client import ClientSettings
from xlstm_data.sources.ipfs.files import IpfsFiles, LocalFiles
from xlstm_data.sources.ipfs.source import FileReader, IpfsSource
from xlstm_data.sources.ipfs.table import FileEntry, IpfsTables, local_datasets, local_files

if TYPE_CHECKING:
    from xlstm_data.config import IpfsDataConfig

LOGGER = logging.getLogger(__name__)


def open_ipfs_source(config: IpfsDataConfig) -> IpfsSource:
    """The documents of the datasets `config` names, from IPFS (through the cache) or from
    `config.data_dir`."""
    name = config.label
    if config.data_dir is not None and not config.data_dir.is_dir():
        raise ConfigError(
            f"Invalid data config: data_dir = {str(config.data_dir)!r} is not a folder; point it "
            "at the folder that holds the dataset folders."
        )
    with concurrent.futures.ThreadPoolExecutor(
        config.fetch_threads, thread_name_prefix="ipfs-table"
    ) as pool:
        tables = None
        if config.data_dir is not None:
            reader: FileReader = LocalFiles(config.data_dir)
            folders = local_datasets(config.data_dir)
            names = choose_datasets(folders, config.dataset_names, f"Data folder {config.data_dir}")
            listed = {dataset: local_files(dataset, folders[dataset]) for dataset in names}
        else:
            settings = None if config.offline else client_settings(config)
            reader = IpfsFiles(config.cache_dir, settings)
            tables = IpfsTables(reader.cache, reader.client.block if settings else None, pool)
            directories = tables.datasets(Cid.parse(config.root_cid))
            names = choose_datasets(
                directories, config.dataset_names, f"IPFS root {config.root_cid}"
            )
            listed = {dataset: tables.files(dataset, directories[dataset]) for dataset in names}
        files = []
        for dataset in names:
            taken = take_files(
                listed[dataset],
                suffixes=config.file_suffixes,
                max_files=config.max_files_per_dataset,
                max_bytes=config.max_bytes_per_dataset,
            )
            if not taken:
                LOGGER.warning(
                    "Dataset %r contributes no files (of %d); check file_suffixes and the caps.",
                    dataset,
                    len(listed[dataset]),
                )
            files += taken
        if config.document_unit == "line":
            files = count_lines(files, reader, pool)
            if tables is not None:
                for dataset in names:
                    counted = _with_counts(listed[dataset], files)
                    if counted != listed[dataset]:
                        tables.store_files(directories[dataset], counted)
    source = IpfsSource(
        files, unit=config.document_unit, reader=reader, threads=config.fetch_threads, name=name
    )
    if not len(source):
        raise DataError(
            f"{name} has no documents in datasets {names} (empty files and lines "
            "hold none); check dataset_names, file_suffixes and the caps."
        )
    LOGGER.info("%r from datasets %s.", source, names)
    return source


def client_settings(config: IpfsDataConfig) -> ClientSettings:
    return ClientSettings(
        api_url=config.api_url,
        gateway_url=config.gateway_url,
        connect_timeout_s=config.connect_timeout_s,
        read_timeout_s=config.read_timeout_s,
        retries=config.retries,
        retry_backoff_s=config.retry_backoff_s,
        request_timeout_s=config.request_timeout_s,
        connections=config.fetch_threads,
    )


def choose_datasets(
    available: Mapping[str, object], requested: list[str] | None, where: str
) -> list[str]:
    """The requested datasets that exist (all, sorted, when none are named); unknown names are
    reported and left out."""
    if requested is None:
        names = sorted(available)
    else:
        unknown = [n for n in requested if n not in available]
        if unknown:
            LOGGER.warning(
                "%s has no dataset(s) %s; they are left out. It has %s.",
                where,
                unknown,
                sorted(available),
            )
        names = list(dict.fromkeys(n for n in requested if n in available))
    if not names:
        raise ConfigError(
            f"{where} has none of the datasets {requested}; set dataset_names to some "
            f"of {sorted(available)}."
        )
    return names


def take_files(
    files: Iterable[FileEntry],
    *,
    suffixes: list[str] | None,
    max_files: int | None,
    max_bytes: int | None,
) -> list[FileEntry]:
    """The files (in path order) with a wanted suffix, up to the first that would pass a cap
    (logged: what a cap leaves out is never dropped silently)."""
    chosen, total = [], 0
    for entry in files:
        if suffixes and not entry.path.endswith(tuple(suffixes)):
            continue
        if (max_files is not None and len(chosen) >= max_files) or (
            max_bytes is not None and total + entry.size > max_bytes
        ):
            LOGGER.info(
                "Dataset %r: the caps (max_files_per_dataset=%s, max_bytes_per_dataset=%s) take "
                "%d files, %d bytes, and leave out the files from %s on.",
                entry.dataset, max_files, max_bytes, len(chosen), total, entry.path,
            )  # fmt: skip
            break
        chosen.append(entry)
        total += entry.size
    return chosen


def count_lines(
    files: list[FileEntry], reader: FileReader, pool: concurrent.futures.Executor
) -> list[FileEntry]:
    """The files with their non-empty line counts; files not counted before are read (fetched)
    once for it."""
    todo = sum(entry.lines is None for entry in files)
    if todo:
        LOGGER.info("Counting the lines of %d files (reading each once).", todo)

    def count(entry: FileEntry) -> FileEntry:
        if entry.lines is not None:
            return entry
        return entry._replace(lines=len(reader.spans(entry, reader.open(entry))))

    return list(pool.map(count, files))


def _with_counts(listed: list[FileEntry], counted: list[FileEntry]) -> list[FileEntry]:
    lines = {(entry.dataset, entry.path): entry.lines for entry in counted}
    return [
        entry._replace(lines=lines.get((entry.dataset, entry.path), entry.lines))
        for entry in listed
    ]
