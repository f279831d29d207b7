"""Entry names of a tree, checked before they join a path."""

from __future__ import annotations

from xlstm_data.errors import DataError


class TreeError(DataError):
    """A tree (IPFS or local folder) this source cannot read."""


def check_name(name: str, where: str) -> str:
    """`name` if it is safe as one path component, else a TreeError naming `where`."""
    if name in ("", ".", "..") or any(char in name for char in "/\\\0"):
        raise TreeError(
            f"{where} has an entry named {name!r}, which is not a safe file name "
            "(empty, '.', '..', or with '/', '\\\\' or NUL); refusing to read it."
        )
    return name
