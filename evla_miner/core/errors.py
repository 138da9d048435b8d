"""Exceptions the library raises; the CLI turns each into a one-line error and a non-zero exit."""


class EvlaError(Exception):
    """Base class: anything a user can fix (bad input, missing file, locked run)."""


class BadInput(EvlaError):
    """A file, id or option value the tool cannot use."""


def one_line(exc: BaseException) -> str:
    """An exception's message on one line, short enough for an error row or a log line."""
    return (" ".join(str(exc).split()) or type(exc).__name__)[:200]
