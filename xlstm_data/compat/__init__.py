"""Drop-in surfaces for code written against other data libraries (`compat.xlstm_jax`)."""
