"""Per-source figures in a pipeline's `counts`: keys `"tokens:NAME"` and `"documents:NAME"`
next to the totals, so a trainer or `xlstm-data doctor` sees each source's realised share."""

from __future__ import annotations

from collections.abc import Mapping

SOURCE_KINDS = ("tokens", "documents")


def source_key(kind: str, name: str) -> str:
    return f"{kind}:{name}"


def per_source(counts: Mapping[str, int], kind: str = "tokens") -> dict[str, int]:
    """{source name: count} of one kind."""
    prefix = f"{kind}:"
    return {key[len(prefix) :]: value for key, value in counts.items() if key.startswith(prefix)}
