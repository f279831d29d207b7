"""Which records a host reads, in which order, epoch after epoch.

An epoch is a sequence of `epoch_length` positions, a whole number of global batches: the
source padded up (`drop_remainder=False`) or cut down (`drop_remainder=True`,
`max_steps_per_epoch`); global plans cut or pad their rows by the same rule. Position p of
epoch e holds record `perm_e(p)` when shuffled (a fresh permutation of all records each epoch,
so a cut drops different records each time) and record p otherwise; positions past the real
records are padding.

Global batch b covers positions [b*G, (b+1)*G); host h of H reads the contiguous slice
[b*G + h*G/H, b*G + (h+1)*G/H) of it. Before packing, global batch b is therefore the same on
any number of hosts, and the hosts together read every position exactly once.
"""

from __future__ import annotations

import logging
import math
import sys

import grain
import numpy as np

from xlstm_data.errors import ConfigError
from xlstm_data.permutation import EpochPermutations

LOGGER = logging.getLogger(__name__)

# Records of the stream's first read block: the first batch needs only a few hundred.
FIRST_BLOCK_RECORDS = 256


def epoch_length(
    count: int,
    *,
    global_batch_size: int,
    drop_remainder: bool,
    max_steps_per_epoch: int | None,
    name: str,
    unit: str = "records",
) -> int:
    """Slots per epoch for `count` records (online) or plan rows (global plans): a whole number
    of global batches, cut down (`drop_remainder`, `max_steps_per_epoch`) or padded up; logged
    when it differs from `count`."""
    if drop_remainder:
        length = count // global_batch_size * global_batch_size
        if length == 0:
            raise ConfigError(
                f"{name} has {count} {unit}, fewer than one global batch ({global_batch_size}), "
                "and drop_remainder=True leaves nothing: set drop_remainder=False or lower "
                "global_batch_size."
            )
        if length < count:
            LOGGER.info(
                "%s: %d %s per epoch are left out (drop_remainder=True); shuffled epochs leave "
                "out different ones.",
                name,
                count - length,
                unit,
            )
    else:
        length = math.ceil(count / global_batch_size) * global_batch_size
        if length > count:
            LOGGER.info(
                "%s: padding %d %s to %d with fully masked rows.", name, count, unit, length
            )
    if max_steps_per_epoch is not None and max_steps_per_epoch * global_batch_size < length:
        length = max_steps_per_epoch * global_batch_size
        LOGGER.info(
            "%s: epoch capped at %d %s (max_steps_per_epoch=%d).",
            name,
            length,
            unit,
            max_steps_per_epoch,
        )
    return length


class EpochBlocks(grain.MapDataset):
    """Element i: the record keys of this host's i-th read block (blocks never span epochs).

    Keys ≥ `num_records` are padding. The length is infinite (`sys.maxsize`) when
    `num_epochs` is None. `first_position` starts the stream further in (this host's records
    of all epochs counted one after the other), which skips ahead in O(1). The stream's first
    block is at most FIRST_BLOCK_RECORDS long, so the first batch does not wait for a whole
    block (blocks do not change the batches: the packer reads across them). With
    `skip_padding` the padding keys are left out of the blocks (a source in a mixture: its
    padding would only add masked rows).
    """

    def __init__(
        self,
        *,
        num_records: int,
        records_per_epoch: int,
        global_batch_size: int,
        host_index: int,
        host_count: int,
        block_size: int,
        shuffle: bool,
        seed: int,
        num_epochs: int | None,
        first_position: int = 0,
        skip_padding: bool = False,
    ):
        super().__init__()
        self.skip_padding = skip_padding
        self.num_records = num_records
        self.records_per_epoch = records_per_epoch
        self.global_batch_size = global_batch_size
        self.host_index = host_index
        self.host_count = host_count
        self.block_size = block_size
        self.shuffle = shuffle
        self.seed = seed
        self.num_epochs = num_epochs
        self.local_batch_size = global_batch_size // host_count
        self.local_records_per_epoch = records_per_epoch // host_count
        self.blocks_per_epoch = math.ceil(self.local_records_per_epoch / block_size)
        self.first_epoch, self.first_offset = divmod(first_position, self.local_records_per_epoch)
        self.first_block_size = min(block_size, FIRST_BLOCK_RECORDS)
        rest = self.local_records_per_epoch - self.first_offset - self.first_block_size
        self.first_epoch_blocks = 1 + math.ceil(max(0, rest) / block_size)
        self._permutations = EpochPermutations(num_records, seed)

    def __len__(self) -> int:
        if self.num_epochs is None:
            return sys.maxsize
        later_epochs = self.num_epochs - self.first_epoch - 1
        if later_epochs < 0:
            return 0
        return self.first_epoch_blocks + self.blocks_per_epoch * later_epochs

    def _permute(self, epoch: int, positions: np.ndarray) -> np.ndarray:
        real = positions < self.num_records
        keys = positions.copy()
        keys[real] = self._permutations(epoch, positions[real])
        return keys

    def __getitem__(self, index):
        if isinstance(index, slice):
            return self.slice(index)
        if index >= len(self):
            raise IndexError(f"block {index} is past the end ({len(self)} blocks)")
        epoch, size = self.first_epoch, self.block_size
        if index == 0:
            begin, size = self.first_offset, self.first_block_size
        elif index < self.first_epoch_blocks:
            begin = self.first_offset + self.first_block_size + (index - 1) * size
        else:
            later, block = divmod(int(index) - self.first_epoch_blocks, self.blocks_per_epoch)
            epoch, begin = self.first_epoch + 1 + later, block * size
        local = np.arange(begin, min(begin + size, self.local_records_per_epoch))
        batch, row = np.divmod(local, self.local_batch_size)
        positions = batch * self.global_batch_size + self.host_index * self.local_batch_size + row
        keys = self._permute(epoch, positions) if self.shuffle else positions
        return keys[keys < self.num_records] if self.skip_padding else keys

    def __str__(self) -> str:
        return (
            f"EpochBlocks(host {self.host_index}/{self.host_count}, "
            f"{self.local_records_per_epoch} records per epoch, blocks of {self.block_size}, "
            f"shuffle={self.shuffle}, seed={self.seed}, epochs={self.num_epochs})"
        )
