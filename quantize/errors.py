"""Domain exceptions.  The CLI turns each into one line on stderr and an exit code."""

from __future__ import annotations


class QuantizeError(Exception):
    """Base class: a problem with one image or one output, explained in one line."""


class InputError(QuantizeError):
    """An input could not be read or decoded as an image."""


class OutputError(QuantizeError):
    """An output could not be written, or would overwrite something it must not."""
