"""Low-level mirror of ``include/candor.h`` through ctypes.

This module only declares: it finds and loads ``libcandor``, checks its
version, and gives every function it uses ``argtypes``, ``restype`` and,
for functions returning a ``candor_status_t``, an ``errcheck`` hook that
turns a failure into a :class:`candor.Error` subclass.

The hook runs on the calling thread right after the foreign call returns
(ctypes releases the GIL during the call, but the hook runs before any other
call into Candor on this thread), so ``candor_errmsg()`` -- a per-thread
slot -- still holds the message of *this* failure.

Handles (``struct candor_ctx *`` and friends) are plain ``c_void_p``; the
classes in :mod:`candor._context` own them and free each exactly once.
Returned ``char *`` strings are declared ``c_void_p`` (so ctypes does not
copy and drop the pointer), read with :func:`ctypes.string_at` and released
with ``candor_free()`` -- see :func:`take_string`.

Nothing here is public API; import :mod:`candor` instead.
"""

from __future__ import annotations

import ctypes
import os
import threading
from ctypes import (CFUNCTYPE, POINTER, Structure, byref, c_char_p, c_double,
                    c_int, c_int64, c_long, c_size_t, c_uint, c_void_p)
TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from typing import Any, Callable, List, Optional

from ._errors import Error, LibraryError, VersionMismatchError, error_for_status

# The version of the C API this package was written against (candor.h).
VERSION_MAJOR = 0
VERSION_MINOR = 1
VERSION_PATCH = 0
VERSION_STRING = "%d.%d.%d" % (VERSION_MAJOR, VERSION_MINOR, VERSION_PATCH)
VERSION_NUMBER = VERSION_MAJOR * 10000 + VERSION_MINOR * 100 + VERSION_PATCH

# ---------------------------------------------------------------- constants
CANDOR_OK = 0
CANDOR_ERROR = -1
CANDOR_ENOMEM = -2
CANDOR_EINVAL = -3
CANDOR_EIO = -4
CANDOR_ECONFIG = -5
CANDOR_ELIMIT = -6
CANDOR_ETEMPFAIL = -7
CANDOR_ENOTFOUND = -8

CANDOR_LOG_ERROR = 0
CANDOR_LOG_WARN = 1
CANDOR_LOG_INFO = 2
CANDOR_LOG_DEBUG = 3

CANDOR_CTX_OPTIONS_VERSION = 3
CANDOR_CTX_PARSE_ONLY = 1
CANDOR_ENVELOPE_VERSION = 1
CANDOR_STORE_READONLY = 1
CANDOR_TRIAGE_EXPLAIN = 1

# ---------------------------------------------------------------- types
# typedef void (*candor_log_fn_t)(candor_log_level_t, const char *, void *);
LOG_FN = CFUNCTYPE(None, c_int, c_char_p, c_void_p)


class CtxOptions(Structure):
    """``candor_ctx_options_t``, field for field (candor.h)."""

    _fields_ = [
        ("version", c_uint),
        ("config_path", c_char_p),
        ("model_path", c_char_p),
        ("addresses", POINTER(c_char_p)),     # const char *const *
        ("n_addresses", c_size_t),
        ("trusted_authserv", c_char_p),
        ("max_message_bytes", c_size_t),
        ("max_header_bytes", c_size_t),
        ("max_headers", c_size_t),
        ("max_mime_depth", c_size_t),
        ("max_mime_parts", c_size_t),
        ("max_line_bytes", c_size_t),
        ("max_decoded_bytes", c_size_t),
        ("max_text_bytes", c_size_t),
        ("max_html_depth", c_size_t),
        ("log_fn", LOG_FN),
        ("log_data", c_void_p),
        ("max_config_bytes", c_size_t),       # version 2
        ("flags", c_uint),                    # version 3: CANDOR_CTX_*
    ]


LIMIT_FIELDS = ("max_message_bytes", "max_header_bytes", "max_headers",
                "max_mime_depth", "max_mime_parts", "max_line_bytes",
                "max_decoded_bytes", "max_text_bytes", "max_html_depth",
                "max_config_bytes")


class Envelope(Structure):
    """``candor_envelope_t``, field for field (candor.h)."""

    _fields_ = [
        ("version", c_uint),
        ("sender", c_char_p),
        ("recipient", c_char_p),
        ("now", c_int64),
    ]


HANDLE = c_void_p            # every opaque struct candor_* pointer
HANDLE_OUT = POINTER(c_void_p)
STR_OUT = POINTER(c_void_p)  # char ** that receives an owned string
STATUS = c_int

# ---------------------------------------------------------------- loading


def _candidates() -> List[str]:
    """Where to look for the library, in order (see :func:`load`)."""
    out: List[str] = []
    env = os.environ.get("CANDOR_LIBRARY")
    if env:
        return [env]
    # Running from a source checkout: bindings/python/candor/_lib.py ->
    # the repository root is three levels up; use a meson build tree there.
    here = os.path.dirname(os.path.realpath(__file__))
    root = os.path.dirname(os.path.dirname(os.path.dirname(here)))
    if os.path.isfile(os.path.join(root, "include", "candor.h")):
        found = []
        try:
            subdirs = os.listdir(root)
        except OSError:
            subdirs = []
        for sub in subdirs:
            lib = os.path.join(root, sub, "lib", "libcandor.so")
            if os.path.exists(lib) and os.path.isfile(os.path.join(root, sub, "build.ninja")):
                found.append((sub != "build", -os.path.getmtime(lib), lib))
        # Prefer "build" (the README's directory), then the newest.
        out.extend(lib for _, _, lib in sorted(found))
    import ctypes.util  # only here: it pulls in subprocess and friends
    name = ctypes.util.find_library("candor")
    if name:
        out.append(name)
    out.append("libcandor.so.0")  # the dynamic loader's own search path
    return out


_lock = threading.Lock()
_lib: Optional[ctypes.CDLL] = None
_lib_path: Optional[str] = None


def _check_status(status: int, func: Any, args: Any) -> int:
    """errcheck hook: a non-zero candor_status_t becomes an exception.

    Runs on the calling thread right after the call, so the per-thread
    candor_errmsg() is this call's message."""
    if status != CANDOR_OK:
        lib = _lib
        msg = ""
        name = None
        if lib is not None:
            raw = lib.candor_errmsg()
            msg = raw.decode("utf-8", "replace") if raw else ""
            sname = lib.candor_status_str(status)
            name = sname.decode("ascii", "replace") if sname else None
        if not msg:
            msg = "%s failed (%s)" % (getattr(func, "__name__", "candor call"),
                                      name or status)
        raise error_for_status(status, msg, name)
    return status


# Functions that do a few microseconds of work at most: called with the GIL
# held (through a PyDLL handle of the same library). Releasing the GIL for
# them costs more than they do, and with several threads each release can
# hand the GIL to another thread and wait to get it back. Everything that
# parses, triages, checks or touches the state releases the GIL.
_KEEP_GIL = frozenset("""
    candor_version_number candor_version_string candor_errmsg candor_status_str
    candor_free candor_ctx_options_init candor_envelope_init
    candor_ctx_state_path candor_ctx_sendmail candor_ctx_config_path
    candor_message_free candor_message_error_count candor_result_free
    candor_ack_free candor_ack_send candor_ack_ticket candor_ack_message
    candor_ack_recipient candor_check_free candor_time_parse candor_time_format
""".split())


def _declare(lib: ctypes.CDLL, pylib: Optional[ctypes.CDLL] = None) -> None:
    """argtypes/restype/errcheck for every function the package uses."""

    def fn(name: str, restype: Any, argtypes: List[Any],
           errcheck: Optional[Callable[..., Any]] = None) -> None:
        f = getattr(pylib if pylib is not None and name in _KEEP_GIL else lib, name)
        f.restype = restype
        f.argtypes = argtypes
        if errcheck is not None:
            f.errcheck = errcheck
        setattr(lib, name, f)

    def status_fn(name: str, argtypes: List[Any]) -> None:
        fn(name, STATUS, argtypes, _check_status)

    # Version and errors
    fn("candor_version_number", c_int, [])
    fn("candor_version_string", c_char_p, [])
    fn("candor_errmsg", c_char_p, [])
    fn("candor_status_str", c_char_p, [c_int])
    fn("candor_free", None, [c_void_p])
    status_fn("candor_init", [])
    # Context
    status_fn("candor_ctx_options_init", [POINTER(CtxOptions), c_uint])
    status_fn("candor_ctx_new", [HANDLE_OUT, POINTER(CtxOptions)])
    fn("candor_ctx_free", None, [HANDLE])
    fn("candor_ctx_state_path", c_char_p, [HANDLE])
    fn("candor_ctx_sendmail", c_char_p, [HANDLE])
    fn("candor_ctx_config_path", c_char_p, [HANDLE])
    # Messages
    status_fn("candor_message_parse", [HANDLE_OUT, HANDLE, c_char_p, c_size_t])
    status_fn("candor_message_parse_file", [HANDLE_OUT, HANDLE, c_char_p])
    fn("candor_message_free", None, [HANDLE])
    fn("candor_message_error_count", c_size_t, [HANDLE])
    status_fn("candor_message_to_json", [HANDLE, c_char_p, STR_OUT])
    status_fn("candor_message_unreadable_json", [c_char_p, c_char_p, STR_OUT])
    # Envelope
    status_fn("candor_envelope_init", [POINTER(Envelope), c_uint])
    # Store
    status_fn("candor_store_open", [HANDLE_OUT, HANDLE, c_char_p, c_uint])
    fn("candor_store_free", None, [HANDLE])
    status_fn("candor_store_ack_sent", [HANDLE, c_char_p, c_int64])
    # Triage
    status_fn("candor_triage", [HANDLE_OUT, HANDLE, HANDLE, HANDLE,
                                POINTER(Envelope), c_uint])
    fn("candor_result_free", None, [HANDLE])
    status_fn("candor_result_to_json", [HANDLE, HANDLE, c_char_p, STR_OUT])
    try:  # newer than the first 0.1 libraries: optional (see _context.triage)
        status_fn("candor_triage_json", [STR_OUT, POINTER(c_size_t), HANDLE, HANDLE,
                                         c_char_p, c_char_p, c_size_t, c_char_p,
                                         POINTER(Envelope), c_uint])
    except AttributeError:
        pass
    # Acknowledgements
    status_fn("candor_ack", [HANDLE_OUT, HANDLE, HANDLE, HANDLE, POINTER(Envelope)])
    fn("candor_ack_free", None, [HANDLE])
    fn("candor_ack_send", c_int, [HANDLE])
    fn("candor_ack_ticket", c_char_p, [HANDLE])
    fn("candor_ack_message", c_char_p, [HANDLE])
    fn("candor_ack_recipient", c_char_p, [HANDLE])
    status_fn("candor_ack_to_json", [HANDLE, STR_OUT])
    status_fn("candor_record_reply", [HANDLE, HANDLE, HANDLE, c_int64, STR_OUT])
    status_fn("candor_stats_json", [HANDLE, HANDLE, c_int64, STR_OUT])
    # Canned-reply check
    status_fn("candor_check", [HANDLE_OUT, HANDLE, HANDLE, HANDLE, HANDLE, c_int64])
    fn("candor_check_free", None, [HANDLE])
    status_fn("candor_check_to_json", [HANDLE, STR_OUT])
    # Time
    status_fn("candor_time_parse", [POINTER(c_int64), c_char_p])
    fn("candor_time_format", None, [c_char_p, c_size_t, c_int64])


def check_version(number: int, path: str) -> None:
    """Raise VersionMismatchError unless the library speaks our API.

    The major and minor numbers must be equal (0.x releases may change the
    API between minor versions); the patch level may differ."""
    major, minor, patch = number // 10000, number // 100 % 100, number % 100
    if (major, minor) != (VERSION_MAJOR, VERSION_MINOR):
        raise VersionMismatchError(
            "libcandor at %s is version %d.%d.%d, but this candor package "
            "(%s) needs %d.%d.x; install the matching package or point "
            "CANDOR_LIBRARY at a matching library"
            % (path, major, minor, patch, VERSION_STRING,
               VERSION_MAJOR, VERSION_MINOR))


def load(path: Optional[str] = None) -> ctypes.CDLL:
    """Load libcandor once per process and return it.

    Search order: PATH if given; else ``$CANDOR_LIBRARY``; else a meson
    build tree of the source checkout this package sits in; else
    ``ctypes.util.find_library("candor")``; else ``libcandor.so.0`` through
    the dynamic loader. Raises :class:`candor.LibraryError` when nothing
    loads and :class:`candor.VersionMismatchError` when the library's
    version differs from the package's."""
    global _lib, _lib_path
    with _lock:
        if _lib is not None and path is None:
            return _lib
        tried = []
        cands = [path] if path else _candidates()
        for cand in cands:
            try:
                lib = ctypes.CDLL(cand)
            except OSError as e:
                tried.append("%s (%s)" % (cand, e))
                continue
            if not hasattr(lib, "candor_version_number"):
                tried.append("%s (no candor_version_number: not libcandor)" % cand)
                continue
            lib.candor_version_number.restype = c_int
            lib.candor_version_number.argtypes = []
            check_version(lib.candor_version_number(), cand)
            try:
                _declare(lib, ctypes.PyDLL(cand))
            except AttributeError as e:
                raise LibraryError("libcandor at %s lacks a function this "
                                   "package needs: %s" % (cand, e)) from None
            _lib, _lib_path = lib, cand
            return lib
        raise LibraryError("cannot load libcandor; tried: %s. Set CANDOR_LIBRARY "
                           "to the path of libcandor.so" % "; ".join(tried))


def get() -> ctypes.CDLL:
    """The loaded library (loading it on first use)."""
    lib = _lib
    return lib if lib is not None else load()


def loaded_path() -> Optional[str]:
    """The path (or name) the library was loaded from, or None."""
    return _lib_path


def take_string(lib: ctypes.CDLL, ptr: c_void_p) -> str:
    """Copy an owned ``char *`` into a Python str and candor_free() it."""
    p = ptr.value
    if not p:
        raise Error("libcandor returned no string")
    try:
        return ctypes.string_at(p).decode("utf-8", "replace")
    finally:
        lib.candor_free(p)
        ptr.value = None


def take_bytes(lib: ctypes.CDLL, ptr: c_void_p) -> bytes:
    """Copy an owned ``char *`` into Python bytes and candor_free() it."""
    p = ptr.value
    if not p:
        raise Error("libcandor returned no string")
    try:
        return ctypes.string_at(p)
    finally:
        lib.candor_free(p)
        ptr.value = None


def borrowed(raw: Optional[bytes]) -> Optional[str]:
    """A borrowed ``const char *`` (already copied by ctypes) as str."""
    return None if raw is None else raw.decode("utf-8", "replace")


__all__ = ["CtxOptions", "Envelope", "LOG_FN", "load", "get", "loaded_path",
           "take_string", "take_bytes", "borrowed", "check_version", "byref", "c_void_p",
           "c_int64", "c_double", "c_long"]
