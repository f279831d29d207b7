"""Grain transformations of the data path: parse, tokenize, chunk, pack, shift."""
