"""Text datasets published on IPFS as a directory tree, as one verified, cached Grain source.

See docs/ipfs.md for the table format, the cache layout, what is verified and the retry policy.
"""

from xlstm_data.sources.ipfs.build import open_ipfs_source
from xlstm_data.sources.ipfs.cid import Cid, CidError, IntegrityError
from xlstm_data.sources.ipfs.client import IpfsFetchError
from xlstm_data.sources.ipfs.source import IpfsSource
from xlstm_data.sources.ipfs.table import TreeError, check_name

__all__ = [
    "Cid",
    "CidError",
    "IntegrityError",
    "IpfsFetchError",
    "IpfsSource",
    "TreeError",
    "check_name",
    "open_ipfs_source",
]
