"""candor: Python bindings for libcandor (support-mail triage, honest
acknowledgements and canned-reply checks), in pure ctypes.

    import candor
    with candor.Context() as ctx:                # every argument optional
        t = ctx.triage("/path/to/message.eml")   # or bytes
        print(t.intent, t.confidence, t.urgency, t.churn_risk)

Results are plain dataclasses (:class:`Message`, :class:`Triage`,
:class:`Ack`, :class:`ReplyRecord`, :class:`Check`) whose attributes carry
the JSON member names of Candor's contract (``from`` is spelled ``from_``).
Failures raise :class:`Error` subclasses carrying the library's message.

The library is found through ``$CANDOR_LIBRARY`` (a path), else a meson
build tree of the source checkout the package runs from, else
``ctypes.util.find_library("candor")``; it is loaded on first use, and its
version must match the package's (:class:`VersionMismatchError`).

Threads: one :class:`Context` may be shared by any number of threads (the
C context is immutable); the package keeps one state handle per thread, as
the C API requires.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from typing import Optional

from . import _lib
from ._context import Context, unreadable
from ._errors import (ConfigError, Error, InputOutputError, InvalidArgumentError,
                      LibraryError, LimitError, NotFoundError, OutOfMemoryError,
                      TemporaryError, VersionMismatchError)
from ._results import Ack, Check, Message, ReplyRecord, Triage

__version__ = _lib.VERSION_STRING

INTENTS = ("complaint", "refund", "cancellation", "billing", "order_status",
           "technical_support", "account_change", "sales_inquiry", "praise",
           "general_question")
URGENCIES = ("low", "normal", "high", "critical")
SENTIMENTS = ("negative", "neutral", "positive")


def load_library(path: Optional[str] = None) -> str:
    """Load libcandor now (from PATH, else the usual search) and return the
    path it was loaded from. Raises :class:`LibraryError` or
    :class:`VersionMismatchError`. Optional: the first Context loads it."""
    _lib.load(path)
    return _lib.loaded_path() or ""


def library_version() -> str:
    """The version string of the loaded libcandor (loading it if needed)."""
    raw = _lib.get().candor_version_string()
    return str(raw.decode("ascii", "replace")) if raw else ""


__all__ = [
    "Context", "Message", "Triage", "Ack", "ReplyRecord", "Check",
    "Error", "OutOfMemoryError", "InvalidArgumentError", "InputOutputError",
    "ConfigError", "LimitError", "TemporaryError", "NotFoundError",
    "LibraryError", "VersionMismatchError",
    "load_library", "library_version", "unreadable",
    "INTENTS", "URGENCIES", "SENTIMENTS", "__version__",
]
