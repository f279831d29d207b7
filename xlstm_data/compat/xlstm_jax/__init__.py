"""xlstm-data behind the names of `xlstm_jax.dataset`: code written against xlstm-jax's data
package runs with `xlstm_jax.dataset` replaced by `xlstm_data.compat.xlstm_jax` (submodules
included). Where behaviour differs, docs/xlstm_jax.md says how and which setting restores
xlstm-jax's."""

from xlstm_data.compat.xlstm_jax.batch import Batch, LLMBatch, LLMIndexedBatch
from xlstm_data.compat.xlstm_jax.configs import (
    DataConfig,
    GrainArrayRecordsDataConfig,
    HFHubDataConfig,
    SyntheticDataConfig,
)
from xlstm_data.compat.xlstm_jax.hf_tokenizer import load_tokenizer
from xlstm_data.compat.xlstm_jax.input_pipeline_interface import (
    DataIterator,
    create_data_iterator,
    create_mixed_data_iterator,
    get_process_loading_data,
)

__all__ = [
    "Batch",
    "DataConfig",
    "DataIterator",
    "GrainArrayRecordsDataConfig",
    "HFHubDataConfig",
    "LLMBatch",
    "LLMIndexedBatch",
    "SyntheticDataConfig",
    "create_data_iterator",
    "create_mixed_data_iterator",
    "get_process_loading_data",
    "load_tokenizer",
]
