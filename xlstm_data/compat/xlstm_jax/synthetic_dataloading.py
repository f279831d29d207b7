"""`xlstm_jax.dataset.synthetic_dataloading`: batches made on the devices."""

from xlstm_data.synthetic import SyntheticDataIterator

__all__ = ["SyntheticDataIterator"]
