"""`xlstm_jax.dataset.multihost_dataloading`: the iterator of global batches."""

from xlstm_data.loader import MultiHostDataLoadIterator

__all__ = ["MultiHostDataLoadIterator"]
