"""Parameters as frozen dataclasses: how a field declares its default, help text and what it accepts, and the one
validator and parser every parameter dataclass shares (the world's `simcore.config.Config` and each scheduler's
own parameters, `Scheduler.Params`).

    @dataclass(frozen=True)
    class MyParams(Parameters):
        my_margin_s: float = param(0.5, "head-room kept below the SLA, s", lo=0)

        def validate(self) -> None:      # optional: relations between fields
            ...

A field's type comes from its annotation (int, float, str, bool, tuple); numbers must be finite. Building the
dataclass checks every field against what it declares, then calls `validate()`; a bad value raises a ConfigError
of one line naming the parameter, the value and what is allowed. `from_dict` parses text from the command line
or JSON values from a file into the field's type (never truncating, never splitting text into characters) and
refuses unknown names.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simcore.errors import ConfigError

ANY_LENGTH = "any"  # `length=ANY_LENGTH`: a tuple of one or more entries
MAX_INT = 2**63 - 1  # integer parameters fit a 64-bit integer (numpy, seeds)


@dataclass(frozen=True)
class Allowed:
    """What a field accepts, declared with the field (`param(..., lo=0, lo_open=True)`) and checked when the
    dataclass is built.

    :param lo, hi: bounds of a number, or of every entry of a tuple (None = unbounded); closed unless `lo_open`
        / `hi_open`
    :param choices: the values a string (or every entry of a tuple of strings) may take
    :param length: a tuple's number of entries: an int, the name of another tuple field whose length it must
        match, or ANY_LENGTH (one or more); default: the length of the field's default
    :param item: the type of a tuple's entries where the default is empty
    :param flag: the command-line flag that sets the field, used in messages instead of `name=value`
    """

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    choices: tuple | None = None
    length: int | str | None = None
    item: type | None = None
    flag: str | None = None


def param(default: Any, help: str, *, lo: float | None = None, hi: float | None = None, lo_open: bool = False,
          hi_open: bool = False, choices: tuple | None = None, length: int | str | None = None,
          item: type | None = None, flag: str | None = None) -> Any:
    """A dataclass field with its help text (the CLI and the docs read it) and what it accepts (`Allowed`):
    type from the annotation, numbers finite, plus the bounds, choices and tuple length given here."""
    if isinstance(default, (list, dict)):
        raise TypeError("use tuples for defaults")
    allowed = Allowed(lo, hi, lo_open, hi_open, choices, length, item, flag)
    return field(default=default, metadata={"help": help, "allowed": allowed})


@dataclass(frozen=True)
class Parameters:
    """Base of every parameter dataclass: fields declared with `param`, checked when built (then `validate`)."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            _check_field(f, getattr(self, f.name), self)
        self.validate()

    def validate(self) -> None:
        """Relations between fields (`ordered`, `monotone`, `sums_to_one`); each field alone is checked already."""

    def to_dict(self) -> dict:
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def replace(self, **changes: Any):
        return type(self).from_dict({**self.to_dict(), **changes})

    @classmethod
    def from_dict(cls, d: dict, where: str = "config"):
        """Build from plain values (text from the command line, JSON values from a file); tuples may be lists or
        comma-separated text; unknown keys are refused, naming `where` they came from."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - set(fields))
        if unknown:
            raise ConfigError(f"{where}: unknown parameter(s) {', '.join(unknown)}")
        vals = {}
        for k, v in d.items():
            f = fields[k]
            try:
                vals[k] = _parse(f, v)
            except (TypeError, ValueError, OverflowError):
                raise ConfigError(f"{_label(f, v)}: must be {_describe(f)}") from None
        return cls(**vals)

    def check_value(self, name: str, value: Any) -> None:
        """Check one value for parameter `name` alone (parsed as `from_dict` parses it; a tuple's length against
        this instance's fields), without building: a value a later setting overrides is still refused if bad."""
        f = next((f for f in dataclasses.fields(self) if f.name == name), None)
        if f is None:
            return
        try:
            parsed = _parse(f, value)
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(f"{_label(f, value)}: must be {_describe(f)}") from None
        _check_field(f, parsed, self)

    @classmethod
    def help_table(cls) -> list[tuple[str, Any, str]]:
        """(name, default, help) of every parameter, for docs and `run.py --list-params`."""
        return [(f.name, _jsonable(f.default), f.metadata["help"]) for f in dataclasses.fields(cls)]

    @classmethod
    def names(cls) -> tuple:
        return tuple(f.name for f in dataclasses.fields(cls))


def _jsonable(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


# --- relations between fields (for `validate`) ---------------------------------------------------------------
def ordered(p: Parameters, *names: str) -> None:
    """Relation: getattr(p, names[0]) <= getattr(p, names[1]) <= ..."""
    vals = [getattr(p, n) for n in names]
    if any(a > b for a, b in zip(vals, vals[1:])):
        shown = ", ".join(f"{n}={v}" for n, v in zip(names, vals))
        raise ConfigError(f"{shown}: must satisfy {' <= '.join(names)}")


def monotone(p: Parameters, name: str, increasing: bool, strict: bool, what: str) -> None:
    """Relation: the entries of tuple field `name` rise (or fall), strictly or not; `what` says which in words."""
    v = np.asarray(getattr(p, name), dtype=float)
    d = np.diff(v) if increasing else -np.diff(v)
    if np.any(d <= 0) if strict else np.any(d < 0):
        raise ConfigError(f"{name}={','.join(map(str, getattr(p, name)))}: must be {what}")


def sums_to_one(p: Parameters, name: str) -> None:
    """Relation: the entries of tuple field `name` (weights) sum to 1."""
    f = next(f for f in dataclasses.fields(p) if f.name == name)
    w = getattr(p, name)
    if abs(sum(w) - 1.0) > 1e-6:
        raise ConfigError(f"{_label(f, w)}: must sum to 1 (they sum to {sum(w):g})")


# --- the generic, per-field part ----------------------------------------------------------------------------
def _kind(f: dataclasses.Field) -> str:
    """'int', 'float', 'str', 'bool' or 'tuple', from the annotation."""
    return f.type if isinstance(f.type, str) else f.type.__name__


def _item_kind(f: dataclasses.Field) -> str:
    a: Allowed = f.metadata["allowed"]
    t = a.item or (type(f.default[0]) if f.default else str)
    return t.__name__


def _shown(v: Any) -> str:
    if isinstance(v, list):  # a JSON array as given (a scalar field given [4] must not read as 4)
        return "[" + ",".join(map(str, v)) + "]"
    if isinstance(v, tuple):
        return ",".join(map(str, v))
    return str(v) if not isinstance(v, str) or v.strip() else repr(v)


def _label(f: dataclasses.Field, v: Any) -> str:
    flag = f.metadata["allowed"].flag
    return f"{flag} {_shown(v)}" if flag else f"{f.name}={_shown(v)}"


def _expected_length(f: dataclasses.Field, p: Parameters | None) -> int | None:
    """The entries a tuple field must have (None: one or more)."""
    length = f.metadata["allowed"].length
    if length is None:
        return len(f.default) if f.default else None
    if length == ANY_LENGTH:
        return None
    if isinstance(length, str):
        return len(getattr(p, length)) if p is not None else None
    return length


def _describe(f: dataclasses.Field, p: Parameters | None = None) -> str:
    """What a field accepts, in words ('a whole number in [4, 12]', '2 entries (one per gpu_types entry), ...')."""
    a: Allowed = f.metadata["allowed"]
    kind = _kind(f)
    if kind == "tuple":
        n = _expected_length(f, p)
        length = a.length
        if isinstance(length, str) and length != ANY_LENGTH:
            count = (f"{n} entr{'y' if n == 1 else 'ies'} (one per {length} entry)" if n is not None
                     else f"one entry per {length} entry")
        elif n is None:
            count = "one or more entries" if f.default or a.length == ANY_LENGTH else "entries"
        else:
            count = f"{n} entries" if n != 1 else "1 entry"
        return f"{count}, each {_describe_scalar(_item_kind(f), a)}"
    return _describe_scalar(kind, a)


def _describe_scalar(kind: str, a: Allowed) -> str:
    if a.choices is not None:
        return "one of " + ", ".join(map(str, a.choices))
    if kind == "str":
        return "text"
    if kind == "bool":
        return "true or false"
    base = "whole number" if kind == "int" else "number"
    lo, hi = a.lo, a.hi
    if lo is None and hi is None:
        return f"a finite {base}" if kind == "float" else f"a {base}"
    if hi is None and lo == 0:
        return f"a positive {base}" if a.lo_open else f"a non-negative {base}"
    if hi is None:
        return f"a {base} {'>' if a.lo_open else '>='} {lo:g}"
    if lo is None:
        return f"a {base} {'<' if a.hi_open else '<='} {hi:g}"
    return f"a {base} in {'(' if a.lo_open else '['}{lo:g}, {hi:g}{')' if a.hi_open else ']'}"


def _scalar_ok(kind: str, x: Any, a: Allowed) -> bool:
    if kind == "bool":
        return isinstance(x, bool)
    if kind == "str":
        return isinstance(x, str) and (a.choices is None or x in a.choices)
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return False
    if kind == "int" and not (isinstance(x, int) and abs(x) <= MAX_INT):
        return False
    if not math.isfinite(x):
        return False
    if a.lo is not None and (x <= a.lo if a.lo_open else x < a.lo):
        return False
    if a.hi is not None and (x >= a.hi if a.hi_open else x > a.hi):
        return False
    return True


def _check_field(f: dataclasses.Field, v: Any, p: Parameters) -> None:
    a: Allowed = f.metadata["allowed"]
    kind = _kind(f)
    if kind != "tuple":
        if not _scalar_ok(kind, v, a):
            raise ConfigError(f"{_label(f, v)}: must be {_describe(f, p)}")
        return
    if not isinstance(v, tuple):
        raise ConfigError(f"{_label(f, v)}: must be {_describe(f, p)}")
    item = _item_kind(f)
    for x in v:
        if not _scalar_ok(item, x, a):
            what = "unknown entry" if a.choices is not None else "entry"
            raise ConfigError(f"{_label(f, v)}: {what} {_shown(x)!s}; must be {_describe(f, p)}")
    n = _expected_length(f, p)
    if (n is not None and len(v) != n) or (n is None and not v and f.default):
        raise ConfigError(f"{_label(f, v)}: must be {_describe(f, p)} (got {len(v)})")


def _parse_scalar(kind: str, x: Any) -> Any:
    """Text or JSON value -> the field's type; ValueError if it is not one (never truncates, never splits)."""
    if kind == "bool":
        if isinstance(x, bool):
            return x
        if isinstance(x, str) and x.strip().lower() in ("true", "false"):
            return x.strip().lower() == "true"
        raise ValueError
    if kind == "str":
        if isinstance(x, str):
            return x
        if isinstance(x, (int, float)) and not isinstance(x, bool):
            return str(x)
        raise ValueError
    if isinstance(x, bool):
        raise ValueError
    if isinstance(x, str):
        text = x.strip()
        if kind == "int":
            try:
                return int(text)
            except ValueError:
                x = float(text)  # '1e3' is a whole number; '1.5' is refused below
        else:
            return float(text)
    if not isinstance(x, (int, float)):
        raise ValueError
    if kind == "int":
        if isinstance(x, float) and not (math.isfinite(x) and x.is_integer()):
            raise ValueError
        return int(x)
    return float(x)


def _parse(f: dataclasses.Field, v: Any) -> Any:
    kind = _kind(f)
    if kind != "tuple":
        return _parse_scalar(kind, v)
    if isinstance(v, str):  # '400' -> ('400',), 'a,b' -> ('a', 'b'): entries, never characters
        items = [x.strip() for x in v.split(",")] if v.strip() else []
    elif isinstance(v, (list, tuple)):
        items = list(v)
    elif isinstance(v, (int, float)) and not isinstance(v, bool):
        items = [v]
    else:
        raise ValueError
    item = _item_kind(f)
    return tuple(_parse_scalar(item, x) for x in items)
