"""The one exception hierarchy of gridflex.

Every error says *what* is wrong (the file, element or field) and *how to fix it*. Domain errors
know nothing of HTTP or the command line: the edges (``gridflex.cli``, the REST and 2030.5 servers)
map them to exit codes and status codes.
"""

from __future__ import annotations

from typing import Any


class GridflexError(Exception):
    """Base class of every error gridflex raises on purpose."""


class InputError(GridflexError, ValueError):
    """Bad input from a user: a file, a field, an argument.

    Parameters
    ----------
    message:
        What is wrong, naming the file / element / field.
    fix:
        What the user should do about it; appended to the message.
    """

    def __init__(self, message: str, fix: str | None = None) -> None:
        self.message = message
        self.fix = fix
        super().__init__(f"{message}. Fix: {fix}" if fix else message)


class ConvergenceError(GridflexError):
    """A numerical method did not converge (names the time step and the cause)."""


class SharedDataMissingError(GridflexError):
    """The ``../shared`` data folder (public test feeders) is not present in this checkout."""


class NotFoundError(GridflexError, LookupError):
    """A named object (connection, DER, device, ...) does not exist."""


class ConflictError(GridflexError):
    """A request conflicts with stored state (e.g. a terms change that is not agreed)."""


class PermissionDeniedError(GridflexError):
    """An authenticated party asked for something outside its scope."""


def validation_problems(exc: Any) -> str:
    """One line naming each failing field of a pydantic ``ValidationError``: ``a.b: message; ...``.

    Duck-typed (anything with pydantic's ``errors()``), so this module imports no pydantic.
    """
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}" for e in exc.errors()
    )
