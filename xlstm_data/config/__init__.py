"""Configs: pure dataclasses (one per source kind), their validation, and YAML loading."""

from xlstm_data.config.base import CONFIG_TYPES, DataConfig, Role, role
from xlstm_data.config.ipfs import IpfsDataConfig
from xlstm_data.config.loading import config_from_dict, load_configs
from xlstm_data.config.schedule import Stage
from xlstm_data.config.sources import (
    ArrayRecordDataConfig,
    GrainArrayRecordsDataConfig,
    HFHubDataConfig,
    MemmapDataConfig,
    TokenCacheDataConfig,
)

__all__ = [
    "CONFIG_TYPES",
    "ArrayRecordDataConfig",
    "DataConfig",
    "GrainArrayRecordsDataConfig",
    "HFHubDataConfig",
    "IpfsDataConfig",
    "MemmapDataConfig",
    "Role",
    "Stage",
    "TokenCacheDataConfig",
    "config_from_dict",
    "load_configs",
    "role",
]
