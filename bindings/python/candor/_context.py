"""candor.Context: the configuration, model and state, and every operation.

Ownership: each C object the package creates is held in a local
``c_void_p`` and freed in a ``finally`` block of the method that created it
(messages, results, acks, checks, returned strings), or -- for the long-lived
context and store handles -- by :meth:`Context.close` (also run by ``with``
and, as a last resort, by the garbage collector), each exactly once.

Threads (candor.h, "Threads"): a ``struct candor_ctx`` is immutable and may
be used by any number of threads at once, so one :class:`Context` may be
shared by threads. A store handle belongs to one thread at a time, so the
Context opens one per thread on first use (kept in a ``threading.local``)
and frees it when that thread ends or the Context is closed. Do not call
:meth:`Context.close` while other threads are still inside a call.
"""

from __future__ import annotations

import ctypes
import os
import threading
import weakref
from ctypes import byref, c_char_p, c_int64, c_size_t, c_void_p

from . import _lib
from ._errors import Error, InvalidArgumentError, TemporaryError
from ._results import Ack, Check, Message, ReplyRecord, Triage

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    import datetime as _dt
    from typing import (Any, Callable, Dict, Iterable, Iterator, List, Optional,
                        Sequence, Tuple, Union)
    PathLike = Union[str, "os.PathLike[str]", "os.PathLike[bytes]"]
    Data = Union[bytes, bytearray, memoryview, PathLike]
    Now = Union[None, int, float, str, _dt.datetime]
    LogFunction = Callable[[int, str], None]


def _loads(text: "str") -> "Any":
    import json
    global _loads
    _loads = json.loads
    return json.loads(text)


def _enc(s: Optional[Union[str, bytes]]) -> Optional[bytes]:
    if s is None:
        return None
    if isinstance(s, bytes):
        return s
    return s.encode("utf-8")


class _Store:
    """One store handle; freed exactly once (by close(), or when the thread
    that opened it ends and its thread-local slot is dropped)."""

    __slots__ = ("ptr", "readonly", "_lib", "_lock", "__weakref__")

    def __init__(self, lib: ctypes.CDLL, ptr: int, readonly: bool) -> None:
        self._lib = lib
        self.ptr: Optional[int] = ptr
        self.readonly = readonly
        self._lock = threading.Lock()

    def free(self) -> None:
        with self._lock:
            p, self.ptr = self.ptr, None
        if p:
            self._lib.candor_store_free(p)

    def __del__(self) -> None:
        try:
            self.free()
        except Exception:  # interpreter shutdown
            pass


class Context:
    """A loaded configuration and model, and per-thread state handles.

    Every argument is optional:

    - ``config``: path of the XML configuration (None: ``$CANDOR_CONFIG``,
      else the installed default).
    - ``state``: path of the state database (None: the config's).
    - ``addresses``: our own addresses, overriding the config's.
    - ``trusted_authserv``: the authserv-id whose Authentication-Results
      are believed (None: the config's).
    - ``model``: path of the model file (None: the config's).
    - ``sendmail``: the command ``ack(send=True)`` uses, a string or an
      argument list (None: the config's).
    - ``log``: ``log(level, line)`` called with the library's log lines
      (level 0 error .. 3 debug), possibly from any thread.
    - ``library``: path of libcandor to load (see :func:`candor.load_library`).
    - ``max_message_bytes`` ... ``max_html_depth``: limits on hostile input
      (0 or None: the configured default).
    - ``max_config_bytes``: refuse a configuration file larger than this
      (0 or None: 4 MiB, ``CANDOR_DEFAULT_MAX_CONFIG_BYTES``); it is read
      before the configuration, so only an argument can set it. A larger
      file raises :class:`candor.ConfigError`.

    Raises :class:`candor.ConfigError` for a bad configuration,
    :class:`candor.InputOutputError` for an unreadable one, and
    :class:`candor.LibraryError` when libcandor cannot be loaded.

    Use it as a context manager (``with candor.Context() as ctx:``) or call
    :meth:`close`. One Context may be shared by any number of threads.
    """

    def __init__(self, config: Optional[PathLike] = None,
                 state: Optional[PathLike] = None,
                 addresses: Optional[Sequence[str]] = None,
                 trusted_authserv: Optional[str] = None, *,
                 model: Optional[PathLike] = None,
                 sendmail: Optional[Union[str, Sequence[str]]] = None,
                 log: Optional[LogFunction] = None,
                 library: Optional[str] = None,
                 max_message_bytes: Optional[int] = None,
                 max_header_bytes: Optional[int] = None,
                 max_headers: Optional[int] = None,
                 max_mime_depth: Optional[int] = None,
                 max_mime_parts: Optional[int] = None,
                 max_line_bytes: Optional[int] = None,
                 max_decoded_bytes: Optional[int] = None,
                 max_text_bytes: Optional[int] = None,
                 max_html_depth: Optional[int] = None,
                 max_config_bytes: Optional[int] = None) -> None:
        self._ptr: Optional[int] = None
        self._stores: "weakref.WeakSet[_Store]" = weakref.WeakSet()
        self._stores_lock = threading.Lock()
        self._local = threading.local()
        self._log_cb: Any = None
        self._env_cache: Optional[Tuple[Any, _lib.Envelope]] = None
        self._triage_json: Any = None
        lib = _lib.load(library) if library else _lib.get()
        self._lib = lib
        self._triage_json = getattr(lib, "candor_triage_json", None)
        self._state = os.fsencode(state) if state is not None else None
        self._sendmail = sendmail

        opts = _lib.CtxOptions()
        lib.candor_ctx_options_init(byref(opts), _lib.CANDOR_CTX_OPTIONS_VERSION)
        if config is not None:
            opts.config_path = os.fsencode(config)
        if model is not None:
            opts.model_path = os.fsencode(model)
        if addresses:
            if isinstance(addresses, (str, bytes)):
                addresses = [addresses]
            arr = (c_char_p * len(addresses))(*[_enc(a) for a in addresses])
            opts.addresses = ctypes.cast(arr, ctypes.POINTER(c_char_p))
            opts.n_addresses = len(addresses)
        else:
            arr = None
        if trusted_authserv is not None:
            opts.trusted_authserv = _enc(trusted_authserv)
        limits = dict(max_message_bytes=max_message_bytes,
                      max_header_bytes=max_header_bytes, max_headers=max_headers,
                      max_mime_depth=max_mime_depth, max_mime_parts=max_mime_parts,
                      max_line_bytes=max_line_bytes,
                      max_decoded_bytes=max_decoded_bytes,
                      max_text_bytes=max_text_bytes, max_html_depth=max_html_depth,
                      max_config_bytes=max_config_bytes)
        for name, value in limits.items():
            if value is not None:
                if value < 0:
                    raise InvalidArgumentError("%s must not be negative" % name)
                setattr(opts, name, value)
        if log is not None:
            user_log: LogFunction = log

            def _log(level: int, line: Optional[bytes], _data: Any) -> None:
                try:
                    user_log(level, (line or b"").decode("utf-8", "replace"))
                except Exception:  # never let an exception cross into C
                    pass
            self._log_cb = _lib.LOG_FN(_log)
            opts.log_fn = self._log_cb
        ptr = c_void_p()
        lib.candor_ctx_new(byref(ptr), byref(opts))
        del arr  # the library copied the addresses
        self._ptr = ptr.value

    # ------------------------------------------------------------ lifetime
    def close(self) -> None:
        """Free the per-thread store handles and the context (idempotent)."""
        with self._stores_lock:
            stores = list(self._stores)
            self._stores = weakref.WeakSet()
        for s in stores:
            s.free()
        p, self._ptr = self._ptr, None
        if p:
            self._lib.candor_ctx_free(p)

    def __enter__(self) -> "Context":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran."""
        return self._ptr is None

    def _ctx(self) -> int:
        p = self._ptr
        if p is None:
            raise InvalidArgumentError("candor.Context is closed")
        return p

    # ------------------------------------------------------------ settings
    @property
    def config_path(self) -> Optional[str]:
        """The path of the configuration file that was loaded."""
        return _lib.borrowed(self._lib.candor_ctx_config_path(self._ctx()))

    @property
    def state_path(self) -> Optional[str]:
        """The state path in use: the ``state`` argument, else the config's."""
        if self._state is not None:
            return os.fsdecode(self._state)
        return _lib.borrowed(self._lib.candor_ctx_state_path(self._ctx()))

    @property
    def sendmail_command(self) -> Optional[List[str]]:
        """The sendmail command ``ack(send=True)`` runs, as an argument list."""
        cmd = self._sendmail
        if cmd is None:
            cmd = _lib.borrowed(self._lib.candor_ctx_sendmail(self._ctx()))
        if cmd is None:
            return None
        # Split on blanks, no shell and no quoting, as `candor ack --send` does.
        return cmd.split() if isinstance(cmd, str) else list(cmd)

    # ------------------------------------------------------------ helpers
    def _store(self, readonly: bool) -> Optional[int]:
        """This thread's store handle (read-write serves reads too).

        Read-only use (triage, check) without an explicit ``state`` path
        tolerates a state that cannot be opened, as the CLI does: the
        thread then works without one (no thread or rate checks) and does
        not retry. An explicit ``state``, and any write, must open."""
        loc = self._local
        s = getattr(loc, "rw", None)
        if s is not None and s.ptr:
            return s.ptr  # type: ignore[no-any-return]
        if readonly:
            s = getattr(loc, "ro", None)
            if s is not None and s.ptr:
                return s.ptr  # type: ignore[no-any-return]
            if getattr(loc, "no_state", False):
                return None
        ctx = self._ctx()
        out = c_void_p()
        flags = _lib.CANDOR_STORE_READONLY if readonly else 0
        try:
            self._lib.candor_store_open(byref(out), ctx, self._state, flags)
        except Error:
            if readonly and self._state is None:
                loc.no_state = True
                return None
            raise
        if not out.value:
            raise Error("store: the library returned no handle")
        s = _Store(self._lib, out.value, readonly)
        with self._stores_lock:
            self._stores.add(s)
        if readonly:
            loc.ro = s
        else:
            loc.rw = s
            old = getattr(loc, "ro", None)
            if old is not None:  # one handle per thread is enough now
                loc.ro = None
                old.free()
        return out.value

    def _now(self, now: Now) -> int:
        """Seconds since the epoch for NOW (0: the clock)."""
        if now is None:
            return 0
        if isinstance(now, bool):
            raise InvalidArgumentError("now: expected a time, not a bool")
        if isinstance(now, (int, float)):
            if now < 0:
                raise InvalidArgumentError("now: negative time %r" % now)
            return int(now)
        if isinstance(now, str):
            t = c_int64()
            self._lib.candor_time_parse(byref(t), now.encode("utf-8"))
            return t.value
        import datetime as dt   # only here: a second of import time saved is a second
        if isinstance(now, dt.datetime):
            if now.tzinfo is None:
                now = now.replace(tzinfo=dt.timezone.utc)
            return int(now.timestamp())
        raise InvalidArgumentError("now: expected None, seconds, a datetime or "
                                   "RFC 3339 text, not %s" % type(now).__name__)

    def _envelope(self, sender: Optional[str], recipient: Optional[str],
                  now: Now) -> _lib.Envelope:
        """The envelope for these arguments. The library only reads it, so
        the last one is kept and shared (threads included) while the same
        arguments come again (a run over a maildir: every message)."""
        key = (sender, recipient, now)
        cached = self._env_cache
        if cached is not None and cached[0] == key and type(now) is type(cached[0][2]):
            return cached[1]  # type: ignore[no-any-return]
        env = _lib.Envelope()
        self._lib.candor_envelope_init(byref(env), _lib.CANDOR_ENVELOPE_VERSION)
        if sender is not None:
            env.sender = _enc(sender)
        if recipient is not None:
            env.recipient = _enc(recipient)
        env.now = self._now(now)
        if isinstance(now, (int, float, str)) or now is None:
            self._env_cache = (key, env)   # immutable keys only (not a datetime)
        return env

    def _parse(self, data: Data, out: c_void_p) -> Optional[bytes]:
        """Parse DATA into OUT; return the "file" member (path or None)."""
        ctx = self._ctx()
        lib = self._lib
        if isinstance(data, (bytes, bytearray, memoryview)):
            buf = bytes(data)
            lib.candor_message_parse(byref(out), ctx, buf, len(buf))
            return None
        path = self._path(data)
        lib.candor_message_parse_file(byref(out), ctx, path)
        return path

    @staticmethod
    def _path(data: Any) -> bytes:
        try:
            return os.fsencode(data)  # str, bytes path or os.PathLike
        except TypeError:
            raise InvalidArgumentError(
                "expected the message as bytes or a path (str or os.PathLike), "
                "not %s" % type(data).__name__) from None

    @staticmethod
    def _file_member(file: Optional[PathLike], default: Optional[bytes]) -> Optional[bytes]:
        return os.fsencode(file) if file is not None else default

    # ------------------------------------------------------------ operations
    def parse(self, data: Data, *, file: Optional[PathLike] = None) -> Message:
        """Parse one message: bytes, or the path of a file.

        Returns a :class:`candor.Message` (the ``candor parse`` object);
        damaged mail still parses, listing what could not be read in
        ``errors``. ``file`` sets the ``file`` member (default: the path
        given, or None for bytes). Raises :class:`candor.InputOutputError`
        for an unreadable file, :class:`candor.LimitError` for input over
        the limits."""
        lib = self._lib
        msg = c_void_p()
        js = c_void_p()
        try:
            given = self._parse(data, msg)
            lib.candor_message_to_json(msg, self._file_member(file, given), byref(js))
            m = Message._from_raw(_lib.take_bytes(lib, js))
            # What `candor parse` bases its exit status on.
            m.__dict__["_message_errors"] = lib.candor_message_error_count(msg)
            return m
        finally:
            if js.value:
                lib.candor_free(js)
            if msg.value:
                lib.candor_message_free(msg)

    def triage(self, data: Data, *, file: Optional[PathLike] = None,
               sender: Optional[str] = None, recipient: Optional[str] = None,
               now: Now = None, explain: bool = False) -> Triage:
        """Parse and triage one message (bytes, or the path of a file).

        Returns a :class:`candor.Triage` (the ``candor triage`` object):
        intent, confidence, scores, urgency, sentiment, churn_risk,
        entities and the auto-reply decision, which reads (never writes) the
        state. ``sender``/``recipient`` give the envelope (default: from the
        message), ``now`` the time (None: the clock; seconds, a datetime or
        RFC 3339 text). ``explain`` adds the rules that decided (in
        ``extra["explain"]``)."""
        lib = self._lib
        triage_json = self._triage_json
        if triage_json is None:
            return self._triage_3calls(data, file, sender, recipient, now, explain)
        if isinstance(data, (bytes, bytearray, memoryview)):
            buf: Optional[bytes] = bytes(data)
            path = None
        else:
            buf = None
            path = self._path(data)
        env = self._envelope(sender, recipient, now)
        store = self._store(True)
        js = c_void_p()
        nerr = c_size_t()
        try:
            # One foreign call (one GIL hand-over) for parse + triage + JSON.
            triage_json(byref(js), byref(nerr), self._ctx(), store, path, buf,
                        len(buf) if buf is not None else 0,
                        path if file is None else os.fsencode(file), byref(env),
                        _lib.CANDOR_TRIAGE_EXPLAIN if explain else 0)
            r = Triage._from_raw(_lib.take_bytes(lib, js))
        finally:
            if js.value:
                lib.candor_free(js)
        # What `candor triage FILE` bases its exit status on.
        r.__dict__["_message_errors"] = nerr.value
        return r

    def _triage_3calls(self, data: Data, file: Optional[PathLike], sender: Optional[str],
                       recipient: Optional[str], now: Now, explain: bool) -> Triage:
        """triage() through parse, triage and to_json (a library without
        candor_triage_json)."""
        lib = self._lib
        msg = c_void_p()
        res = c_void_p()
        js = c_void_p()
        try:
            given = self._parse(data, msg)
            env = self._envelope(sender, recipient, now)
            store = self._store(True)
            lib.candor_triage(byref(res), self._ctx(), msg, store, byref(env),
                              _lib.CANDOR_TRIAGE_EXPLAIN if explain else 0)
            lib.candor_result_to_json(res, msg, given if file is None else os.fsencode(file),
                                      byref(js))
            r = Triage._from_raw(_lib.take_bytes(lib, js))
            # What `candor triage FILE` bases its exit status on.
            r.__dict__["_message_errors"] = lib.candor_message_error_count(msg)
            return r
        finally:
            if js.value:
                lib.candor_free(js)
            if res.value:
                lib.candor_result_free(res)
            if msg.value:
                lib.candor_message_free(msg)

    def triage_many(self, items: Iterable[Data], *, jobs: int = 1,
                    errors: str = "raise", **kwargs: Any) -> Iterator[Any]:
        """Triage many messages, yielding results in the input order.

        ``jobs`` > 1 triages on that many threads through this one Context
        (the C work runs without the GIL). With ``errors="return"`` a
        failing item yields its :class:`candor.Error` instead of raising.
        Other keyword arguments go to :meth:`triage`."""
        if errors not in ("raise", "return"):
            raise InvalidArgumentError('errors must be "raise" or "return"')

        def one(item: Data) -> Any:
            try:
                return self.triage(item, **kwargs)
            except Error as e:
                if errors == "return":
                    return e
                raise

        return ordered_map(one, items, jobs)

    def ack(self, data: Data, now: Now = None, send: bool = False, *,
            sender: Optional[str] = None, recipient: Optional[str] = None) -> Ack:
        """Decide, record and (when allowed) compose the acknowledgement.

        Writes the decision, ticket and promise to the state, so a second
        mail in the thread, or from the sender within the rate window, gets
        ``send=False``. With ``send=True`` an allowed acknowledgement is
        handed to the sendmail command (the ``sendmail`` argument, else the
        config's) as ``COMMAND -f <> -i -- RECIPIENT`` (null envelope
        sender, no shell), as ``candor ack --send`` does, and then marked sent in the state; if sendmail fails,
        :class:`candor.TemporaryError` is raised and the acknowledgement
        stays pending in the state. Without ``send`` nothing leaves the
        machine."""
        lib = self._lib
        msg = c_void_p()
        ack = c_void_p()
        js = c_void_p()
        try:
            self._parse(data, msg)
            env = self._envelope(sender, recipient, now)
            store = self._store(False)
            lib.candor_ack(byref(ack), self._ctx(), store, msg, byref(env))
            lib.candor_ack_to_json(ack, byref(js))
            result = Ack._from_raw(_lib.take_bytes(lib, js))
            if send and lib.candor_ack_send(ack):
                self._sendmail_ack(ack, store, env.now)
                object.__setattr__(result, "sent", True)  # frozen; not yet shared
            return result
        finally:
            if js.value:
                lib.candor_free(js)
            if ack.value:
                lib.candor_ack_free(ack)
            if msg.value:
                lib.candor_message_free(msg)

    def _sendmail_ack(self, ack: c_void_p, store: Optional[int], now: int) -> None:
        lib = self._lib
        cmd = self.sendmail_command
        ticket = lib.candor_ack_ticket(ack)
        message = lib.candor_ack_message(ack)
        rcpt = _lib.borrowed(lib.candor_ack_recipient(ack))
        if not cmd:
            raise TemporaryError("ack: no sendmail command configured; the "
                                 "acknowledgement stays pending", -7)
        if not message or not rcpt or rcpt.startswith("-"):
            raise Error("ack: the library gave no message or no usable recipient")
        # Local submission takes LF line ends (as candor-lmtpd hands over).
        body = message.replace(b"\r\n", b"\n")
        argv = list(cmd) + ["-f", "<>", "-i", "--", rcpt]
        import subprocess
        try:
            proc = subprocess.run(argv, input=body, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, timeout=300)
        except (OSError, subprocess.SubprocessError) as e:
            raise TemporaryError("ack: sendmail %s: %s; the acknowledgement "
                                 "stays pending" % (argv[0], e), -7) from None
        if proc.returncode != 0:
            why = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            raise TemporaryError(
                "ack: sendmail %s exited %d%s; the acknowledgement stays pending"
                % (argv[0], proc.returncode, (": " + why[-1]) if why else ""), -7)
        lib.candor_store_ack_sent(store, ticket, now)

    def record_reply(self, data: Data, now: Now = None) -> ReplyRecord:
        """Record a human reply that went out (matched to its ticket by
        In-Reply-To/References, else by recipient); the reply joins the
        history the canned check compares against. The reply's time is its
        Date when present and not later than ``now``, else ``now``."""
        lib = self._lib
        msg = c_void_p()
        js = c_void_p()
        try:
            self._parse(data, msg)
            t = self._now(now)
            store = self._store(False)
            lib.candor_record_reply(self._ctx(), store, msg, t, byref(js))
            return ReplyRecord._from_raw(_lib.take_bytes(lib, js))
        finally:
            if js.value:
                lib.candor_free(js)
            if msg.value:
                lib.candor_message_free(msg)

    def check(self, original: Data, reply: Data, now: Now = None) -> Check:
        """Check REPLY (about to go out) against ORIGINAL (the customer's
        mail) and the history of sent replies: score, verdict (ok, review,
        canned) and findings. Only reads the state."""
        lib = self._lib
        orig = c_void_p()
        rep = c_void_p()
        chk = c_void_p()
        js = c_void_p()
        try:
            self._parse(original, orig)
            self._parse(reply, rep)
            t = self._now(now)
            store = self._store(True)
            lib.candor_check(byref(chk), self._ctx(), store, orig, rep, t)
            lib.candor_check_to_json(chk, byref(js))
            return Check._from_raw(_lib.take_bytes(lib, js))
        finally:
            if js.value:
                lib.candor_free(js)
            if chk.value:
                lib.candor_check_free(chk)
            if rep.value:
                lib.candor_message_free(rep)
            if orig.value:
                lib.candor_message_free(orig)

    def stats(self, now: Now = None) -> Dict[str, Any]:
        """The ``candor stats --json`` object, as a dict."""
        lib = self._lib
        js = c_void_p()
        try:
            t = self._now(now)
            store = self._store(True)
            lib.candor_stats_json(self._ctx(), store, t, byref(js))
            return _loads(_lib.take_string(lib, js))  # type: ignore[no-any-return]
        finally:
            if js.value:
                lib.candor_free(js)


def ordered_map(fn: Callable[[Any], Any], items: Iterable[Any],
                jobs: int, chunk: int = 8) -> Iterator[Any]:
    """FN over ITEMS on JOBS threads, yielding results in input order.

    Items go to the threads in batches of CHUNK (a few microseconds of
    Python per item stay small next to the work, and the threads seldom
    meet on a lock), at most 3 x JOBS batches ahead of the consumer. An
    exception from FN is raised when its item's turn comes, after the
    results before it; the batches after it are dropped. A plain thread
    pool (no :mod:`concurrent.futures`, whose import costs more than a
    short run's work)."""
    if jobs <= 1:
        for item in items:
            yield fn(item)
        return
    import itertools
    from collections import deque
    try:
        from _queue import SimpleQueue
    except ImportError:  # pragma: no cover - other Pythons
        from queue import SimpleQueue  # type: ignore[assignment]
    allocate = threading.Lock
    work: "SimpleQueue[Any]" = SimpleQueue()
    cancelled = []   # non-empty: drop the batches still queued

    def worker() -> None:
        while True:
            job = work.get()
            if job is None:
                return
            batch, out, done = job
            if not cancelled:
                for x in batch:
                    try:
                        out.append((True, fn(x)))
                    except BaseException as e:  # re-raised in order by the consumer
                        out.append((False, e))
                        break
            done.release()

    threads = [threading.Thread(target=worker, name="candor-%d" % i, daemon=True)
               for i in range(jobs)]
    for t in threads:
        t.start()
    window = jobs * 3
    it = iter(items)
    pending: "deque[Tuple[List[Tuple[bool, Any]], Any]]" = deque()
    try:
        while True:
            batch = list(itertools.islice(it, chunk))
            if batch:
                done = allocate()
                done.acquire()
                out: "List[Tuple[bool, Any]]" = []
                work.put((batch, out, done))
                pending.append((out, done))
                if len(pending) < window:
                    continue
            elif not pending:
                break
            out, done = pending.popleft()
            done.acquire()   # this batch is finished
            for ok, value in out:
                if not ok:
                    raise value
                yield value
    finally:
        cancelled.append(True)
        for _ in threads:
            work.put(None)
        for t in threads:
            t.join()


def unreadable_json(file: Optional[PathLike], reason: str) -> bytes:
    """The ``candor parse`` object for a file that could not be read at all
    (every field null or empty, ``errors`` = [REASON]): the library's JSON
    text, as the C tool prints it."""
    lib = _lib.get()
    js = c_void_p()
    try:
        lib.candor_message_unreadable_json(
            os.fsencode(file) if file is not None else None, _enc(reason), byref(js))
        return _lib.take_bytes(lib, js)
    finally:
        if js.value:
            lib.candor_free(js)


def unreadable(file: Optional[PathLike], reason: str) -> Dict[str, Any]:
    """The ``candor parse`` object for a file that could not be read at all
    (every field null or empty, ``errors`` = [REASON]), as a dict."""
    return _loads(unreadable_json(file, reason).decode("utf-8", "replace"))  # type: ignore[no-any-return]


__all__ = ["Context", "unreadable", "unreadable_json", "ordered_map"]
