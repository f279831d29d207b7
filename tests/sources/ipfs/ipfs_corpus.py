"""The test corpus, the documents it should yield, and small helpers of the IPFS tests."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path

from xlstm_data.config import IpfsDataConfig
from xlstm_data.tools.corpus import generate_documents

from .ipfs_node import IpfsNode


@dataclasses.dataclass(frozen=True)
class Corpus:
    folder: Path
    """The tree as a local folder: `<dataset>/<path>`."""
    root: str
    """CID of the same tree on the node."""
    datasets: tuple[str, ...] = ("books", "news", "shards", "wiki")


@contextlib.contextmanager
def stopped(node: IpfsNode) -> Iterator[None]:
    node.stop()
    try:
        yield
    finally:
        node.start()


def write_corpus(folder: Path) -> None:
    """Datasets with nested folders, a multi-block file (lines cross its 256 KiB chunks), empty
    lines and files, non-ASCII text, a non-.txt file, and a top-level file that is no dataset."""
    lines = generate_documents(1500, seed=1, median_words=40)
    files = {
        "books/long.txt": "\n".join(lines[:1200]) + "\n\n",
        "books/short.txt": "One short book.\nIn two lines.",
        "news/2024/jan.txt": "\n".join(lines[1200:1210]),
        "news/2024/feb.txt": "\n\n".join(lines[1210:1220]) + "\n",
        "news/2025/mar.txt": "\n".join(lines[1220:1230]),
        "news/empty.txt": "",
        "wiki/a.txt": "Grüße aus Köln.\n\n\nÜber 3 Zeilen: ä ö ü ß.\nLast line without end",
        "wiki/b.md": "# Markdown\nis not .txt",
        "wiki/nested/deep/c.txt": "\n".join(lines[1230:1300]) + "\n",
        "README.txt": "A top-level file is not a dataset.",
    }
    # Enough entries that some share a HAMT bucket, which makes a sub-shard.
    files |= {f"shards/{i:02d}.txt": f"Shard file {i}.\n{lines[1300 + i]}" for i in range(40)}
    for relative, text in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))


def expected_documents(
    folder: Path, datasets: list[str] | tuple[str, ...], unit: str, suffixes: tuple[str, ...] = ()
) -> list[bytes]:
    """The documents of the local tree, by a plain reading of the rules (not the source's code)."""
    documents = []
    for dataset in datasets:
        paths = sorted(
            (p for p in (folder / dataset).rglob("*") if p.is_file()),
            key=lambda p: p.relative_to(folder / dataset).as_posix(),
        )
        for path in paths:
            if suffixes and not path.name.endswith(suffixes):
                continue
            data = path.read_bytes()
            if unit == "file":
                documents += [data] if data else []
            else:
                documents += [line for line in data.split(b"\n") if line]
    return documents


def ipfs_config(**fields) -> IpfsDataConfig:
    """A config for opening the source alone (no tokenizer needed), fast to give up."""
    defaults = {
        "global_batch_size": 4,
        "max_target_length": 64,
        "tokenize_data": False,
        "retries": 2,
        "retry_backoff_s": 0.05,
        "connect_timeout_s": 2.0,
        "read_timeout_s": 10.0,
        "fetch_threads": 4,
    }
    return IpfsDataConfig(**(defaults | fields))


def read_all(source) -> list[bytes]:
    return source.__getitems__(list(range(len(source))))
