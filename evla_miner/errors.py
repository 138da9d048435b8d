"""Exceptions the library raises; the CLI turns each into a one-line error and a non-zero exit."""


class EvlaError(Exception):
    """Base class: anything a user can fix (bad input, missing file, locked run)."""


class BadInput(EvlaError):
    """A file, id or option value the tool cannot use."""
