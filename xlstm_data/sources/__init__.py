"""Grain `RandomAccessDataSource`s, one module per kind of source."""
