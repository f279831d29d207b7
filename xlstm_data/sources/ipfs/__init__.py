"""Text datasets published on IPFS as a directory tree, as one verified, cached Grain source
(the `ipfs` extra: `pip install xlstm-data[ipfs]`).

See docs/ipfs.md for the table format, the cache layout, what is verified and the retry policy.
Names are imported on first use, so the pure parts (CIDs, entry names) load without `requests`.
"""

import importlib
from typing import Any

_EXPORTS = {
    "Cid": "xlstm_data.sources.ipfs.cid",
    "CidError": "xlstm_data.sources.ipfs.cid",
    "IntegrityError": "xlstm_data.sources.ipfs.cid",
    "IpfsFetchError": "xlstm_data.sources.ipfs.client",
    "IpfsSource": "xlstm_data.sources.ipfs.source",
    "TreeError": "xlstm_data.sources.ipfs.names",
    "check_name": "xlstm_data.sources.ipfs.names",
    "open_ipfs_source": "xlstm_data.sources.ipfs.build",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'xlstm_data.sources.ipfs' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
