"""Errors caused by user input, shown as one message without a traceback."""


class FerError(Exception):
    """A user error: bad data, a bad config value or a missing file.

    The message names the file, row or key, quotes the bad value and gives
    the fix. Command-line and Snakemake entry points print it alone,
    without a traceback.
    """


class DataError(FerError):
    """A dataset that cannot be read or fails a check."""


class ConfigError(FerError):
    """A config key with a missing, unknown or invalid value."""
