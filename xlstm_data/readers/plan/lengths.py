"""The document lengths behind a plan, read only when a plan has to be built.

A plan's fingerprint covers a digest of every source's document lengths. The digests are kept
beside the plans (`lengths/` in the plan folder), keyed by each source's identity (its files'
sizes and content stamps), so a host that opens a stored plan reads no lengths at all: its
start-up and memory do not grow with the number of documents. A build reads each source's
lengths as a sequence item (`lengths[s]`, special tokens added block by block); the raw
lengths are kept while the reader is built (its digest and its plan both need them).
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

import numpy as np

from xlstm_data.errors import ConfigError
from xlstm_data.io import atomic_path
from xlstm_data.readers.inputs import Input
from xlstm_data.sources.protocol import DocumentSource


class WithSpecialTokens:
    """Raw document lengths plus `extra` special tokens for every non-empty document, sliced
    without a second copy of the whole array."""

    def __init__(self, raw: np.ndarray, extra: int):
        self.raw, self.extra = raw, extra

    def __len__(self) -> int:
        return len(self.raw)

    def __getitem__(self, index: slice) -> np.ndarray:
        raw = self.raw[index]
        return np.where(raw > 0, raw + self.extra, 0)


def check_lengths_known(inputs: list[Input]) -> None:
    """Raises, before any other plan error, for a source that cannot give its document
    lengths without reading every record (text, raw records)."""
    for input in inputs:
        lengths = getattr(type(input.source), "document_lengths", None)
        if lengths in (None, DocumentSource.document_lengths):  # the protocol's: None
            raise _lengths_unknown(input)


def _lengths_unknown(input: Input) -> ConfigError:
    return ConfigError(
        f"Invalid data config: plan='global' needs document lengths, which {input.name} does "
        "not know without reading every record; use a token cache (`xlstm-data prepare`) or "
        "memmap files, or plan='online'."
    )


class DocumentLengths:
    def __init__(self, inputs: list[Input], plan_dir: Path):
        self.inputs = inputs
        self.folder = Path(plan_dir) / "lengths"

    @functools.cached_property
    def digests(self) -> list[str]:
        """sha256 of each source's raw document lengths (from the kept digest when there is
        one, else from the lengths, then kept)."""
        return [self._digest(index) for index in range(len(self.inputs))]

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> WithSpecialTokens:
        """Tokens per document of source `index` with the special tokens the pipeline adds
        (empty ones stay 0), computed per slice: a build reads it in blocks."""
        tokens = self.inputs[index].tokens
        return WithSpecialTokens(self._raw(index), len(tokens.prefix) + len(tokens.end_ids))

    @functools.cache  # noqa: B019 (one object per reader construction)
    def _raw(self, index: int) -> np.ndarray:
        input = self.inputs[index]
        raw = input.source.document_lengths()
        if raw is None:
            raise _lengths_unknown(input)
        return np.asarray(raw, dtype=np.int64)

    def _digest(self, index: int) -> str:
        identity = json.dumps(self.inputs[index].source.identity(), sort_keys=True, default=str)
        kept = self.folder / f"{hashlib.sha256(identity.encode()).hexdigest()[:32]}.json"
        if kept.is_file():
            try:
                return json.loads(kept.read_text())["digest"]
            except (ValueError, KeyError):
                pass  # damaged: computed again below
        raw = self._raw(index)
        digest = hashlib.sha256(np.ascontiguousarray(raw).tobytes()).hexdigest()
        with atomic_path(kept) as partial:
            partial.write_text(json.dumps({"digest": digest, "documents": len(raw)}) + "\n")
        return digest
