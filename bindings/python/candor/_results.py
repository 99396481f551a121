"""The result classes: plain frozen dataclasses over the library's JSON.

Each result holds the JSON text the library wrote (``candor_result_to_json``,
``candor_message_to_json``, ...), copied into Python bytes before the C
object is freed: nothing here points into library memory. The text is
decoded with :func:`json.loads` on first access to any field (lazily: a
program that only passes the JSON on, like ``python3 -m candor triage``,
never pays for decoding), after which the instance behaves like any other
frozen dataclass (``dataclasses.asdict``, ``replace``, ``==``, ``repr``).

Attribute names are the JSON member names of CONTRACT.md, with one
exception forced by Python's grammar: ``from`` is a keyword, so the sender
is ``from_`` (``getattr(m, "from")`` and ``m["from"]`` work too). Members the
package does not know (a newer library, ``explain``) are kept in ``extra``.
:meth:`as_dict` gives back the object with the contract's names, in the
library's order, ready for :func:`json.dumps`.

Import cost matters here (``python3 -m candor`` starts once per run): no
:mod:`typing` (annotations are strings, types only for type checkers) and
:mod:`json` only when a result is first decoded.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from typing import Any, Dict, List, Optional, Tuple, Type, TypeVar
    T = TypeVar("T", bound="_Result")

# JSON member name -> attribute name, where they differ.
_RENAME = {"from": "from_"}
_UNRENAME = {v: k for k, v in _RENAME.items()}


def _json_loads(text: "str") -> "Any":
    import json
    global _json_loads
    _json_loads = json.loads
    return json.loads(text)


def _json_dumps(obj: "Any") -> "str":
    import json
    global _json_dumps
    _json_dumps = json.JSONEncoder(ensure_ascii=False).encode
    return _json_dumps(obj)


@dataclass(frozen=True)
class _Result:
    """Common behaviour of the result dataclasses."""

    # Members the package does not know (a newer library, "explain").
    extra: "Dict[str, Any]" = field(default_factory=dict, repr=False, compare=False)

    # Per class, set by _finish() (no annotations: not dataclass fields):
    # _names (attribute names), _jsonkeys (their JSON names), _defaults
    # ((name, value, factory) for fields missing from the JSON),
    # _default_order, _unset (fields not in the JSON), _lazy (names whose
    # lookup decodes the JSON).

    @classmethod
    def _from_raw(cls: "Type[T]", raw: bytes) -> "T":
        """A result over RAW, the library's UTF-8 JSON text (decoded on first
        use). For the package's own use."""
        r = object.__new__(cls)
        r.__dict__["_raw"] = raw
        return r

    @classmethod
    def from_json(cls: "Type[T]", obj: "Dict[str, Any]", text: "Optional[str]" = None) -> "T":
        """Build from a decoded JSON object (unknown members go to ``extra``);
        TEXT, when given, is the JSON text it was decoded from."""
        r = object.__new__(cls)
        if text is not None:
            r.__dict__["_raw"] = text.encode("utf-8")
        r._fill(obj)
        return r

    def _fill(self, obj: "Dict[str, Any]") -> None:
        cls = type(self)
        d = self.__dict__
        if len(obj) == len(cls._jsonkeys) and cls._jsonkeys.issuperset(obj):
            # The usual case, every member known and present: fill the
            # instance dict directly (frozen: no __setattr__ to go through).
            d.update(obj)
            if "from" in obj:
                d["from_"] = d.pop("from")
            d["extra"] = {}
        else:
            extra: "Dict[str, Any]" = {}
            names = cls._names
            for key, value in obj.items():
                attr = _RENAME.get(key, key)
                if attr in names:
                    d[attr] = value
                else:
                    extra[key] = value
            for name, value, factory in cls._defaults:
                if name not in d:
                    d[name] = factory() if factory is not None else value
            d["extra"] = extra
        for f in cls._unset:
            d.setdefault(f, False)
        d["_order"] = tuple(obj)

    def _decode(self) -> None:
        """Decode the JSON text into the fields (first access)."""
        raw = self.__dict__["_raw"]
        self._fill(_json_loads(raw.decode("utf-8", "replace")))

    def __getattr__(self, name: str) -> "Any":
        # Only reached when normal lookup fails: fields not decoded yet,
        # "from", and extra members.
        d = self.__dict__
        if "_order" not in d and "_raw" in d and name in type(self)._lazy:
            self._decode()
            return getattr(self, name)
        if name in _RENAME:
            return getattr(self, _RENAME[name])
        if name.startswith("_") or name == "extra":
            raise AttributeError(name)
        extra = d.get("extra") or {}
        if name in extra:
            return extra[name]
        if "_order" not in d and "_raw" in d:
            self._decode()
            extra = d.get("extra") or {}
            if name in extra:
                return extra[name]
        raise AttributeError("%s has no attribute %r" % (type(self).__name__, name))

    def to_json(self) -> str:
        """The JSON text of this result: exactly what the library wrote (the
        line ``candor triage``/``parse``/... prints), or, for a result not
        built from the library's output, :func:`json.dumps` of
        :meth:`as_dict`."""
        raw = self.__dict__.get("_raw")
        if raw is not None:
            return str(raw.decode("utf-8", "replace"))
        return _json_dumps(self.as_dict())

    def to_json_bytes(self) -> bytes:
        """:meth:`to_json` as UTF-8 bytes (no decoding: the fast way to pass
        the library's JSON on)."""
        raw = self.__dict__.get("_raw")
        if raw is not None:
            return bytes(raw)
        return self.to_json().encode("utf-8")

    def as_dict(self) -> "Dict[str, Any]":
        """The JSON object, with the contract's member names and order
        (a new dict; its values are the result's own lists and dicts)."""
        d = self.__dict__
        if "_order" not in d and "_raw" in d:
            self._decode()
        order: "Tuple[str, ...]" = d.get("_order") or self._default_order
        extra = d.get("extra") or {}
        if not extra:
            return {key: d[_RENAME.get(key, key)] for key in order}
        out: "Dict[str, Any]" = {}
        for key in order:
            if key in extra:
                out[key] = extra[key]
            else:
                out[key] = d[_RENAME.get(key, key)]
        for key, value in extra.items():
            out.setdefault(key, value)
        return out

    def __getitem__(self, key: str) -> "Any":
        """Dictionary-style access by JSON member name (``m["from"]``)."""
        try:
            return getattr(self, _RENAME.get(key, key))
        except AttributeError:
            raise KeyError(key) from None


def _finish(cls: "Type[T]") -> "Type[T]":
    fs = dataclasses.fields(cls)
    names = [f.name for f in fs if f.name not in ("extra", "sent")]
    cls._names = frozenset(names)
    cls._default_order = tuple(_UNRENAME.get(n, n) for n in names)
    cls._jsonkeys = frozenset(cls._default_order)
    cls._unset = tuple(f.name for f in fs if f.name == "sent")
    cls._defaults = tuple(
        (f.name, f.default if f.default is not dataclasses.MISSING else None,
         f.default_factory if f.default_factory is not dataclasses.MISSING else None)
        for f in fs if f.name in cls._names)
    cls._lazy = frozenset([f.name for f in fs] + ["_order"])
    # A field with a plain default is also a class attribute, which would
    # answer for a lazy instance not decoded yet; the generated __init__
    # keeps its own copy of the defaults.
    for f in fs:
        if f.name in cls.__dict__:
            delattr(cls, f.name)
    return cls


@_finish
@dataclass(frozen=True)
class Message(_Result):
    """A parsed message: the ``candor parse`` object of CONTRACT.md.

    ``from_`` / ``to`` / ``cc`` / ``reply_to`` hold ``{"name", "address"}``
    dicts; ``date`` is RFC 3339 UTC text or None; ``errors`` lists what
    could not be parsed."""

    file: "Optional[str]" = None
    message_id: "Optional[str]" = None
    from_: "Optional[Dict[str, Optional[str]]]" = None
    to: "List[Dict[str, Optional[str]]]" = field(default_factory=list)
    cc: "List[Dict[str, Optional[str]]]" = field(default_factory=list)
    reply_to: "List[Dict[str, Optional[str]]]" = field(default_factory=list)
    subject: "Optional[str]" = None
    date: "Optional[str]" = None
    in_reply_to: "Optional[str]" = None
    references: "List[str]" = field(default_factory=list)
    text: "Optional[str]" = None
    new_text: "Optional[str]" = None
    attachments: "List[Dict[str, Any]]" = field(default_factory=list)
    auto_submitted: "Optional[str]" = None
    list_id: "Optional[str]" = None
    errors: "List[str]" = field(default_factory=list)


@_finish
@dataclass(frozen=True)
class Triage(_Result):
    """A triaged message: the ``candor triage`` object of CONTRACT.md --
    every field of :class:`Message` except ``text``, plus the verdict.

    ``intent`` is one of the ten labels, ``confidence`` a float in [0, 1],
    ``scores`` maps every label to its score, ``urgency`` is
    low/normal/high/critical, ``sentiment`` negative/neutral/positive,
    ``churn_risk`` a bool, ``entities`` a list of ``{"kind", "value"}``
    dicts and ``autoreply`` a ``{"send": bool, "reason": str}`` dict."""

    file: "Optional[str]" = None
    message_id: "Optional[str]" = None
    from_: "Optional[Dict[str, Optional[str]]]" = None
    to: "List[Dict[str, Optional[str]]]" = field(default_factory=list)
    cc: "List[Dict[str, Optional[str]]]" = field(default_factory=list)
    reply_to: "List[Dict[str, Optional[str]]]" = field(default_factory=list)
    subject: "Optional[str]" = None
    date: "Optional[str]" = None
    in_reply_to: "Optional[str]" = None
    references: "List[str]" = field(default_factory=list)
    new_text: "Optional[str]" = None
    attachments: "List[Dict[str, Any]]" = field(default_factory=list)
    auto_submitted: "Optional[str]" = None
    list_id: "Optional[str]" = None
    errors: "List[str]" = field(default_factory=list)
    intent: "Optional[str]" = None
    confidence: float = 0.0
    scores: "Dict[str, float]" = field(default_factory=dict)
    urgency: "Optional[str]" = None
    sentiment: "Optional[str]" = None
    churn_risk: bool = False
    entities: "List[Dict[str, Any]]" = field(default_factory=list)
    autoreply: "Dict[str, Any]" = field(default_factory=dict)


@_finish
@dataclass(frozen=True)
class Ack(_Result):
    """The acknowledgement decision: the ``candor ack`` object.

    ``send`` and ``reason`` as in triage's ``autoreply``; ``ticket`` like
    ``"CND-000123"``; ``promise`` a ``{"by", "basis"}`` dict or None;
    ``message`` the complete RFC 5322 acknowledgement, or None when
    ``send`` is false. ``sent`` (not in the JSON) is True when
    :meth:`candor.Context.ack` handed the message to sendmail."""

    send: bool = False
    reason: "Optional[str]" = None
    ticket: "Optional[str]" = None
    promise: "Optional[Dict[str, Any]]" = None
    message: "Optional[str]" = None
    sent: bool = field(default=False, compare=False)

    def as_dict(self) -> "Dict[str, Any]":
        d = super().as_dict()
        d.pop("sent", None)
        return d


@_finish
@dataclass(frozen=True)
class ReplyRecord(_Result):
    """A recorded human reply: the ``candor record-reply`` object."""

    ticket: "Optional[str]" = None
    first_response: bool = False
    promise_kept: "Optional[bool]" = None


@_finish
@dataclass(frozen=True)
class Check(_Result):
    """A canned-reply check: the ``candor check`` object. ``verdict`` is
    ``ok``, ``review`` or ``canned``; ``findings`` a list of
    ``{"kind", "detail", "weight"}`` dicts."""

    score: float = 0.0
    verdict: "Optional[str]" = None
    findings: "List[Dict[str, Any]]" = field(default_factory=list)


__all__ = ["Message", "Triage", "Ack", "ReplyRecord", "Check"]
