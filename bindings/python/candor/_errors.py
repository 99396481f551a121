"""The exceptions of the candor package: one per candor_status_t.

Every exception raised for a failing library call is a :class:`Error`
whose text is the library's own one-line message (``candor_errmsg()``) and
whose ``status`` is the C status code. Where a built-in exception means the
same thing it is a second base class, so ``except ValueError`` or
``except MemoryError`` also work.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from typing import Dict, Optional, Type


class Error(Exception):
    """Base class of every error of the candor package.

    Attributes: ``status`` -- the C status code (``-1`` CANDOR_ERROR when
    raised by the package itself), ``status_name`` -- its name
    (``"CANDOR_EIO"``), ``message`` -- the library's message."""

    status: int = -1
    status_name: str = "CANDOR_ERROR"

    def __init__(self, message: str, status: Optional[int] = None,
                 status_name: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if status_name is not None:
            self.status_name = status_name

    def __str__(self) -> str:
        return self.message


class OutOfMemoryError(Error, MemoryError):
    """CANDOR_ENOMEM: the library ran out of memory."""
    status, status_name = -2, "CANDOR_ENOMEM"


class InvalidArgumentError(Error, ValueError):
    """CANDOR_EINVAL: a bad option or argument, or a closed Context."""
    status, status_name = -3, "CANDOR_EINVAL"


class InputOutputError(Error):
    """CANDOR_EIO: a file or the state could not be read or written."""
    status, status_name = -4, "CANDOR_EIO"


class ConfigError(Error):
    """CANDOR_ECONFIG: bad configuration (message starts "file:line: ")."""
    status, status_name = -5, "CANDOR_ECONFIG"


class LimitError(Error):
    """CANDOR_ELIMIT: the input is over a configured limit."""
    status, status_name = -6, "CANDOR_ELIMIT"


class TemporaryError(Error):
    """CANDOR_ETEMPFAIL: a temporary failure (e.g. the state is busy);
    retrying later may succeed (a mail server would answer 4xx / exit 75)."""
    status, status_name = -7, "CANDOR_ETEMPFAIL"


class NotFoundError(Error, LookupError):
    """CANDOR_ENOTFOUND: the thing asked for does not exist."""
    status, status_name = -8, "CANDOR_ENOTFOUND"


class LibraryError(Error, ImportError):
    """libcandor could not be found or loaded, or lacks a function."""


class VersionMismatchError(LibraryError):
    """The loaded libcandor's version differs from the package's."""


_BY_STATUS: Dict[int, Type[Error]] = {
    c.status: c for c in (OutOfMemoryError, InvalidArgumentError,
                          InputOutputError, ConfigError, LimitError,
                          TemporaryError, NotFoundError)
}


def error_for_status(status: int, message: str,
                     status_name: Optional[str] = None) -> Error:
    """The exception for a failing status with the library's message."""
    cls = _BY_STATUS.get(status, Error)
    return cls(message, status, status_name or cls.status_name)
