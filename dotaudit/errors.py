"""Errors shared by every layer.

Parsers return ``None`` when they need more bytes and raise :class:`MalformedError`
on input that can never parse; callers turn the latter into an anomaly record.
"""


class MalformedError(ValueError):
    """Bytes that can never be parsed as the protocol they claim to be."""


class InputError(Exception):
    """A whole input (a file) that cannot be used; maps to exit code 2."""


class ClusterError(Exception):
    """A distributed run that cannot start or go on (no Dask, no scheduler); exit code 2."""


class OutputError(Exception):
    """An output (a report, an evidence file) that cannot be written; maps to exit code 2.
    The message starts with the path, as every one-line error does."""
