"""Global plans: every batch a pure function of (seed, step), for pre-tokenized sources."""
