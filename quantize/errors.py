"""Domain exceptions, and the stop requests of signals.

The CLI turns each exception into one line on stderr and an exit code.
"""

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


# --------------------------------------------------------------------------- #
# Stop requests
# --------------------------------------------------------------------------- #
# A signal handler raises its exception wherever the main thread is.  Where
# that is a finalizer (a ``__del__``: distributed's ``Future`` does work in
# its own) Python drops the exception after handing it to
# ``sys.unraisablehook``, and the stop it asked for would be lost.  So the
# command notes SIGTERM here as its handler runs, its hook notes a stop
# request that was dropped, and every long wait of a run raises that
# request again at its next tick (:func:`raise_dropped`).  Only a request
# Python reported as dropped is raised again: one that reached its code
# asks for no second stop.

_terminated = False
_dropped: type[KeyboardInterrupt] | None = None


def note_terminated() -> bool:
    """Note that SIGTERM came; False when it had come before (it is being acted on)."""
    global _terminated
    first = not _terminated
    _terminated = True
    return first


def terminated() -> bool:
    """Whether SIGTERM came (noted by :func:`note_terminated`): the run exits 143."""
    return _terminated


def note_dropped(exc: BaseException) -> bool:
    """Note ``exc`` when it is a stop request's (Ctrl-C, SIGTERM) that Python dropped.

    For ``sys.unraisablehook``.  SIGTERM outranks Ctrl-C when both were dropped.

    Returns
    -------
    bool
        True when ``exc`` is a stop request's exception (noted), False otherwise.
    """
    global _dropped
    if not isinstance(exc, KeyboardInterrupt):
        return False
    if _dropped is not Terminated:
        _dropped = Terminated if isinstance(exc, Terminated) else KeyboardInterrupt
    return True


def raise_dropped() -> None:
    """Raise the stop request :func:`note_dropped` noted, once; nothing when there is none.

    Called at each tick of the waits of a run, where an exception stops it
    as the signal's own would have.
    """
    global _dropped
    kind, _dropped = _dropped, None
    if kind is not None:
        raise kind


def take_dropped() -> bool:
    """Forget a dropped stop request; whether there was one.

    For a stop under way (it acts on every request so far), and for a run
    that ended all the same (it still reports that it was asked to stop).
    """
    global _dropped
    kind, _dropped = _dropped, None
    return kind is not None
