"""Domain exceptions.  The CLI turns each into one line on stderr and an exit code."""

from __future__ import annotations

import os


class QuantizeError(Exception):
    """Base class: a problem with one image or one output, explained in one line."""


class InputError(QuantizeError):
    """An input could not be read or decoded as an image.

    Parameters
    ----------
    reason : str
        What is wrong, without the path (``"no such file"``).
    path : str or path-like, optional
        The input, when there is a file; the message then starts with it
        (``"nope.jpg: no such file"``), like the command's messages.
    """

    def __init__(self, reason: str, path: str | os.PathLike[str] | None = None) -> None:
        super().__init__(reason if path is None else f"{os.fspath(path)}: {reason}")
        self.reason = reason
        self.path = path


class OutputError(QuantizeError):
    """An output could not be written, or would overwrite something it must not."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised wherever the program is, so that it stops as for Ctrl-C.

    Raised by the command's handler; an executor may tell it from Ctrl-C
    (it asks for an end at once, not for the images under way).
    """
