"""Go's encoding/json, as dockerd decodes a request body into its API structs: the type check and
its wording, declared once per struct (the fields Servin reads, with their Go types).

`decode(value, SCHEMA)` checks an already parsed JSON value against a Go struct and returns it
normalised the way Go would have filled the struct in:

- a value of the wrong kind is Go's `*json.UnmarshalTypeError`, worded as Go 1.24 (dockerd
  v28.2.2 is built with it; `encoding/json/decode.go`): "json: cannot unmarshal <kind> into Go
  struct field <Struct>.<path> of type <type>", where <kind> is string, number, bool, array or
  object ("number 1.5" when a number does not fit an integer type), <Struct> is the innermost
  struct being decoded, <path> the field names from the root (embedded structs included, as
  Go 1.24 does; no array indexes, no map keys) and <type> Go's `reflect.Type.String()`, of the
  pointed-to type for a pointer; "... into Go value of type <type>" for the body itself. The
  first such error in document order is the one reported, as Go's decoder saves the first; an
  error from a type's own UnmarshalJSON (`strslice.StrSlice`) ends decoding at once and wins;
- field names match case-insensitively (an exact match first), as Go's do; the result carries the
  struct's own spelling;
- `null` is accepted everywhere and leaves the zero value: a null field is left out (a pointer,
  slice or map field set earlier in the object is dropped, anything else kept, as in Go), a null
  element of a list or map is the element type's zero value (`""`, `0`, `False`, `{}`, or None
  for pointers, maps, slices);
- a `StrSlice` given as one string becomes a one-item list, as its UnmarshalJSON makes it;
  a fixed array (`[2]uint`) is cut or padded to its length;
- keys the struct does not declare are kept as they came (Go ignores them; Servin may not).

Raised as InvalidArgument (400) with the route's prefix: dockerd's `httputils.ReadJSON` and
runconfig's `loadJSON` both say "invalid JSON: " first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from servin import errors

INVALID_JSON = "invalid JSON: "

_INT_BITS = {"int": 64, "int8": 8, "int16": 16, "int32": 32, "int64": 64,
             "uint": 64, "uint8": 8, "uint16": 16, "uint32": 32, "uint64": 64}


@dataclass(frozen=True, slots=True)
class GoField:
    json: str  # the key Go matches (its tag name, or the field name)
    type: GoType
    path: tuple[str, ...]  # what Go 1.24 puts in an error's field path: embedded structs, then json


@dataclass(frozen=True, slots=True)
class GoType:
    name: str  # reflect.Type.String() of the type itself (without a pointer's "*")
    kind: str  # string, bool, int*/uint*, float64, slice, array, map, struct, strslice, any
    elem: GoType | None = None
    length: int = 0  # arrays
    fields: tuple[GoField, ...] = ()
    pointer: bool = False
    _by_exact: Mapping[str, GoField] = field(default_factory=dict, compare=False, repr=False)
    _by_fold: Mapping[str, GoField] = field(default_factory=dict, compare=False, repr=False)

    @property
    def spelled(self) -> str:
        """The name as it appears inside another type's name (`[]*units.Ulimit`)."""
        return ("*" if self.pointer else "") + self.name

    @property
    def struct_name(self) -> str:
        """reflect.Type.Name() of a struct: its name without the package."""
        return self.name.rsplit(".", 1)[-1]

    def lookup(self, key: str) -> GoField | None:
        return self._by_exact.get(key) or self._by_fold.get(key.lower())


# ---- declaring Go types -----------------------------------------------------------------------

STRING = GoType("string", "string")
BOOL = GoType("bool", "bool")
INT = GoType("int", "int")
INT64 = GoType("int64", "int64")
UINT = GoType("uint", "uint")
UINT16 = GoType("uint16", "uint16")
UINT32 = GoType("uint32", "uint32")
UINT64 = GoType("uint64", "uint64")
FLOAT64 = GoType("float64", "float64")
ANY = GoType("interface {}", "any")
STRSLICE = GoType("strslice.StrSlice", "strslice")  # docker's []string that also takes one string
EMPTY_STRUCT = GoType("struct {}", "struct")


def named(name: str, base: GoType) -> GoType:
    """A defined type over `base` (`type NetworkMode string` is container.NetworkMode)."""
    return replace(base, name=name)


def ptr(t: GoType) -> GoType:
    return replace(t, pointer=True)


def slice_of(t: GoType) -> GoType:
    return GoType(f"[]{t.spelled}", "slice", elem=t)


def array_of(n: int, t: GoType) -> GoType:
    return GoType(f"[{n}]{t.spelled}", "array", elem=t, length=n)


def map_of(t: GoType) -> GoType:
    return GoType(f"map[string]{t.spelled}", "map", elem=t)


def struct(name: str, fields: Mapping[str, GoType], *, embed: tuple[tuple[str, GoType], ...] = ()) -> GoType:
    """`name` is package.Type; `fields` by their JSON name; `embed` the embedded structs (Go field
    name, type), whose fields are promoted unless the outer struct has one of the same name."""
    own = [GoField(k, t, (k,)) for k, t in fields.items()]
    names = {f.json for f in own}
    for go_name, inner in embed:
        for f in inner.fields:
            if f.json not in names:
                own.append(GoField(f.json, f.type, (go_name, *f.path)))
                names.add(f.json)
    exact = {f.json: f for f in own}
    fold: dict[str, GoField] = {}
    for f in own:
        fold.setdefault(f.json.lower(), f)
    return GoType(name, "struct", fields=tuple(own), _by_exact=exact, _by_fold=fold)


# ---- decoding -----------------------------------------------------------------------------------

class _Fatal(Exception):
    """An error an UnmarshalJSON method returned: Go stops decoding and reports it."""


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def _zero(t: GoType) -> Any:
    if t.pointer or t.kind in ("slice", "map", "strslice", "any"):
        return None
    if t.kind == "string":
        return ""
    if t.kind == "bool":
        return False
    if t.kind in _INT_BITS:
        return 0
    if t.kind == "float64":
        return 0.0
    if t.kind == "array":
        return [_zero(t.elem) for _ in range(t.length)] if t.elem else []
    return {}


class _Decoder:
    def __init__(self) -> None:
        self.struct: str | None = None  # errorContext.Struct: the struct whose field is being decoded
        self.stack: list[str] = []  # errorContext.FieldStack
        self.saved: str | None = None

    def message(self, value_kind: str, type_name: str) -> str:
        if self.struct is not None or self.stack:
            return (f"json: cannot unmarshal {value_kind} into Go struct field "
                    f"{self.struct or ''}.{'.'.join(self.stack)} of type {type_name}")
        return f"json: cannot unmarshal {value_kind} into Go value of type {type_name}"

    def save(self, value_kind: str, t: GoType) -> None:
        if self.saved is None:
            self.saved = self.message(value_kind, t.name)

    def value(self, v: Any, t: GoType) -> Any:
        if v is None:
            return _zero(t)
        k = t.kind
        if k == "any":
            return v
        if k == "strslice":
            return self.strslice(v)
        if k == "string":
            if isinstance(v, str):
                return v
        elif k == "bool":
            if isinstance(v, bool):
                return v
        elif k in _INT_BITS:
            if isinstance(v, int) and not isinstance(v, bool):
                bits = _INT_BITS[k]
                lo, hi = (0, (1 << bits) - 1) if k.startswith("u") else (-(1 << bits - 1), (1 << bits - 1) - 1)
                if lo <= v <= hi:
                    return v
                self.save(f"number {v}", t)
                return 0
            if isinstance(v, float):  # 1.5 or 1e3: strconv.ParseInt refuses both
                self.save(f"number {v!r}", t)
                return 0
        elif k == "float64":
            if isinstance(v, int | float) and not isinstance(v, bool):
                return v
        elif k in ("slice", "array"):
            if isinstance(v, list):
                assert t.elem is not None
                out = [self.value(x, t.elem) for x in v]
                if k == "array":
                    out = (out + [_zero(t.elem)] * t.length)[:t.length]
                return out
        elif k == "map":
            if isinstance(v, dict):
                assert t.elem is not None
                return {key: self.value(x, t.elem) for key, x in v.items()}
        elif k == "struct":
            if isinstance(v, dict):
                return self.struct_value(v, t)
        self.save(_kind(v), t)
        return _zero(t)

    def struct_value(self, v: dict[str, Any], t: GoType) -> dict[str, Any]:
        out: dict[str, Any] = {}
        outer_struct, depth = self.struct, len(self.stack)
        for key, x in v.items():
            f = t.lookup(key)
            if f is None:
                out[key] = x
                continue
            self.struct = t.struct_name
            self.stack.extend(f.path)
            try:
                decoded = self.value(x, f.type)
            finally:
                del self.stack[depth:]
                self.struct = outer_struct
            if x is None:  # null sets a pointer, slice or map to nil and leaves anything else as it is
                if f.type.pointer or f.type.kind in ("slice", "map", "strslice", "any"):
                    out.pop(f.json, None)
            else:
                out[f.json] = decoded
        return out

    def strslice(self, v: Any) -> list[str]:
        """strslice.StrSlice.UnmarshalJSON: a []string, else a string; the string attempt's error
        (kind of the whole value, type string) is returned, which ends Go's decoding."""
        if isinstance(v, str):
            return [v]
        if isinstance(v, list) and all(x is None or isinstance(x, str) for x in v):
            return ["" if x is None else x for x in v]
        raise _Fatal(self.message(_kind(v), "string"))


def decode(value: Any, schema: GoType, *, prefix: str = INVALID_JSON) -> Any:
    """`value` (parsed JSON) checked against the Go type `schema` and normalised (see the module's
    docstring); None stays None. Raises InvalidArgument with Go's wording after `prefix`."""
    if value is None:
        return None
    d = _Decoder()
    try:
        out = d.value(value, schema)
    except _Fatal as exc:
        raise errors.InvalidArgument(prefix + str(exc)) from None
    if d.saved is not None:
        raise errors.InvalidArgument(prefix + d.saved)
    return out
