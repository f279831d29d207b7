"""The online Grain stages of the data path, one per module: epochs, parse, tokenize, split, pack,
shift, batch. Each takes only the values it needs, never a config."""
