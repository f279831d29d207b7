"""UnixFS over dag-pb: decoding nodes, listing directories, and checking a file's bytes.

Every function takes `get_block`, which returns a block already verified against its CID, so
whatever is derived here (entry names, file sizes, file contents) is authenticated by the root
CID alone, whoever served the blocks.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable

from xlstm_data.sources.ipfs.cid import (
    DAG_PB,
    RAW,
    Cid,
    IntegrityError,
    read_varint,
    verify_block,
)

GetBlock = Callable[[Cid], bytes]


class NodeType(enum.IntEnum):
    RAW = 0
    DIRECTORY = 1
    FILE = 2
    METADATA = 3
    SYMLINK = 4
    HAMT_SHARD = 5


@dataclasses.dataclass(frozen=True)
class Link:
    cid: Cid
    name: str
    size: int
    """Cumulative size of the linked DAG (for a raw block: its length)."""


@dataclasses.dataclass(frozen=True)
class Node:
    """A dag-pb node with its UnixFS data decoded."""

    cid: Cid
    type: NodeType
    links: list[Link]
    data: bytes
    """Bytes of the file held in this node itself (before its links' bytes)."""
    blocksizes: list[int]
    """File bytes under each link."""
    filesize: int | None
    fanout: int | None

    @property
    def file_size(self) -> int:
        return len(self.data) + sum(self.blocksizes)


def decode_node(cid: Cid, block: bytes) -> Node:
    """The UnixFS node in a (verified) dag-pb block."""
    if cid.codec != DAG_PB:
        raise IntegrityError(
            f"CID {cid} is a {cid.codec_name} block, not a dag-pb UnixFS node (a directory or a "
            "multi-block file)."
        )
    links, unixfs = [], None
    try:
        for field, value in _fields(block):
            if field == 2:
                links.append(_decode_link(value))
            elif field == 1:
                unixfs = value
        if unixfs is None:
            raise ValueError("the node has no UnixFS data")
        node_type, data, blocksizes, filesize, fanout = NodeType.RAW, b"", [], None, None
        for field, value in _fields(unixfs):
            if field == 1:
                node_type = NodeType(value)
            elif field == 2:
                data = bytes(value)
            elif field == 3:
                filesize = value
            elif field == 4:
                blocksizes.extend(_packed_varints(value) if isinstance(value, bytes) else [value])
            elif field == 6:
                fanout = value
    except (ValueError, IndexError) as error:
        raise IntegrityError(f"dag-pb block {cid} is not a valid UnixFS node: {error}.") from error
    return Node(cid, node_type, links, data, blocksizes, filesize, fanout)


def directory_entries(node: Node, get_block: GetBlock) -> list[Link]:
    """Entries of a directory node, including those of a HAMT-sharded (large) directory."""
    if node.type == NodeType.DIRECTORY:
        return node.links
    if node.type != NodeType.HAMT_SHARD or not node.fanout:
        raise IntegrityError(
            f"CID {node.cid} is a UnixFS {node.type.name.lower()}, not a directory."
        )
    # Shard links are named by a hex bucket prefix, followed by the entry name for entries;
    # a link that is only the prefix points to a sub-shard.
    prefix = len(f"{node.fanout - 1:X}")
    entries = []
    for link in node.links:
        if len(link.name) == prefix:
            entries.extend(directory_entries(decode_node(link.cid, get_block(link.cid)), get_block))
        else:
            entries.append(dataclasses.replace(link, name=link.name[prefix:]))
    return entries


def verify_file(cid: Cid, content: memoryview, get_block: GetBlock) -> None:
    """Raises IntegrityError unless `content` is exactly the file named by `cid`.

    A raw CID is checked by hashing the content. A dag-pb file is checked node by node: each
    node's inline bytes must match, each raw leaf's slice of the content must hash to its CID,
    and the sizes must add up, so no byte of `content` goes unchecked.
    """
    if cid.codec == RAW:
        verify_block(cid, content, "the fetched file")
        return
    node = decode_node(cid, get_block(cid))
    if node.type not in (NodeType.FILE, NodeType.RAW):
        raise IntegrityError(f"CID {cid} is a UnixFS {node.type.name.lower()}, not a file.")
    size = node.file_size
    if (
        len(node.blocksizes) != len(node.links)
        or size != len(content)
        or (node.filesize is not None and node.filesize != size)
    ):
        raise IntegrityError(
            f"File {cid} has {node.filesize} bytes by its root node and "
            f"{size} by its links, but {len(content)} bytes were fetched."
        )
    if content[: len(node.data)] != node.data:
        raise IntegrityError(
            f"The first {len(node.data)} bytes fetched for {cid} differ from "
            "the bytes stored in its root node."
        )
    offset = len(node.data)
    for link, part in zip(node.links, node.blocksizes, strict=True):
        verify_file(link.cid, content[offset : offset + part], get_block)
        offset += part


def _decode_link(raw: bytes) -> Link:
    cid, name, size = None, "", 0
    for field, value in _fields(raw):
        if field == 1:
            cid = Cid.from_bytes(value)
        elif field == 2:
            name = bytes(value).decode("utf-8")
        elif field == 3:
            size = value
    if cid is None:
        raise ValueError("a link has no CID")
    return Link(cid, name, size)


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) of a protobuf message; varints as ints, others as bytes."""
    fields, position = [], 0
    while position < len(data):
        key, position = read_varint(data, position)
        field, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, position = read_varint(data, position)
        elif wire_type == 2:
            length, position = read_varint(data, position)
            if position + length > len(data):
                raise ValueError("a field runs past the end of the block")
            value, position = bytes(data[position : position + length]), position + length
        elif wire_type in (1, 5):
            width = 8 if wire_type == 1 else 4
            value, position = bytes(data[position : position + width]), position + width
        else:
            raise ValueError(f"unknown protobuf wire type {wire_type}")
        fields.append((field, value))
    return fields


def _packed_varints(data: bytes) -> list[int]:
    values, position = [], 0
    while position < len(data):
        value, position = read_varint(data, position)
        values.append(value)
    return values
