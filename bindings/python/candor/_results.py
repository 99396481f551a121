"""The result classes: plain dataclasses built from the library's JSON.

Each result is decoded with :func:`json.loads` from the JSON text the
library wrote (``candor_message_to_json``, ``candor_result_to_json``, ...),
then the C object is freed: nothing here points into library memory.

Attribute names are the JSON member names of CONTRACT.md, with one
exception forced by Python's grammar: ``from`` is a keyword, so the sender
is ``from_`` (``getattr(m, "from")`` and ``m["from"]`` work too). Members the
package does not know (a newer library, ``explain``) are kept in ``extra``.
:meth:`as_dict` gives back the object with the contract's names, in the
library's order, ready for :func:`json.dumps`.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, FrozenSet, List, Optional, Tuple, Type, TypeVar

T = TypeVar("T", bound="_Result")
_encode = json.JSONEncoder(ensure_ascii=False).encode

# JSON member name -> attribute name, where they differ.
_RENAME = {"from": "from_"}
_UNRENAME = {v: k for k, v in _RENAME.items()}


@dataclass(frozen=True)
class _Result:
    """Common behaviour of the result dataclasses."""

    _fieldset: ClassVar[FrozenSet[str]] = frozenset()     # attribute names
    _jsonkeys: ClassVar[FrozenSet[str]] = frozenset()     # their JSON names
    _default_order: ClassVar[Tuple[str, ...]] = ()
    _unset: ClassVar[Tuple[str, ...]] = ()                # fields not in the JSON
    # Members the package does not know (a newer library, "explain").
    extra: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls: Type[T], obj: Dict[str, Any], text: Optional[str] = None) -> T:
        """Build from a decoded JSON object (unknown members go to ``extra``);
        TEXT, when given, is the JSON text it was decoded from."""
        if len(obj) == len(cls._jsonkeys) and cls._jsonkeys.issuperset(obj):
            # The usual case, every member known and present: fill the
            # instance dict directly (frozen, so no __setattr__ to go through).
            r = object.__new__(cls)
            d = r.__dict__
            d.update(obj)
            if "from" in obj:
                d["from_"] = d.pop("from")
            for f in cls._unset:
                d[f] = False
            d["extra"] = {}
        else:
            known: Dict[str, Any] = {}
            extra: Dict[str, Any] = {}
            names = cls._fieldset
            for key, value in obj.items():
                attr = _RENAME.get(key, key)
                if attr in names:
                    known[attr] = value
                else:
                    extra[key] = value
            r = cls(**known)
            d = r.__dict__
            d["extra"] = extra
        d["_order"] = tuple(obj)
        d["_json"] = text
        return r

    def to_json(self) -> str:
        """The JSON text of this result: exactly what the library wrote (the
        line ``candor triage``/``parse``/... prints), or, for a result not
        built from the library's output, :func:`json.dumps` of
        :meth:`as_dict`."""
        text: Optional[str] = self.__dict__.get("_json")
        return text if text is not None else str(_encode(self.as_dict()))

    def as_dict(self) -> Dict[str, Any]:
        """The JSON object, with the contract's member names and order
        (a new dict; its values are the result's own lists and dicts)."""
        d = self.__dict__
        order: Tuple[str, ...] = d.get("_order") or self._default_order
        extra = d.get("extra") or {}
        if not extra:
            return {key: d[_RENAME.get(key, key)] for key in order}
        out: Dict[str, Any] = {}
        for key in order:
            if key in extra:
                out[key] = extra[key]
            else:
                out[key] = d[_RENAME.get(key, key)]
        for key, value in extra.items():
            out.setdefault(key, value)
        return out

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails: "from" and extra members.
        if name in _RENAME:
            return object.__getattribute__(self, _RENAME[name])
        if name.startswith("_") or name == "extra":
            raise AttributeError(name)
        extra = self.__dict__.get("extra") or {}
        if name in extra:
            return extra[name]
        raise AttributeError("%s has no attribute %r" % (type(self).__name__, name))

    def __getitem__(self, key: str) -> Any:
        """Dictionary-style access by JSON member name (``m["from"]``)."""
        try:
            return getattr(self, _RENAME.get(key, key))
        except AttributeError:
            raise KeyError(key) from None


def _finish(cls: Type[T]) -> Type[T]:
    names = [f.name for f in dataclasses.fields(cls) if f.name not in ("extra", "sent")]
    cls._fieldset = frozenset(names)
    cls._default_order = tuple(_UNRENAME.get(n, n) for n in names)
    cls._jsonkeys = frozenset(cls._default_order)
    cls._unset = tuple(f.name for f in dataclasses.fields(cls) if f.name == "sent")
    return cls


@_finish
@dataclass(frozen=True)
class Message(_Result):
    """A parsed message: the ``candor parse`` object of CONTRACT.md.

    ``from_`` / ``to`` / ``cc`` / ``reply_to`` hold ``{"name", "address"}``
    dicts; ``date`` is RFC 3339 UTC text or None; ``errors`` lists what
    could not be parsed."""

    file: Optional[str] = None
    message_id: Optional[str] = None
    from_: Optional[Dict[str, Optional[str]]] = None
    to: List[Dict[str, Optional[str]]] = field(default_factory=list)
    cc: List[Dict[str, Optional[str]]] = field(default_factory=list)
    reply_to: List[Dict[str, Optional[str]]] = field(default_factory=list)
    subject: Optional[str] = None
    date: Optional[str] = None
    in_reply_to: Optional[str] = None
    references: List[str] = field(default_factory=list)
    text: Optional[str] = None
    new_text: Optional[str] = None
    attachments: List[Dict[str, Any]] = field(default_factory=list)
    auto_submitted: Optional[str] = None
    list_id: Optional[str] = None
    errors: List[str] = field(default_factory=list)


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

    file: Optional[str] = None
    message_id: Optional[str] = None
    from_: Optional[Dict[str, Optional[str]]] = None
    to: List[Dict[str, Optional[str]]] = field(default_factory=list)
    cc: List[Dict[str, Optional[str]]] = field(default_factory=list)
    reply_to: List[Dict[str, Optional[str]]] = field(default_factory=list)
    subject: Optional[str] = None
    date: Optional[str] = None
    in_reply_to: Optional[str] = None
    references: List[str] = field(default_factory=list)
    new_text: Optional[str] = None
    attachments: List[Dict[str, Any]] = field(default_factory=list)
    auto_submitted: Optional[str] = None
    list_id: Optional[str] = None
    errors: List[str] = field(default_factory=list)
    intent: Optional[str] = None
    confidence: float = 0.0
    scores: Dict[str, float] = field(default_factory=dict)
    urgency: Optional[str] = None
    sentiment: Optional[str] = None
    churn_risk: bool = False
    entities: List[Dict[str, Any]] = field(default_factory=list)
    autoreply: Dict[str, Any] = field(default_factory=dict)


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
    reason: Optional[str] = None
    ticket: Optional[str] = None
    promise: Optional[Dict[str, Any]] = None
    message: Optional[str] = None
    sent: bool = field(default=False, compare=False)

    def as_dict(self) -> Dict[str, Any]:
        d = super().as_dict()
        d.pop("sent", None)
        return d


@_finish
@dataclass(frozen=True)
class ReplyRecord(_Result):
    """A recorded human reply: the ``candor record-reply`` object."""

    ticket: Optional[str] = None
    first_response: bool = False
    promise_kept: Optional[bool] = None


@_finish
@dataclass(frozen=True)
class Check(_Result):
    """A canned-reply check: the ``candor check`` object. ``verdict`` is
    ``ok``, ``review`` or ``canned``; ``findings`` a list of
    ``{"kind", "detail", "weight"}`` dicts."""

    score: float = 0.0
    verdict: Optional[str] = None
    findings: List[Dict[str, Any]] = field(default_factory=list)


__all__ = ["Message", "Triage", "Ack", "ReplyRecord", "Check"]
