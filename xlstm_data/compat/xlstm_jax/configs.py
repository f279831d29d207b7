"""`xlstm_jax.dataset.configs`: the config classes (xlstm-data's, which take every xlstm-jax
field; see docs/xlstm_jax.md for the defaults that differ)."""

from xlstm_data.config import DataConfig, GrainArrayRecordsDataConfig, HFHubDataConfig
from xlstm_data.synthetic import SyntheticDataConfig

__all__ = ["DataConfig", "GrainArrayRecordsDataConfig", "HFHubDataConfig", "SyntheticDataConfig"]
