"""The two kinds of mistakes a user can fix: a config that cannot work, and data that is not
what the config says. Both are `ValueError`s, so callers that caught `ValueError` keep working."""


class ConfigError(ValueError):
    """A config value, or a combination of them, that cannot work; names the field and the fix."""


class DataError(ValueError):
    """Data that does not match its config (a bad file, shard, record or token); names where."""


class InvalidRecordError(DataError):
    """One record that cannot be read as the config says; `invalid_records="skip"` skips such
    records (and counts them) instead of raising."""
