"""The one error hierarchy of the library.

The library raises these and never prints or exits; ``cli.py`` turns an ``MTError`` into a
short message and an exit code.
"""


class MTError(Exception):
    """Base class of every error ``mt`` raises on purpose (bad input, not a bug)."""


class ConfigError(MTError):
    """A configuration value or file is invalid (unknown key, wrong type, impossible value)."""


class DataError(MTError):
    """A corpus is missing, empty, unreadable or malformed."""


class CheckpointError(MTError):
    """A checkpoint directory is missing, incomplete, corrupted or incompatible."""


class OutputError(MTError):
    """An output cannot be written: its directory is missing, it is one of the inputs, or the disk
    refused (full, read-only); nothing was left half-written."""


class TrainingError(MTError):
    """Training cannot go on (e.g. the loss stayed non-finite); the last good checkpoint is kept."""


class MissingFontWarning(UserWarning):
    """A plot has characters (e.g. Chinese) that no installed font has: they are drawn as boxes.
    ``cli.py`` shows it as one line."""


class SlowPrecisionWarning(UserWarning):
    """A precision this hardware only emulates was asked for (bf16 on a CPU without bf16 units):
    it runs, but many times slower than fp32. ``cli.py`` shows it as one line."""
