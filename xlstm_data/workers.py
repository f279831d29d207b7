"""Grain worker processes for a host's pipeline."""

from __future__ import annotations

import grain

from xlstm_data.config import DataConfig


def in_worker_processes(dataset: grain.IterDataset, config: DataConfig) -> grain.IterDataset:
    """`dataset` run by `config.worker_count` Grain worker processes (none: unchanged)."""
    if config.worker_count == 0:
        return dataset
    from absl import flags

    if not flags.FLAGS.is_parsed():  # Grain's workers read absl flags, which only absl.app parses
        flags.FLAGS.mark_as_parsed()
    return dataset.mp_prefetch(
        grain.MultiprocessingOptions(
            num_workers=config.worker_count, per_worker_buffer_size=config.worker_buffer_size
        )
    )
