"""The two kinds of mistakes a user can fix: a config that cannot work, and data that is not
what the config says. Both are `ValueError`s, so callers that caught `ValueError` keep working."""

import difflib


class ConfigError(ValueError):
    """A config value, or a combination of them, that cannot work; names the field and the fix."""


class DataError(ValueError):
    """Data that does not match its config (a bad file, shard, record or token); names where."""


def did_you_mean(unknown: list[str], known: list[str]) -> str:
    """' (did you mean …?)' for the unknown names that are close to a known one, else ''."""
    close = {k: difflib.get_close_matches(k, known, n=1) for k in unknown}
    hints = [f"{match[0]!r} for {key!r}" for key, match in close.items() if match]
    return f" (did you mean {', '.join(hints)}?)" if hints else ""


class InvalidRecordError(DataError):
    """One record that cannot be read as the config says; `invalid_records="skip"` skips such
    records (and counts them) instead of raising."""
