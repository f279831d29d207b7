"""`xlstm_jax.dataset.batch`: the batch classes (xlstm-data's own, which follow xlstm-jax's)."""

from xlstm_data.llm_batch import Batch, LLMBatch, LLMIndexedBatch

__all__ = ["Batch", "LLMBatch", "LLMIndexedBatch"]
