"""Readers: where the loader's local batches come from. online.py packs while reading (any
source); plan/ reads batches from a global plan (pre-tokenized sources). Both implement the
`Reader` interface of loader.py."""
